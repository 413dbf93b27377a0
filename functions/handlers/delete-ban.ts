import { apiHandler } from '../http/api-handler.js';
import { notFound } from '../http/errors.js';
import { pathIp } from '../http/path-ip.js';
import { noContent } from '../http/responses.js';
import { routes } from '../routes.js';
import type { Runtime } from '../runtime.js';
import { createRuntime } from '../runtime.js';

/** DELETE /v1/bans/{ip} (admin): lifts the ban in force now. */
export function createHandler(runtime: Runtime) {
  return apiHandler(routes.deleteBan, runtime, async ({ event, now }) => {
    const ip = pathIp(event);
    const lifted = await runtime.bans.liftBan(ip, now);
    if (!lifted) throw notFound(`no ban in force for ${ip}`);
    await runtime.events.putEvents([
      { type: 'manual_unban', at: new Date(now).toISOString(), ip, enforced: true, rule: 'manual', evidence: { ban: lifted } },
    ]);
    return noContent();
  });
}

export const handler = createHandler(await createRuntime(process.env));
