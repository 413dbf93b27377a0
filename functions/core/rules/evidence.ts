import type { IpEvidence } from '#contract/views';
import type { Ban } from '../blocklist.js';
import { isBanActive } from '../blocklist.js';
import type { Config } from '../config.js';
import type { EventType } from '../events.js';
import type { Cidr } from '../ip.js';
import { cidrContains, parseIp } from '../ip.js';
import type { Leases } from '../leases.js';
import { getOrInsert } from '../maps.js';
import type { MinuteTally, StatusCounts } from '../tally.js';
import { addCounts, emptyCounts, UNKNOWN_ORIGIN } from '../tally.js';

/** An IP's evidence is shown to clients (GET /v1/fleet, the CLI): the contract defines it. */
export type { IpEvidence };

/**
 * The knobs the policy reads: a slice of Config, so their names, types and
 * documentation are those of functions/core/config.ts and cannot drift.
 */
export type PolicyKnobs = Pick<
  Config,
  | 'failRatio'
  | 'minSamples'
  | 'banSeconds'
  | 'maxBanSeconds'
  | 'maxBanFraction'
  | 'originOutageMinIps'
  | 'originOutageRatio'
  | 'fleetFailureShare'
  | 'fleetMinIps'
  | 'releaseMinutes'
  | 'probeOkRatio'
  | 'probeMinSamples'
  | 'allowlist'
  | 'dryRun'
  | 'graceSeconds'
  | 'silentLeases'
  | 'fleetSilenceShare'
>;

export type PolicyInput = {
  /** The minute being decided: the last minute of the window. */
  minute: number;
  /** Decision time (the minute's close); bans start here. */
  now: number;
  /** Rows of the window's minutes (minute - windowMinutes + 1 .. minute). */
  window: readonly MinuteTally[];
  /** Probe rows of the last releaseMinutes + 1 minutes (may overlap `window`): the release window's rows. */
  recent: readonly MinuteTally[];
  /** Rows newer than the window (a closing decision made later): read only for each IP's newest report. */
  latest?: readonly MinuteTally[];
  /** Bans as stored (the policy itself ignores those not in force at `now`). */
  bans: readonly Ban[];
  /** Start times of each IP's automatic bans in the 24 h before `now`. */
  offenses: Readonly<Record<string, readonly number[]>>;
  /** What the previous decision found, so conditions are reported when they begin and end. */
  previous: {
    outages: readonly string[];
    fleetWide: boolean;
    fleetSilent?: boolean;
    /** When the previous live decision was made (epoch ms). */
    at?: number;
  };
  /** The agents' leases, folded up to the pass that decides (core/leases.ts). */
  leases?: Leases;
  /**
   * A minute's closing decision, made after the fact: silence, judged
   * against the clock, is left to the live decisions.
   */
  closing?: boolean;
};

export type OriginEvidence = {
  origin: string;
  relayingIps: number;
  failingIps: number;
};
export type CapEvidence = {
  reportingIps: number;
  cap: number;
  automaticBansInForce: number;
  formula: string;
};
export type FleetEvidence = {
  reportingIps: number;
  failingIps: number;
  share: number;
};
export type ProbeMinute = { minute: number; ok: number; connectFailed: number };
export type SilenceEvidence = {
  recentIps: number;
  quietIps: number;
  share: number;
};
/** An IP's newest report in the window (by heartbeat ts): what it says now. */
export type NewestReport = {
  observedAt: number;
  ok: number;
  connectFailed: number;
  healthy: boolean;
};

/** The audit event a decision is recorded as (the aggregator adds time, minute and enforced). */
export type DecisionEvent = {
  type: EventType;
  ip?: string;
  origin?: string;
  rule: string;
  evidence: Record<string, unknown>;
};

/** What a rule decided, with the numbers behind it. */
export type Decision =
  | { type: 'ban' | 'escalation'; ip: string; ban: Ban; evidence: IpEvidence }
  | { type: 'capped'; ip: string; evidence: IpEvidence; cap: CapEvidence }
  | { type: 'allowlisted'; ip: string; evidence: IpEvidence }
  | { type: 'release'; ip: string; ban: Ban; healthyMinutes: ProbeMinute[] }
  | {
      type: 'origin_outage' | 'origin_recovered';
      origin: string;
      evidence: OriginEvidence;
    }
  | { type: 'fleet_failure'; evidence: FleetEvidence; suppressed: IpEvidence[] }
  | { type: 'fleet_recovered'; evidence: FleetEvidence }
  | {
      type: 'fleet_silence' | 'fleet_silence_recovered';
      evidence: SilenceEvidence;
      spared: string[];
    };

