import type {
  PolicyInput,
  PolicyKnobs,
  PolicyResult,
  Rule,
  Verdict,
} from './rules/evidence.js';
import { gatherEvidence } from './rules/evidence.js';
import { failRatioRule } from './rules/fail-ratio.js';
import { fleetWideRule } from './rules/fleet-wide.js';
import { originOutageRule } from './rules/origin-outage.js';
import { probeReleaseRule } from './rules/probe-release.js';
import { silentRule } from './rules/silent.js';
import { silentReleaseRule } from './rules/silent-release.js';

export { automaticBanCap, banDurationSeconds } from './rules/cap.js';
export type {
  CapEvidence,
  Decision,
  DecisionEvent,
  FleetEvidence,
  IpEvidence,
  NewestReport,
  OriginEvidence,
  PolicyInput,
  PolicyKnobs,
  PolicyResult,
  ProbeMinute,
  Rule,
  SilenceEvidence,
  Verdict,
} from './rules/evidence.js';
export { isAllowlisted } from './rules/evidence.js';

/**
 * The detection rules, in the order they decide. Adding a rule: its file in
 * rules/, its test, one line here, its knobs (config.ts, README) and its row
 * in docs/policy.md.
 */
export const RULES: readonly Rule[] = [
  originOutageRule,
  fleetWideRule,
  failRatioRule,
  silentRule,
  silentReleaseRule,
  probeReleaseRule,
];

/**
 * Decides one minute: which IPs to ban, release early, or spare and why. Pure:
 * same input, same decisions, whatever the order of rows or bans. The facts
 * are gathered once; each rule of RULES then decides in turn (docs/policy.md).
 */
export function decideMinute(
  input: PolicyInput,
  knobs: PolicyKnobs,
): PolicyResult {
  const evidence = gatherEvidence(input, knobs);
  const verdicts: Verdict[] = [];
  const metrics: Record<string, number> = {
    ReportingIps: evidence.reporting.length,
    OriginOutages: evidence.outages.size,
    FleetWideFailure: evidence.fleetWide ? 1 : 0,
  };
  for (const rule of RULES) {
    for (const metric of rule.metrics) metrics[metric] ??= 0;
    for (const verdict of rule.decide(evidence, knobs, verdicts)) {
      verdicts.push(verdict);
      if (verdict.metric)
        metrics[verdict.metric] = (metrics[verdict.metric] ?? 0) + 1;
    }
  }
  const decisions = verdicts.map((v) => v.decision);
  return {
    decisions,
    verdicts,
    reporting: evidence.reporting,
    outages: [...evidence.outages.keys()].sort(),
    fleetWide: evidence.fleetWide,
    fleetSilent:
      decisions.some((d) => d.type === 'fleet_silence') ||
      ((input.previous.fleetSilent ?? false) &&
        !decisions.some((d) => d.type === 'fleet_silence_recovered')),
    capInForce: decisions.some((d) => d.type === 'capped'),
    metrics,
  };
}
