import type { Rule, Verdict } from './evidence.js';
import { byIpOrder } from './evidence.js';

const NAME = 'silent-release';

/**
 * A machine banned for its silence is released as soon as it reports again
 * and its newest report is healthy: the ban stood for the silence, and the
 * silence is over. A newest report that still fails keeps the ban (probes can
 * release it later, like any automatic ban).
 */
export const silentReleaseRule: Rule = {
  name: NAME,
  metrics: ['Releases'],
  decide({ input, bansInForce, newest }) {
    if (!input.leases || input.closing) return [];
    const verdicts: Verdict[] = [];
    for (const ban of [...bansInForce.values()].sort(byIpOrder)) {
      if (ban.manual || !ban.rule.startsWith('silent')) continue;
      const lease = input.leases[ban.ip];
      const report = newest(ban.ip);
      if (!lease || lease[0] <= ban.since || !report?.healthy) continue;
      verdicts.push({
        decision: { type: 'release', ip: ban.ip, ban, healthyMinutes: [] },
        by: NAME,
        event: {
          type: 'release',
          ip: ban.ip,
          rule: 'reported-healthy',
          evidence: { ban, report },
        },
        metric: 'Releases',
      });
    }
    return verdicts;
  },
};