/**
 * A decision as one rule made it: with the rule's name, the event it is
 * recorded as and the metric it counts in, so the aggregator applies, records
 * and counts decisions without knowing the rules.
 */
export type Verdict = {
  decision: Decision;
  /** The rule (an entry of RULES) that made the decision. */
  by: string;
  event: DecisionEvent;
  /** The metric this decision adds one to, if any. */
  metric?: string;
  /**
   * A condition that lasts (an outage, a capped or allowlisted IP): recorded
   * once per minute, by the minute's closing decision, not by every live pass.
   */
  perMinute?: boolean;
};

export type PolicyResult = {
  decisions: Decision[];
  /** The same decisions, each with its rule, event and metric. */
  verdicts: Verdict[];
  /** IPs that reported in the window, with their evidence (the fleet view). */
  reporting: IpEvidence[];
  outages: string[];
  fleetWide: boolean;
  /** True while a large share of leased IPs is silent together (rule silent). */
  fleetSilent: boolean;
  capInForce: boolean;
  /** Gauges and per-rule decision counts, logged as metrics. */
  metrics: Record<string, number>;
};

/** The facts every rule reads, computed once per decision. */
export type Evidence = {
  input: PolicyInput;
  now: number;
  byIp: Map<string, Map<string, StatusCounts>>;
  stats: Map<string, OriginStats>;
  outages: Map<string, OriginEvidence>;
  /** IPs that reported in the window, sorted by IP. */
  reporting: IpEvidence[];
  bansInForce: Map<string, Ban>;
  /** Starts of the IP's automatic bans in the 24 h before now. */
  recentOffenses(ip: string): number[];
  fleet: FleetEvidence;
  fleetWide: boolean;
  /** IPs not banned whose counted samples and ratio qualify them for a ban. */
  qualifying: IpEvidence[];
  /** Per IP, its newest report in the window; only rows that carry their heartbeat time. */
  newest: Map<string, NewestReport>;
};

/**
 * A detection rule: a pure function over the decision's evidence. Rules run
 * in the order of RULES and see the decisions of the rules before them (the
 * safety cap is shared).
 */
export type Rule = {
  name: string;
  /** Metrics its decisions count in; logged as 0 when it decides nothing. */
  metrics: readonly string[];
  decide(
    evidence: Evidence,
    knobs: PolicyKnobs,
    earlier: readonly Verdict[],
  ): Verdict[];
};

const DAY_MS = 86_400_000;

export const ratioOf = (failed: number, samples: number) =>
  samples === 0 ? 0 : failed / samples;
export const byIpOrder = (a: { ip: string }, b: { ip: string }) =>
  a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0;

export function isAllowlisted(ip: string, allowlist: readonly Cidr[]): boolean {
  const parsed = parseIp(ip);
  return (
    parsed !== undefined && allowlist.some((cidr) => cidrContains(cidr, parsed))
  );
}

/**
 * A backlog row: delivered more than the grace after its newest heartbeat
 * was observed, or delivered on the IP's return from a silence (`returnedAt`)
 * with heartbeats observed before that return.
 */
export function isLate(
  row: MinuteTally,
  { graceMs, returnedAt }: { graceMs: number; returnedAt: number | undefined },
): boolean {
  if (row.receivedAt === undefined || row.observedAt === undefined)
    return false;
  if (row.receivedAt - row.observedAt > graceMs) return true;
  return (
    returnedAt !== undefined &&
    row.receivedAt >= returnedAt &&
    row.observedAt < returnedAt
  );
}

/**
 * Per IP, per origin: the window's counts of relays and probes together. The
 * connect failures of late rows are kept apart (per IP): a machine that
 * delivers its backlog after a repair is not judged on what it suffered then.
 */
function sumByIpAndOrigin(
  rows: readonly MinuteTally[],
  graceMs: number,
  leases: Leases | undefined,
) {
  const byIp = new Map<string, Map<string, StatusCounts>>();
  const lateFailures = new Map<string, number>();
  for (const row of rows) {
    const origins = getOrInsert(
      byIp,
      row.ip,
      () => new Map<string, StatusCounts>(),
    );
    const late = isLate(row, {
      graceMs,
      returnedAt: leases?.[row.ip]?.[3],
    });
    for (const { origin, counts } of row.origins) {
      const into = getOrInsert(origins, origin, emptyCounts);
      if (!late) addCounts(into, counts);
      else {
        addCounts(into, { ...counts, connect_failed: 0 });
        lateFailures.set(
          row.ip,
          (lateFailures.get(row.ip) ?? 0) + counts.connect_failed,
        );
      }
    }
  }
  return { byIp, lateFailures };
}

