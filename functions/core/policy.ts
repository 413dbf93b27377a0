import type { Ban } from './blocklist.js';
import { isBanActive } from './blocklist.js';
import type { Cidr } from './ip.js';
import { cidrContains, parseIp } from './ip.js';
import { getOrInsert } from './maps.js';
import { minuteOf } from './minutes.js';
import type { MinuteTally, StatusCounts } from './tally.js';
import { addCounts, emptyCounts, UNKNOWN_ORIGIN } from './tally.js';

/** The knobs the policy reads (a slice of Config). */
export type PolicyKnobs = {
  failRatio: number;
  minSamples: number;
  banSeconds: number;
  maxBanSeconds: number;
  maxBanFraction: number;
  originOutageMinIps: number;
  originOutageRatio: number;
  fleetFailureShare: number;
  fleetMinIps: number;
  releaseMinutes: number;
  probeOkRatio: number;
  probeMinSamples: number;
  allowlist: readonly Cidr[];
  dryRun: boolean;
};

export type PolicyInput = {
  /** The minute being decided: the last minute of the window. */
  minute: number;
  /** Decision time (the minute's close); bans start here. */
  now: number;
  /** Rows of the window's minutes (minute - windowMinutes + 1 .. minute). */
  window: readonly MinuteTally[];
  /** Probe rows of the last releaseMinutes minutes (may overlap `window`). */
  recent: readonly MinuteTally[];
  /** Bans as stored (the policy itself ignores those not in force at `now`). */
  bans: readonly Ban[];
  /** Start times of each IP's automatic bans in the 24 h before `now`. */
  offenses: Readonly<Record<string, readonly number[]>>;
  /** What the previous run found, so conditions are reported when they begin and end. */
  previous: { outages: readonly string[]; fleetWide: boolean };
};

/** What the numbers were when a rule fired: kept with every event. */
export type IpEvidence = {
  ip: string;
  /** ok + connect_failed on origins not in outage: the samples that count. */
  samples: number;
  ok: number;
  connectFailed: number;
  failRatio: number;
  /** connect_failed on origins in outage: counted against no machine. */
  excusedFailures: number;
  /** connect_failed on origins no other IP reached in the window: nothing to cross-check, so not counted. */
  uncorroboratedFailures: number;
  originErrors: number;
  errors: number;
  origins: number;
};

export type OriginEvidence = { origin: string; relayingIps: number; failingIps: number };

export type Decision =
  | { type: 'ban' | 'escalation'; ip: string; ban: Ban; evidence: IpEvidence }
  | { type: 'capped'; ip: string; evidence: IpEvidence; cap: CapEvidence }
  | { type: 'allowlisted'; ip: string; evidence: IpEvidence }
  | { type: 'release'; ip: string; ban: Ban; healthyMinutes: ProbeMinute[] }
  | { type: 'origin_outage' | 'origin_recovered'; origin: string; evidence: OriginEvidence }
  | { type: 'fleet_failure'; evidence: FleetEvidence; suppressed: IpEvidence[] }
  | { type: 'fleet_recovered'; evidence: FleetEvidence };

export type CapEvidence = { reportingIps: number; cap: number; automaticBansInForce: number; formula: string };
export type FleetEvidence = { reportingIps: number; failingIps: number; share: number };
export type ProbeMinute = { minute: number; ok: number; connectFailed: number };

export type PolicyResult = {
  decisions: Decision[];
  /** IPs that reported in the window, with their evidence (the fleet view). */
  reporting: IpEvidence[];
  outages: string[];
  fleetWide: boolean;
  capInForce: boolean;
};

const DAY_MS = 86_400_000;

/** How many automatic bans may be in force: max(1, floor(N x fraction)). */
export function automaticBanCap(reportingIps: number, maxBanFraction: number): number {
  // The epsilon keeps 10 x 0.3 = 2.9999999999999996 from flooring to 2.
  return Math.max(1, Math.floor(reportingIps * maxBanFraction + 1e-9));
}

/** The n-th automatic ban within 24 h lasts banSeconds x n, capped. */
export function banDurationSeconds(offense: number, knobs: Pick<PolicyKnobs, 'banSeconds' | 'maxBanSeconds'>): number {
  return Math.min(knobs.banSeconds * offense, knobs.maxBanSeconds);
}

export function isAllowlisted(ip: string, allowlist: readonly Cidr[]): boolean {
  const parsed = parseIp(ip);
  return parsed !== undefined && allowlist.some((cidr) => cidrContains(cidr, parsed));
}

const ratioOf = (failed: number, samples: number) => (samples === 0 ? 0 : failed / samples);

/** Per IP, per origin: the window's counts of relays and probes together. */
function sumByIpAndOrigin(rows: readonly MinuteTally[]): Map<string, Map<string, StatusCounts>> {
  const byIp = new Map<string, Map<string, StatusCounts>>();
  for (const row of rows) {
    const origins = getOrInsert(byIp, row.ip, () => new Map<string, StatusCounts>());
    for (const { origin, counts } of row.origins) addCounts(getOrInsert(origins, origin, emptyCounts), counts);
  }
  return byIp;
}

