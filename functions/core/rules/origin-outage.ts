import type { DecisionEvent, Rule, Verdict } from './evidence.js';
import { originEvidenceOf } from './evidence.js';

const NAME = 'origin-outage';

/**
 * Records when an origin outage begins and ends. The outage itself (its
 * failures excused for every machine) is part of the evidence every rule reads.
 */
export const originOutageRule: Rule = {
  name: NAME,
  metrics: [],
  decide({ outages, originStats, input }) {
    const verdicts: Verdict[] = [];
    const previous = new Set(input.previous.outages);
    const event = (
      type: 'origin_outage' | 'origin_recovered',
      origin: string,
      evidence: DecisionEvent['evidence'],
    ) => ({ type, origin, rule: 'origin-evidence', evidence }) as const;
    for (const [origin, evidence] of [...outages].sort(([a], [b]) =>
      a < b ? -1 : 1,
    )) {
      if (!previous.has(origin)) {
        verdicts.push({
          decision: { type: 'origin_outage', origin, evidence },
          by: NAME,
          event: event('origin_outage', origin, { ...evidence }),
          perMinute: true,
        });
      }
    }
    for (const origin of [...previous].sort()) {
      if (outages.has(origin)) continue;
      const current = originStats(origin);
      const evidence = current
        ? originEvidenceOf(current)
        : { origin, relayingIps: 0, failingIps: 0 };
      verdicts.push({
        decision: { type: 'origin_recovered', origin, evidence },
        by: NAME,
        event: event('origin_recovered', origin, { ...evidence }),
        perMinute: true,
      });
    }
    return verdicts;
  },
};