/**
 * Per IP, its newest report: the rows with the latest heartbeat time. It is
 * healthy when it has a little volume (the probation minimum) and a ratio
 * below failRatio; then it vetoes a ban on the IP's older failures.
 */
function newestReports(
  rows: readonly MinuteTally[],
  knobs: PolicyKnobs,
): Map<string, NewestReport> {
  const newest = new Map<string, NewestReport>();
  for (const row of rows) {
    if (row.observedAt === undefined) continue;
    const current = newest.get(row.ip);
    if (current && current.observedAt > row.observedAt) continue;
    const report =
      current && current.observedAt === row.observedAt
        ? current
        : {
            observedAt: row.observedAt,
            ok: 0,
            connectFailed: 0,
            healthy: false,
          };
    for (const { counts } of row.origins) {
      report.ok += counts.ok;
      report.connectFailed += counts.connect_failed;
    }
    newest.set(row.ip, report);
  }
  const minimum = Math.min(knobs.probeMinSamples, knobs.minSamples);
  for (const report of newest.values()) {
    const samples = report.ok + report.connectFailed;
    report.healthy =
      samples >= minimum &&
      ratioOf(report.connectFailed, samples) < knobs.failRatio;
  }
  return newest;
}

/** Per origin: who tried it in the window and who reached it. */
export type OriginStats = OriginEvidence & { reachedBy: Set<string> };

/**
 * Per named origin, the IPs that tried it (ok, connect_failed or origin_error)
 * and those that reached it (their failure ratio on it stays below failRatio).
 * The unknown origin is left out: nothing can be cross-checked without a name.
 */
function originStatsOf(
  byIp: Map<string, Map<string, StatusCounts>>,
  knobs: PolicyKnobs,
): Map<string, OriginStats> {
  const stats = new Map<string, OriginStats>();
  for (const [ip, origins] of byIp) {
    for (const [origin, c] of origins) {
      if (origin === UNKNOWN_ORIGIN) continue;
      const tried = c.ok + c.connect_failed + c.origin_error;
      if (tried === 0) continue;
      const entry = getOrInsert(
        stats,
        origin,
        (): OriginStats => ({
          origin,
          relayingIps: 0,
          failingIps: 0,
          reachedBy: new Set(),
        }),
      );
      entry.relayingIps++;
      if (ratioOf(c.connect_failed + c.origin_error, tried) >= knobs.failRatio)
        entry.failingIps++;
      else entry.reachedBy.add(ip);
    }
  }
  return stats;
}

export const originEvidenceOf = ({
  origin,
  relayingIps,
  failingIps,
}: OriginEvidence): OriginEvidence => ({ origin, relayingIps, failingIps });

/**
 * An origin is in outage when it fails from at least originOutageMinIps IPs
 * and at least originOutageRatio of the IPs that relay it: then its failures
 * say nothing about any one machine. Counting failing IPs, not relaying ones,
 * is Kubernetes' zone rule (PartialDisruption needs > 2 NotReady nodes and a
 * share): two failing IPs of three are two suspects, not an outage.
 */
function findOriginOutages(
  stats: Map<string, OriginStats>,
  knobs: PolicyKnobs,
): Map<string, OriginEvidence> {
  const outages = new Map<string, OriginEvidence>();
  for (const [origin, entry] of stats) {
    if (
      entry.failingIps >= knobs.originOutageMinIps &&
      entry.failingIps / entry.relayingIps >= knobs.originOutageRatio - 1e-9
    ) {
      outages.set(origin, originEvidenceOf(entry));
    }
  }
  return outages;
}

/** Evidence of an IP with no samples (an IP judged on its silence). */
export function emptyEvidence(ip: string): IpEvidence {
  return {
    ip,
    samples: 0,
    ok: 0,
    connectFailed: 0,
    failRatio: 0,
    excusedFailures: 0,
    uncorroboratedFailures: 0,
    lateFailures: 0,
    originErrors: 0,
    errors: 0,
    origins: 0,
  };
}