/** Per origin: who tried it in the window and who reached it. */
type OriginStats = OriginEvidence & { reachedBy: Set<string> };

/**
 * Per named origin, the IPs that tried it (ok, connect_failed or origin_error)
 * and those that reached it (their failure ratio on it stays below failRatio).
 * The unknown origin is left out: nothing can be cross-checked without a name.
 */
function originStatsOf(byIp: Map<string, Map<string, StatusCounts>>, knobs: PolicyKnobs): Map<string, OriginStats> {
  const stats = new Map<string, OriginStats>();
  for (const [ip, origins] of byIp) {
    for (const [origin, c] of origins) {
      if (origin === UNKNOWN_ORIGIN) continue;
      const tried = c.ok + c.connect_failed + c.origin_error;
      if (tried === 0) continue;
      const entry = getOrInsert(stats, origin, (): OriginStats => ({ origin, relayingIps: 0, failingIps: 0, reachedBy: new Set() }));
      entry.relayingIps++;
      if (ratioOf(c.connect_failed + c.origin_error, tried) >= knobs.failRatio) entry.failingIps++;
      else entry.reachedBy.add(ip);
    }
  }
  return stats;
}

const originEvidenceOf = ({ origin, relayingIps, failingIps }: OriginEvidence): OriginEvidence => ({ origin, relayingIps, failingIps });

/**
 * An origin is in outage when it fails from at least originOutageMinIps IPs
 * and at least originOutageRatio of the IPs that relay it: then its failures
 * say nothing about any one machine. Counting failing IPs, not relaying ones,
 * is Kubernetes' zone rule (PartialDisruption needs > 2 NotReady nodes and a
 * share): two failing IPs of three are two suspects, not an outage.
 */
function findOriginOutages(stats: Map<string, OriginStats>, knobs: PolicyKnobs): Map<string, OriginEvidence> {
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

/**
 * What counts against `ip`: ok and connect_failed, except on origins in
 * outage (excused), and connect failures on named origins that no other IP
 * reached in the window (uncorroborated: a dead origin only this machine
 * relays is not this machine's fault). Without `stats` the counts are raw.
 */
function evidenceOf(
  ip: string,
  origins: Map<string, StatusCounts>,
  judged?: { outages: Map<string, OriginEvidence>; stats: Map<string, OriginStats> },
): IpEvidence {
  const evidence: IpEvidence = {
    ip,
    samples: 0,
    ok: 0,
    connectFailed: 0,
    failRatio: 0,
    excusedFailures: 0,
    uncorroboratedFailures: 0,
    originErrors: 0,
    errors: 0,
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
      !judged || origin === UNKNOWN_ORIGIN || (reachedBy !== undefined && reachedBy.size > (reachedBy.has(ip) ? 1 : 0));
    if (corroborated) evidence.connectFailed += c.connect_failed;
    else evidence.uncorroboratedFailures += c.connect_failed;
  }
  evidence.samples = evidence.ok + evidence.connectFailed;
  evidence.failRatio = ratioOf(evidence.connectFailed, evidence.samples);
  return evidence;
}

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

/** Worst first: highest ratio, then most evidence, then IP for a total order. */
function worstFirst(a: IpEvidence, b: IpEvidence): number {
  return b.failRatio - a.failRatio || b.samples - a.samples || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);
}

/**
 * Decides one minute: which IPs to ban, release early, or spare and why. Pure:
 * same input, same decisions, whatever the order of rows or bans.
 *
 * Rules, in order: origins failing from most of their IPs are excused (origin
 * outage), and a connect failure counts only where some other IP reached the
 * origin (cross-check); a fleet where most IPs fail bans nobody (fleet-wide
 * failure); an IP qualifies with >= minSamples counted samples and a connect-failure ratio
 * >= failRatio (an IP off a recent ban needs only probeMinSamples: probation);
 * allowlisted IPs are spared; automatic bans stay within the cap, worst first;
 * the n-th ban in 24 h lasts n x banSeconds up to maxBanSeconds; a banned IP
 * whose probes were healthy for releaseMinutes complete minutes is released.
 */
