import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { notFound } from '../http/errors.js';
import { pathIp } from '../http/path-ip.js';
import { noContent } from '../http/responses.js';
import { routes } from '../routes.js';

/** DELETE /v1/bans/{ip} (admin): lifts the ban in force now. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.deleteBan,
    runtime,
    async ({ event, now, principal }) => {
      const ip = pathIp(event);
      const lifted = await runtime.bans.liftBan(ip, { now });
      if (!lifted) throw notFound(`no ban in force for ${ip}`);
      await runtime.events.putEvents([
        {
          type: 'manual_unban',
          at: new Date(now).toISOString(),
          ip,
          enforced: true,
          rule: 'manual',
          actor: principal.actor,
          evidence: { ban: lifted },
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
