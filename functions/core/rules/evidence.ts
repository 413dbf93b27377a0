import type { Cidr } from '#contract/ip';
import { cidrContains, parseIp } from '#contract/ip';
import type { IpEvidence } from '#contract/views';
import type { Ban } from '../blocklist.js';
import { isBanActive } from '../blocklist.js';
import type { Config } from '../config.js';
import type { EventType } from '../events.js';
import type { Leases } from '../leases.js';
import type { MinuteTally, NewestReports, ReportCounts } from '../tally.js';
import {
  PAIR_ERROR,
  PAIR_FAILED,
  PAIR_OK,
  PAIR_ORIGIN_ERROR,
  UNKNOWN_ORIGIN,
  WindowTally,
} from '../tally.js';

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
  /**
   * The same rows folded already (folded with the knobs' grace), so decisions
   * over the same rows fold them once; `window` is then not read.
   */
  windowTally?: WindowTally;
  /** Probe rows of the last releaseMinutes + 1 minutes (may overlap `window`): the release window's rows. */
  recent: readonly MinuteTally[];
  /** Each IP's newest report among rows newer than the window (a closing decision made later): the veto only. */
  latest?: NewestReports;
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
export type NewestReport = ReportCounts & { healthy: boolean };

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
  /** The window's rows folded: per IP and origin, the counts. */
  tally: WindowTally;
  /** An origin's relaying and failing IPs in the window; undefined when nobody tried it. */
  originStats(origin: string): OriginStats | undefined;
  outages: Map<string, OriginEvidence>;
  /** IPs that reported in the window, sorted by IP. */
  reporting: IpEvidence[];
  /** Whether the IP reported in the window (is in `reporting`). */
  reports(ip: string): boolean;
  bansInForce: Map<string, Ban>;
  /** Starts of the IP's automatic bans in the 24 h before now. */
  recentOffenses(ip: string): number[];
  fleet: FleetEvidence;
  fleetWide: boolean;
  /** IPs not banned whose counted samples and ratio qualify them for a ban. */
  qualifying: IpEvidence[];
  /** The IP's newest report in the window (and `latest`); only rows that carry their heartbeat time count. */
  newest(ip: string): NewestReport | undefined;
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

/** Per origin: who tried it in the window and who failed it. */
export type OriginStats = OriginEvidence;

export const originEvidenceOf = ({
  origin,
  relayingIps,
  failingIps,
}: OriginEvidence): OriginEvidence => ({ origin, relayingIps, failingIps });

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

/** Healthy: a little volume (the probation minimum) and a ratio below failRatio. */
function isHealthy(ok: number, failed: number, knobs: PolicyKnobs): boolean {
  const samples = ok + failed;
  return (
    samples >= Math.min(knobs.probeMinSamples, knobs.minSamples) &&
    ratioOf(failed, samples) < knobs.failRatio
  );
}

/**
 * An origin is in outage when it fails from at least originOutageMinIps IPs
 * and at least originOutageRatio of the IPs that relay it: then its failures
 * say nothing about any one machine. Counting failing IPs, not relaying ones,
 * is Kubernetes' zone rule (PartialDisruption needs > 2 NotReady nodes and a
 * share): two failing IPs of three are two suspects, not an outage.
 */
const isOutage = (relaying: number, failing: number, knobs: PolicyKnobs) =>
  failing >= knobs.originOutageMinIps &&
  failing / relaying >= knobs.originOutageRatio - 1e-9;

/**
 * The facts of one decision, from the window's counts per IP and origin
 * (relays and probes together; connect failures of late rows kept apart per
 * IP: a machine that delivers its backlog after a repair is not judged on
 * what it suffered then):
 * - per named origin, the IPs that tried it (ok, connect_failed or
 *   origin_error) and those that reached it (their failure ratio on it stays
 *   below failRatio); the unknown origin is left out: nothing can be
 *   cross-checked without a name;
 * - origin outages, whose failures are excused for every machine;
 * - what counts against each IP: ok and connect_failed, except on origins in
 *   outage (excused), and connect failures on named origins that no other IP
 *   reached in the window (uncorroborated: a dead origin only this machine
 *   relays is not this machine's fault);
 * - bans in force, the fleet-wide test on raw counts, and which IPs qualify
 *   for a ban (>= minSamples counted samples, or probeMinSamples on
 *   probation, at a ratio >= failRatio, unless its newest report is healthy:
 *   newer healthy samples veto a ban on older failures).
 * Two walks over the pairs, no object per pair.
 */
