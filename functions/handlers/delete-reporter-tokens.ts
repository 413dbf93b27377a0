import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { pathIp } from '../http/path-ip.js';
import { noContent } from '../http/responses.js';
import { routes } from '../routes.js';

/**
 * DELETE /v1/reporter-tokens/{ip} (admin): every machine token of that IP
 * issued until now stops working once the functions' revocation list is
 * refreshed (RELAYWATCH_CREDENTIAL_CACHE_SECONDS); a token issued later works.
 */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.deleteReporterTokens,
    runtime,
    async ({ event, now, principal }) => {
      const ip = pathIp(event);
      await runtime.revocations.revoke({
        ip,
        before: now,
        actor: principal.actor,
      });
      await runtime.events.putEvents([
        {
          type: 'reporter_token_revoked',
          at: new Date(now).toISOString(),
          ip,
          enforced: true,
          rule: 'manual',
          actor: principal.actor,
          evidence: { revokedBefore: new Date(now).toISOString() },
        },
      ]);
      return noContent();
    },
  );
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
