import { minuteOf } from '../minutes.js';
import type { MinuteTally } from '../tally.js';
import { getOrInsert } from '../maps.js';
import type { ProbeMinute, Rule, Verdict } from './evidence.js';
import { byIpOrder } from './evidence.js';

const NAME = 'probe-release';

/** Per IP and minute: probe counts of the recent minutes. */
function probeMinutesByIp(rows: readonly MinuteTally[]): Map<string, Map<number, ProbeMinute>> {
  const byIp = new Map<string, Map<number, ProbeMinute>>();
  for (const row of rows) {
    for (const { kind, counts } of row.origins) {
      if (kind !== 'probe') continue;
      const minutes = getOrInsert(byIp, row.ip, () => new Map<number, ProbeMinute>());
      const probe = getOrInsert(minutes, row.minute, (): ProbeMinute => ({ minute: row.minute, ok: 0, connectFailed: 0 }));
      probe.ok += counts.ok;
      probe.connectFailed += counts.connect_failed;
    }
  }
  return byIp;
}

/**
 * Early release: a banned machine carries no customer traffic, so its probes
 * are the only evidence; require releaseMinutes healthy minutes, all after
 * the minute the ban was decided on (the first of them began one grace
 * before the ban). Manual bans are an operator's call and are never released.
 */
export const probeReleaseRule: Rule = {
  name: NAME,
  metrics: ['Releases'],
  decide({ input, bansInForce }, knobs, earlier) {
    const released = new Set(earlier.flatMap(({ decision }) => (decision.type === 'release' ? [decision.ip] : [])));
    const probes = probeMinutesByIp(input.recent);
    const firstMinute = input.minute - knobs.releaseMinutes + 1;
    const verdicts: Verdict[] = [];
    for (const ban of [...bansInForce.values()].sort(byIpOrder)) {
      if (ban.manual || released.has(ban.ip) || firstMinute < minuteOf(ban.since)) continue;
      const minutes = probes.get(ban.ip);
      const healthyMinutes: ProbeMinute[] = [];
      for (let minute = firstMinute; minute <= input.minute; minute++) {
        const probe = minutes?.get(minute);
        if (!probe) break;
        const samples = probe.ok + probe.connectFailed;
        if (samples < knobs.probeMinSamples || probe.ok / samples < knobs.probeOkRatio - 1e-9) break;
        healthyMinutes.push(probe);
      }
      if (healthyMinutes.length === knobs.releaseMinutes) {
        verdicts.push({
          decision: { type: 'release', ip: ban.ip, ban, healthyMinutes },
          by: NAME,
          event: { type: 'release', ip: ban.ip, rule: 'probes-healthy', evidence: { ban, healthyMinutes } },
          metric: 'Releases',
        });
      }
    }
    return verdicts;
  },
};