/**
 * What counts against `ip`: ok and connect_failed, except on origins in
 * outage (excused), and connect failures on named origins that no other IP
 * reached in the window (uncorroborated: a dead origin only this machine
 * relays is not this machine's fault). Without `judged` the counts are raw.
 */
function evidenceOf(
  ip: string,
  origins: Map<string, StatusCounts>,
  judged?: {
    outages: Map<string, OriginEvidence>;
    stats: Map<string, OriginStats>;
    lateFailures: number;
  },
): IpEvidence {
  const evidence: IpEvidence = {
    ...emptyEvidence(ip),
    lateFailures: judged?.lateFailures ?? 0,
    origins: origins.size,
  };
  for (const [origin, c] of origins) {
    evidence.originErrors += c.origin_error;
    evidence.errors += c.error;
    if (judged?.outages.has(origin)) {
      evidence.excusedFailures += c.connect_failed;
      continue;
    }
    evidence.ok += c.ok;
    const reachedBy = judged?.stats.get(origin)?.reachedBy;
    const corroborated =
      !judged ||
      origin === UNKNOWN_ORIGIN ||
      (reachedBy !== undefined && reachedBy.size > (reachedBy.has(ip) ? 1 : 0));
    if (corroborated) evidence.connectFailed += c.connect_failed;
    else evidence.uncorroboratedFailures += c.connect_failed;
  }
  evidence.samples = evidence.ok + evidence.connectFailed;
  evidence.failRatio = ratioOf(evidence.connectFailed, evidence.samples);
  return evidence;
}

/**
 * The facts of one decision: the window's counts per IP and origin, origin
 * outages (excused) and the cross-check (a connect failure counts only where
 * some other IP reached the origin), bans in force, the fleet-wide test on raw
 * counts, and which IPs qualify for a ban (>= minSamples counted samples, or
 * probeMinSamples on probation, at a ratio >= failRatio, unless its newest
 * report is healthy: newer healthy samples veto a ban on older failures).
 */
export function gatherEvidence(
  input: PolicyInput,
  knobs: PolicyKnobs,
): Evidence {
  const { now } = input;
  const { byIp, lateFailures } = sumByIpAndOrigin(
    input.window,
    knobs.graceSeconds * 1000,
    input.leases,
  );
  const stats = originStatsOf(byIp, knobs);
  const outages = findOriginOutages(stats, knobs);
  const reporting = [...byIp]
    .map(([ip, origins]) =>
      evidenceOf(ip, origins, {
        outages,
        stats,
        lateFailures: lateFailures.get(ip) ?? 0,
      }),
    )
    .sort(byIpOrder);
  const newest = newestReports(
    [...input.window, ...(input.latest ?? [])],
    knobs,
  );
  const bansInForce = new Map(
    input.bans
      .filter((ban) => isBanActive(ban, now))
      .map((ban) => [ban.ip, ban] as const),
  );
  const recentOffenses = (ip: string) =>
    (input.offenses[ip] ?? []).filter(
      (start) => start > now - DAY_MS && start <= now,
    );

  // Fleet-wide: judged on raw counts (outages not excused), so a cut-off
  // region that fails everywhere is recognised whatever its origins.
  const rawFailing = [...byIp].filter(([, origins]) => {
    const raw = evidenceOf('', origins);
    return raw.samples >= knobs.minSamples && raw.failRatio >= knobs.failRatio;
  }).length;
  const fleet: FleetEvidence = {
    reportingIps: reporting.length,
    failingIps: rawFailing,
    share: reporting.length ? rawFailing / reporting.length : 0,
  };
  const fleetWide =
    reporting.length >= knobs.fleetMinIps &&
    fleet.share >= knobs.fleetFailureShare - 1e-9;

  const qualifying = reporting.filter((evidence) => {
    if (bansInForce.has(evidence.ip) || newest.get(evidence.ip)?.healthy)
      return false;
    const onProbation = recentOffenses(evidence.ip).length > 0;
    const needed = onProbation
      ? Math.min(knobs.probeMinSamples, knobs.minSamples)
      : knobs.minSamples;
    return evidence.samples >= needed && evidence.failRatio >= knobs.failRatio;
  });

  return {
    input,
    now,
    byIp,
    stats,
    outages,
    reporting,
    bansInForce,
    recentOffenses,
    fleet,
    fleetWide,
    qualifying,
    newest,
  };
}