export function decideMinute(input: PolicyInput, knobs: PolicyKnobs): PolicyResult {
  const { now } = input;
  const decisions: Decision[] = [];
  const byIp = sumByIpAndOrigin(input.window);
  const stats = originStatsOf(byIp, knobs);
  const outages = findOriginOutages(stats, knobs);
  const previousOutages = new Set(input.previous.outages);

  for (const [origin, evidence] of [...outages].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!previousOutages.has(origin)) decisions.push({ type: 'origin_outage', origin, evidence });
  }
  for (const origin of [...previousOutages].sort()) {
    if (!outages.has(origin)) {
      const current = stats.get(origin);
      decisions.push({
        type: 'origin_recovered',
        origin,
        evidence: current ? originEvidenceOf(current) : { origin, relayingIps: 0, failingIps: 0 },
      });
    }
  }

  const reporting = [...byIp]
    .map(([ip, origins]) => evidenceOf(ip, origins, { outages, stats }))
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  const bansInForce = new Map(
    input.bans.filter((ban) => isBanActive(ban, now)).map((ban) => [ban.ip, ban] as const),
  );
  const recentOffenses = (ip: string) => (input.offenses[ip] ?? []).filter((start) => start > now - DAY_MS && start <= now);

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
  const fleetWide = reporting.length >= knobs.fleetMinIps && fleet.share >= knobs.fleetFailureShare - 1e-9;

  const qualifying = reporting.filter((evidence) => {
    if (bansInForce.has(evidence.ip)) return false;
    const onProbation = recentOffenses(evidence.ip).length > 0;
    const needed = onProbation ? Math.min(knobs.probeMinSamples, knobs.minSamples) : knobs.minSamples;
    return evidence.samples >= needed && evidence.failRatio >= knobs.failRatio;
  });

  let capInForce = false;
  if (fleetWide) {
    if (!input.previous.fleetWide || qualifying.length) {
      decisions.push({ type: 'fleet_failure', evidence: fleet, suppressed: qualifying });
    }
  } else {
    if (input.previous.fleetWide) decisions.push({ type: 'fleet_recovered', evidence: fleet });
    const candidates: IpEvidence[] = [];
    for (const evidence of qualifying) {
      if (isAllowlisted(evidence.ip, knobs.allowlist)) decisions.push({ type: 'allowlisted', ip: evidence.ip, evidence });
      else candidates.push(evidence);
    }
    candidates.sort(worstFirst);
    const automaticInForce = [...bansInForce.values()].filter((ban) => !ban.manual);
    // Banned IPs that fell silent still count in N: the cap is a share of the fleet.
    const fleetSize = new Set([...reporting.map((e) => e.ip), ...automaticInForce.map((b) => b.ip)]).size;
    const cap = automaticBanCap(fleetSize, knobs.maxBanFraction);
    const room = Math.max(0, cap - automaticInForce.length);
    const capEvidence: CapEvidence = {
      reportingIps: fleetSize,
      cap,
      automaticBansInForce: automaticInForce.length,
      formula: `max(1, floor(${fleetSize} x ${knobs.maxBanFraction})) = ${cap}`,
    };
    candidates.forEach((evidence, index) => {
      if (index >= room) {
        capInForce = true;
        decisions.push({ type: 'capped', ip: evidence.ip, evidence, cap: capEvidence });
        return;
      }
      const offense = recentOffenses(evidence.ip).length + 1;
      const ban: Ban = {
        ip: evidence.ip,
        reason: `connect failures ${evidence.connectFailed}/${evidence.samples} (${Math.round(evidence.failRatio * 100)}%) >= ${Math.round(knobs.failRatio * 100)}%${offense > 1 ? `, ban #${offense} in 24 h` : ''}`,
        since: now,
        until: now + banDurationSeconds(offense, knobs) * 1000,
        manual: false,
        failRatio: Math.round(evidence.failRatio * 1e4) / 1e4,
        samples: evidence.samples,
        offense,
        rule: offense > 1 ? 'fail-ratio-escalated' : 'fail-ratio',
      };
      decisions.push({ type: offense > 1 ? 'escalation' : 'ban', ip: evidence.ip, ban, evidence });
    });
  }

  // Early release: a banned machine carries no customer traffic, so its probes
  // are the only evidence; require releaseMinutes healthy minutes, all after
  // the minute the ban was decided on (the first of them began one grace
  // before the ban). Manual bans are an operator's call and are never released.
  const probes = probeMinutesByIp(input.recent);
  const firstMinute = input.minute - knobs.releaseMinutes + 1;
  for (const ban of [...bansInForce.values()].sort((a, b) => (a.ip < b.ip ? -1 : 1))) {
    if (ban.manual || firstMinute < minuteOf(ban.since)) continue;
    const minutes = probes.get(ban.ip);
    const healthyMinutes: ProbeMinute[] = [];
    for (let minute = firstMinute; minute <= input.minute; minute++) {
      const probe = minutes?.get(minute);
      if (!probe) break;
      const samples = probe.ok + probe.connectFailed;
      if (samples < knobs.probeMinSamples || probe.ok / samples < knobs.probeOkRatio - 1e-9) break;
      healthyMinutes.push(probe);
    }
    if (healthyMinutes.length === knobs.releaseMinutes) decisions.push({ type: 'release', ip: ban.ip, ban, healthyMinutes });
  }

  return {
    decisions,
    reporting,
    outages: [...outages.keys()].sort(),
    fleetWide,
    capInForce,
  };
}
