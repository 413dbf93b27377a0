import { getOrInsert } from '../maps.js';
import { MINUTE_MS, minuteEnd } from '../minutes.js';
import type { MinuteTally } from '../tally.js';
import {
  ENTRY_CONNECT_FAILED,
  ENTRY_ERROR,
  ENTRY_OK,
  ENTRY_ORIGIN_ERROR,
  ENTRY_PROBES,
  visitOrigins,
} from '../tally.js';
import type { ProbeMinute, Rule, Verdict } from './evidence.js';
import { byIpOrder } from './evidence.js';

const NAME = 'probe-release';

/** When a row's reports were observed; a row of an older format by its minute's end. */
const observedAt = (row: MinuteTally) =>
  row.observedAt ?? minuteEnd(row.minute);

/** Per IP and minute: probe counts of the rows observed in (from, to]. */
function probeMinutesByIp(
  rows: readonly MinuteTally[],
  { from, to, ips }: { from: number; to: number; ips: ReadonlySet<string> },
): Map<string, Map<number, ProbeMinute>> {
  const byIp = new Map<string, Map<number, ProbeMinute>>();
  for (const row of rows) {
    if (!ips.has(row.ip)) continue;
    const at = observedAt(row);
    if (at <= from || at > to) continue;
    // Visited, not decoded into objects: a banned IP's row may name hundreds of origins.
    visitOrigins(row, (_, c) => {
      const ok = c[ENTRY_PROBES + ENTRY_OK] as number;
      const connectFailed = c[ENTRY_PROBES + ENTRY_CONNECT_FAILED] as number;
      const originError = c[ENTRY_PROBES + ENTRY_ORIGIN_ERROR] as number;
      if (
        ok +
          connectFailed +
          originError +
          (c[ENTRY_PROBES + ENTRY_ERROR] as number) ===
        0
      )
        return;
      const minutes = getOrInsert(
        byIp,
        row.ip,
        () => new Map<number, ProbeMinute>(),
      );
      const probe = getOrInsert(
        minutes,
        row.minute,
        (): ProbeMinute => ({ minute: row.minute, ok: 0, connectFailed: 0 }),
      );
      probe.ok += ok;
      probe.connectFailed += connectFailed;
    });
  }
  return byIp;
}

/**
 * Early release: a banned machine carries no customer traffic, so its probes
 * are the only evidence. Release it once every probe it reported in the last
 * releaseMinutes (a trailing window of time, not complete minutes: a repair
 * at second 5 of a minute should not wait for that minute to end) is healthy:
 * at least probeMinSamples samples, ok ratio at least probeOkRatio, and the
 * window begins after the ban, so the failures that caused it have aged out.
 * Manual bans are an operator's call and are never released.
 */
export const probeReleaseRule: Rule = {
  name: NAME,
  metrics: ['Releases'],
  decide({ input, bansInForce }, knobs, earlier) {
    const released = new Set(
      earlier.flatMap(({ decision }) =>
        decision.type === 'release' ? [decision.ip] : [],
      ),
    );
    const from = input.now - knobs.releaseMinutes * MINUTE_MS;
    const candidates = [...bansInForce.values()]
      .filter(
        (ban) => !ban.manual && !released.has(ban.ip) && from >= ban.since,
      )
      .sort(byIpOrder);
    // Only the candidates' rows are opened: the recent rows may be the whole fleet's.
    const probes = probeMinutesByIp(input.recent, {
      from,
      to: input.now,
      ips: new Set(candidates.map((ban) => ban.ip)),
    });
    const verdicts: Verdict[] = [];
    for (const ban of candidates) {
      const healthyMinutes = [...(probes.get(ban.ip)?.values() ?? [])].sort(
        (a, b) => a.minute - b.minute,
      );
      const ok = healthyMinutes.reduce((sum, probe) => sum + probe.ok, 0);
      const samples =
        ok +
        healthyMinutes.reduce((sum, probe) => sum + probe.connectFailed, 0);
      if (
        samples < knobs.probeMinSamples ||
        ok / samples < knobs.probeOkRatio - 1e-9
      )
        continue;
      verdicts.push({
        decision: { type: 'release', ip: ban.ip, ban, healthyMinutes },
        by: NAME,
        event: {
          type: 'release',
          ip: ban.ip,
          rule: 'probes-healthy',
          evidence: { ban, healthyMinutes },
        },
        metric: 'Releases',
      });
    }
    return verdicts;
  },
};
