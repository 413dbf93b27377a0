import type { Ban } from '../blocklist.js';
import type {
  CapEvidence,
  Evidence,
  IpEvidence,
  PolicyKnobs,
  Verdict,
} from './evidence.js';

/** How many automatic bans may be in force: max(1, floor(N x fraction)). */
export function automaticBanCap(
  reportingIps: number,
  maxBanFraction: number,
): number {
  // The epsilon keeps 10 x 0.3 = 2.9999999999999996 from flooring to 2.
  return Math.max(1, Math.floor(reportingIps * maxBanFraction + 1e-9));
}

/** The n-th automatic ban within 24 h lasts banSeconds x n, capped. */
export function banDurationSeconds(
  offense: number,
  knobs: Pick<PolicyKnobs, 'banSeconds' | 'maxBanSeconds'>,
): number {
  return Math.min(knobs.banSeconds * offense, knobs.maxBanSeconds);
}

/**
 * The safety cap, shared by every rule that bans: automatic bans in force plus
 * the bans earlier rules made in this decision never exceed the cap. Banned
 * IPs that fell silent still count in N: the cap is a share of the fleet.
 */
export function capRoom(
  evidence: Evidence,
  knobs: PolicyKnobs,
  earlier: readonly Verdict[],
  extraIps: readonly string[] = [],
) {
  const automaticInForce = [...evidence.bansInForce.values()].filter(
    (ban) => !ban.manual,
  );
  // The reporting IPs, plus the others named (a set of those only: the fleet may be 100,000 IPs).
  const others = new Set<string>();
  for (const ip of automaticInForce.map((b) => b.ip).concat(extraIps))
    if (!evidence.reports(ip)) others.add(ip);
  const fleetSize = evidence.reporting.length + others.size;
  const cap = automaticBanCap(fleetSize, knobs.maxBanFraction);
  const bannedBefore = earlier.filter(
    ({ decision }) => decision.type === 'ban' || decision.type === 'escalation',
  ).length;
  const capEvidence: CapEvidence = {
    reportingIps: fleetSize,
    cap,
    automaticBansInForce: automaticInForce.length + bannedBefore,
    formula: `max(1, floor(${fleetSize} x ${knobs.maxBanFraction})) = ${cap}`,
  };
  return {
    room: Math.max(0, cap - automaticInForce.length - bannedBefore),
    capEvidence,
  };
}

/** A capped decision: the IP qualified but the cap was full. */
export function cappedVerdict(
  by: string,
  evidence: IpEvidence,
  cap: CapEvidence,
  perMinute: boolean,
): Verdict {
  return {
    decision: { type: 'capped', ip: evidence.ip, evidence, cap },
    by,
    event: {
      type: 'capped',
      ip: evidence.ip,
      rule: 'max-ban-fraction',
      evidence: { ...evidence, cap },
    },
    metric: 'CappedBans',
    perMinute,
  };
}

/**
 * An automatic ban starting at `now`, escalated by the IP's recent offenses.
 * `rule` names the rule; a repeat within 24 h is "<rule>-escalated".
 */
export function banVerdict(options: {
  by: string;
  rule: string;
  evidence: IpEvidence;
  reason: string;
  now: number;
  offense: number;
  knobs: PolicyKnobs;
  metric: string;
  extra?: Record<string, unknown>;
  perMinute?: boolean;
}): Verdict {
  const { evidence, offense, now } = options;
  const type = offense > 1 ? 'escalation' : 'ban';
  const ban: Ban = {
    ip: evidence.ip,
    reason: `${options.reason}${offense > 1 ? `, ban #${offense} in 24 h` : ''}`,
    since: now,
    until: now + banDurationSeconds(offense, options.knobs) * 1000,
    manual: false,
    failRatio: Math.round(evidence.failRatio * 1e4) / 1e4,
    samples: evidence.samples,
    offense,
    rule: offense > 1 ? `${options.rule}-escalated` : options.rule,
  };
  return {
    decision: { type, ip: evidence.ip, ban, evidence },
    by: options.by,
    event: {
      type,
      ip: evidence.ip,
      rule: ban.rule,
      evidence: { ...evidence, ...options.extra, ban },
    },
    metric: options.metric,
    ...(options.perMinute ? { perMinute: true } : {}),
  };
}