export function gatherEvidence(
  input: PolicyInput,
  knobs: PolicyKnobs,
): Evidence {
  const { now } = input;
  const graceMs = knobs.graceSeconds * 1000;
  const tally = input.windowTally ?? WindowTally.of(input.window, { graceMs });
  if (tally.graceMs !== graceMs)
    throw new Error('the window was folded with another grace');
  const { failRatio, minSamples } = knobs;

  const bansInForce = new Map(
    input.bans
      .filter((ban) => isBanActive(ban, now))
      .map((ban) => [ban.ip, ban] as const),
  );
  const recentOffenses = (ip: string) =>
    (input.offenses[ip] ?? []).filter(
      (start) => start > now - DAY_MS && start <= now,
    );
  const newestCache = new Map<string, NewestReport | undefined>();
  const newest = (ip: string): NewestReport | undefined => {
    if (newestCache.has(ip)) return newestCache.get(ip);
    const index = tally.indexOfIp(ip);
    const inWindow = index === undefined ? undefined : tally.newestOf(index);
    const later = input.latest?.get(ip);
    let report: NewestReport | undefined;
    const pick = inWindow && later && later.observedAt > inWindow.observedAt;
    const base = pick ? later : (inWindow ?? later);
    if (base) {
      report = { ...base, healthy: false };
      if (inWindow && later && inWindow.observedAt === later.observedAt) {
        report.ok = inWindow.ok + later.ok;
        report.connectFailed = inWindow.connectFailed + later.connectFailed;
      }
      report.healthy = isHealthy(report.ok, report.connectFailed, knobs);
    }
    newestCache.set(ip, report);
    return report;
  };

  const { originStats, outages, reporting, fleet, fleetWide } = foldEvidence(
    tally,
    input.leases,
    knobs,
  );
  const leastSamples = Math.min(knobs.probeMinSamples, minSamples);
  const qualifying = reporting.filter((evidence) => {
    if (evidence.samples < leastSamples || evidence.failRatio < failRatio)
      return false;
    if (bansInForce.has(evidence.ip) || newest(evidence.ip)?.healthy)
      return false;
    const onProbation = recentOffenses(evidence.ip).length > 0;
    return evidence.samples >= (onProbation ? leastSamples : minSamples);
  });

  return {
    input,
    now,
    tally,
    originStats,
    outages,
    reporting,
    reports: (ip: string) => tally.has(ip),
    bansInForce,
    recentOffenses,
    fleet,
    fleetWide,
    qualifying,
    newest,
  };
}

/** What the counts of a fold say, before bans, offenses and newest reports are looked at. */
type FoldEvidence = Pick<
  Evidence,
  'originStats' | 'outages' | 'reporting' | 'fleet' | 'fleetWide'
>;

/**
 * The fold's evidence of the last decision over each fold, with the leases
 * and knobs it was gathered with: a pass's closing and live decisions often
 * judge the same fold with the same leases and knobs (nothing in it depends
 * on the decision's time), and gather it once. Nothing downstream changes it.
 */
const foldEvidenceMemo = new WeakMap<
  WindowTally,
  {
    rows: number;
    leases: Leases | undefined;
    knobs: PolicyKnobs;
    evidence: FoldEvidence;
  }
>();

/** Per origin and per IP, what the fold's counts say (see gatherEvidence). */
function foldEvidence(
  tally: WindowTally,
  leases: Leases | undefined,
  knobs: PolicyKnobs,
): FoldEvidence {
  const memo = foldEvidenceMemo.get(tally);
  if (
    memo?.rows === tally.rows &&
    memo.leases === leases &&
    memo.knobs === knobs
  )
    return memo.evidence;
  const evidence = foldEvidenceOf(tally, leases, knobs);
  foldEvidenceMemo.set(tally, { rows: tally.rows, leases, knobs, evidence });
  return evidence;
}

