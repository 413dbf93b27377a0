import { banVerdict, cappedVerdict, capRoom } from './cap.js';
import type { IpEvidence, Rule, Verdict } from './evidence.js';
import { isAllowlisted } from './evidence.js';

const NAME = 'fail-ratio';

/** Worst first: highest ratio, then most evidence, then IP for a total order. */
function worstFirst(a: IpEvidence, b: IpEvidence): number {
  return (
    b.failRatio - a.failRatio ||
    b.samples - a.samples ||
    (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)
  );
}

/**
 * Bans the IPs whose counted connect failures reach failRatio on enough
 * samples (qualifying, from the evidence), unless the failure is fleet-wide;
 * allowlisted IPs are spared and recorded; the rest go worst first within the
 * safety cap, and the n-th ban in 24 h lasts n x banSeconds.
 */
export const failRatioRule: Rule = {
  name: NAME,
  metrics: ['BansDecided', 'CappedBans'],
  decide(evidence, knobs, earlier) {
    if (evidence.fleetWide) return [];
    const verdicts: Verdict[] = [];
    const candidates: IpEvidence[] = [];
    for (const ipEvidence of evidence.qualifying) {
      if (isAllowlisted(ipEvidence.ip, knobs.allowlist)) {
        verdicts.push({
          decision: {
            type: 'allowlisted',
            ip: ipEvidence.ip,
            evidence: ipEvidence,
          },
          by: NAME,
          event: {
            type: 'allowlisted',
            ip: ipEvidence.ip,
            rule: 'allowlist',
            evidence: { ...ipEvidence },
          },
          perMinute: true,
        });
      } else candidates.push(ipEvidence);
    }
    candidates.sort(worstFirst);
    const { room, capEvidence } = capRoom(evidence, knobs, earlier);
    candidates.forEach((ipEvidence, index) => {
      if (index >= room) {
        verdicts.push(cappedVerdict(NAME, ipEvidence, capEvidence, true));
        return;
      }
      verdicts.push(
        banVerdict({
          by: NAME,
          rule: NAME,
          evidence: ipEvidence,
          reason: `connect failures ${ipEvidence.connectFailed}/${ipEvidence.samples} (${Math.round(ipEvidence.failRatio * 100)}%) >= ${Math.round(knobs.failRatio * 100)}%`,
          now: evidence.now,
          offense: evidence.recentOffenses(ipEvidence.ip).length + 1,
          knobs,
          metric: 'BansDecided',
        }),
      );
    });
    return verdicts;
  },
};
