import type { Rule, Verdict } from './evidence.js';

const NAME = 'fleet-wide';

/**
 * A fleet where most IPs fail bans nobody (the observer or the uplink is the
 * likelier fault): records fleet_failure when it begins and while it spares
 * someone, and fleet_recovered when it ends. The fail-ratio rule reads
 * `fleetWide` from the evidence and bans nobody meanwhile.
 */
export const fleetWideRule: Rule = {
  name: NAME,
  metrics: [],
  decide({ fleetWide, fleet, qualifying, input }) {
    const verdicts: Verdict[] = [];
    if (fleetWide && (!input.previous.fleetWide || qualifying.length)) {
      verdicts.push({
        decision: {
          type: 'fleet_failure',
          evidence: fleet,
          suppressed: qualifying,
        },
        by: NAME,
        event: {
          type: 'fleet_failure',
          rule: NAME,
          evidence: { ...fleet, suppressed: qualifying },
        },
        perMinute: true,
      });
    }
    if (!fleetWide && input.previous.fleetWide) {
      verdicts.push({
        decision: { type: 'fleet_recovered', evidence: fleet },
        by: NAME,
        event: { type: 'fleet_recovered', rule: NAME, evidence: { ...fleet } },
        perMinute: true,
      });
    }
    return verdicts;
  },
};