function foldEvidenceOf(
  tally: WindowTally,
  leases: Leases | undefined,
  knobs: PolicyKnobs,
): FoldEvidence {
  const unknown = tally.indexOfOrigin(UNKNOWN_ORIGIN) ?? -1;
  const { failRatio, minSamples } = knobs;
  return tally.withReturns(
    (ip) => leases?.[ip]?.[3],
    (view, lateOf) => {
      const { start, size, pairOrigin, pairCounts, origins, ips } = view;
      const relaying = new Int32Array(origins.length);
      const failing = new Int32Array(origins.length);
      const reached = new Int32Array(origins.length);
      const reachedBy = (p: number, o: number) => {
        const tried =
          (pairCounts[p * 4 + PAIR_OK] as number) +
          (pairCounts[p * 4 + PAIR_FAILED] as number) +
          (pairCounts[p * 4 + PAIR_ORIGIN_ERROR] as number);
        if (o === unknown || tried === 0) return 0;
        const failed =
          (pairCounts[p * 4 + PAIR_FAILED] as number) +
          (pairCounts[p * 4 + PAIR_ORIGIN_ERROR] as number);
        return ratioOf(failed, tried) >= failRatio ? -1 : 1;
      };
      for (let ip = 0; ip < ips.length; ip++) {
        const end = (start[ip] as number) + (size[ip] as number);
        for (let p = start[ip] as number; p < end; p++) {
          const o = pairOrigin[p] as number;
          const verdict = reachedBy(p, o);
          if (verdict === 0) continue;
          relaying[o] = (relaying[o] as number) + 1;
          if (verdict < 0) failing[o] = (failing[o] as number) + 1;
          else reached[o] = (reached[o] as number) + 1;
        }
      }
      const outage = new Uint8Array(origins.length);
      const outages = new Map<string, OriginEvidence>();
      for (let o = 0; o < origins.length; o++) {
        if (!relaying[o]) continue;
        if (isOutage(relaying[o] as number, failing[o] as number, knobs)) {
          outage[o] = 1;
          outages.set(origins[o] as string, {
            origin: origins[o] as string,
            relayingIps: relaying[o] as number,
            failingIps: failing[o] as number,
          });
        }
      }
      const originStats = (origin: string): OriginStats | undefined => {
        const o = tally.indexOfOrigin(origin);
        if (o === undefined || !relaying[o]) return undefined;
        return {
          origin,
          relayingIps: relaying[o] as number,
          failingIps: failing[o] as number,
        };
      };

      const reporting: IpEvidence[] = [];
      // Fleet-wide: judged on raw counts (outages not excused), so a cut-off
      // region that fails everywhere is recognised whatever its origins.
      let rawFailing = 0;
      for (const ip of tally.ipOrder()) {
        const evidence: IpEvidence = {
          ...emptyEvidence(ips[ip] as string),
          lateFailures: lateOf(ip),
          origins: size[ip] as number,
        };
        let rawOk = 0;
        let rawFailed = 0;
        const end = (start[ip] as number) + (size[ip] as number);
        for (let p = start[ip] as number; p < end; p++) {
          const o = pairOrigin[p] as number;
          const ok = pairCounts[p * 4 + PAIR_OK] as number;
          const failed = pairCounts[p * 4 + PAIR_FAILED] as number;
          evidence.originErrors += pairCounts[
            p * 4 + PAIR_ORIGIN_ERROR
          ] as number;
          evidence.errors += pairCounts[p * 4 + PAIR_ERROR] as number;
          rawOk += ok;
          rawFailed += failed;
          if (outage[o]) {
            evidence.excusedFailures += failed;
            continue;
          }
          evidence.ok += ok;
          const corroborated =
            o === unknown ||
            (reached[o] as number) - (reachedBy(p, o) > 0 ? 1 : 0) > 0;
          if (corroborated) evidence.connectFailed += failed;
          else evidence.uncorroboratedFailures += failed;
        }
        evidence.samples = evidence.ok + evidence.connectFailed;
        evidence.failRatio = ratioOf(evidence.connectFailed, evidence.samples);
        reporting.push(evidence);
        const rawSamples = rawOk + rawFailed;
        if (
          rawSamples >= minSamples &&
          ratioOf(rawFailed, rawSamples) >= failRatio
        )
          rawFailing++;
      }

      const fleet: FleetEvidence = {
        reportingIps: reporting.length,
        failingIps: rawFailing,
        share: reporting.length ? rawFailing / reporting.length : 0,
      };
      const fleetWide =
        reporting.length >= knobs.fleetMinIps &&
        fleet.share >= knobs.fleetFailureShare - 1e-9;
      return { originStats, outages, reporting, fleet, fleetWide };
    },
  );
}
