import { isBanActive, toBlocklistEntry } from '../core/blocklist.js';
import { bucketId, minuteOf } from '../core/minutes.js';
import { addCounts, emptyCounts } from '../core/tally.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { pathIp } from '../http/path-ip.js';
import { ok } from '../http/responses.js';
import { routes } from '../routes.js';

/** How many recent minutes GET /v1/ips/{ip} reports, the current one included. */
export const IP_VIEW_MINUTES = 10;

/** GET /v1/ips/{ip} (reader): ban state and per-minute counts of one IP. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(routes.getIp, runtime, async ({ event, now }) => {
    const ip = pathIp(event);
    const current = minuteOf(now);
    const minutes = Array.from(
      { length: IP_VIEW_MINUTES },
      (_, i) => current - i,
    );
    const [ban, rows] = await Promise.all([
      runtime.bans.getBan(ip),
      runtime.heartbeats.readIpMinutes([ip], minutes),
    ]);
    const perMinute = minutes.map((minute) => {
      const relay = emptyCounts();
      const probe = emptyCounts();
      const origins = new Set<string>();
      for (const row of rows.filter((r) => r.minute === minute)) {
        for (const o of row.origins) {
          addCounts(o.kind === 'probe' ? probe : relay, o.counts);
          origins.add(o.origin);
        }
      }
      return {
        minute: bucketId(minute),
        start: new Date(minute * 60_000).toISOString(),
        relay,
        probe,
        origins: origins.size,
      };
    });
    const activeBan = ban && isBanActive(ban, now) ? ban : undefined;
    return ok({
      ip,
      banned: activeBan !== undefined,
      ban: activeBan
        ? {
            ...toBlocklistEntry(activeBan),
            offense: activeBan.offense,
            rule: activeBan.rule,
          }
        : null,
      minutes: perMinute,
    });
  });
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
