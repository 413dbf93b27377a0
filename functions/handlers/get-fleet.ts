import { blocklistAt } from '../core/blocklist.js';
import { bucketId, minuteOf, minuteStart } from '../core/minutes.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { ok } from '../http/responses.js';
import { routes } from '../routes.js';

/** GET /v1/fleet (reader): the fleet as of the last aggregated minute. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(routes.getFleet, runtime, async ({ now }) => {
    const { config } = runtime;
    const [fleet, bans] = await Promise.all([
      runtime.state.getAggregatorState({ consistent: false }),
      runtime.bans.listBans(now),
    ]);
    const reference = fleet?.lastMinute ?? minuteOf(now) - 1;
    const silent = Object.entries(fleet?.lastSeen ?? {})
      .filter(([, seen]) => seen <= reference - config.silentMinutes)
      .map(([ip, seen]) => ({
        ip,
        lastSeen: new Date(minuteStart(seen + 1)).toISOString(),
      }))
      .sort((a, b) => (a.ip < b.ip ? -1 : 1));
    return ok({
      generatedAt: new Date(now).toISOString(),
      aggregatedMinute: fleet ? bucketId(fleet.lastMinute) : null,
      // Minutes since the last aggregated one closed: large means the aggregator is behind.
      aggregationLagMinutes: fleet
        ? minuteOf(now) - fleet.lastMinute - 1
        : null,
      dryRun: config.dryRun,
      reporting: fleet?.reporting ?? [],
      banned: blocklistAt(bans, now).entries,
      silent,
      originOutages: fleet?.outages ?? [],
      fleetWideFailure: fleet?.fleetWide ?? false,
      // A large share of the leased IPs went silent together: nobody is banned for silence meanwhile.
      fleetSilence: fleet?.fleetSilent ?? false,
      lastPassAt:
        fleet?.lastPassAt === undefined
          ? null
          : new Date(fleet.lastPassAt).toISOString(),
      capInForce: fleet?.capInForce ?? false,
      capped: fleet?.capped ?? [],
    });
  });
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
