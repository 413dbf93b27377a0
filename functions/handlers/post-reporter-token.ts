import { canonicalIp } from '#contract/ip';
import { parseWith } from '#contract/validation';
import { reporterTokenRequestSchema } from '../core/requests.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { badRequest, HttpError } from '../http/errors.js';
import { issueMachineToken } from '../http/reporter-credentials.js';
import { created } from '../http/responses.js';
import { routes } from '../routes.js';

const bodySchema = reporterTokenRequestSchema;

/** POST /v1/reporter-tokens (admin): a reporter token that speaks for one machine only. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.postReporterToken,
    runtime,
    async ({ body, now, principal }) => {
      const parsed = parseWith(bodySchema, body ?? {});
      if (!parsed.ok)
        throw badRequest('invalid reporter token request', parsed.issues);
      const key = await runtime.signingKey?.();
      if (!key) throw new HttpError(500, 'no reporter signing key configured');
      const ip = canonicalIp(parsed.value.ip) as string;
      const token = issueMachineToken({ key, ip, issuedAt: now });
      // The event names the key and the issue time, never the token.
      await runtime.events.putEvents([
        {
          type: 'reporter_token_issued',
          at: new Date(now).toISOString(),
          ip,
          enforced: true,
          rule: 'manual',
          actor: principal.actor,
          evidence: { keyId: key.id, issuedAt: new Date(now).toISOString() },
        },
      ]);
      return created({ ip, token });
    },
  );
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
