import type { MinuteTally } from './tally.js';
import { hasCounts } from './tally.js';

/**
 * What the status center remembers of an agent's lease, per IP: when it last
 * reported (receive time, epoch ms), the report interval it declared
 * (seconds), whether that report had relays or probes in it (1) or not (0),
 * and when it last came back after missing reports (receive time of its first
 * report after the gap). A tuple, because the aggregator's state holds one per
 * leased IP.
 */
export type Lease = readonly [
  seenAt: number,
  intervalSeconds: number,
  active: 0 | 1,
  returnedAt?: number,
];
export type Leases = Readonly<Record<string, Lease>>;

/** How long a lease is remembered after the IP's last report: as long as `lastSeen`. */
export const LEASE_MEMORY_MS = 86_400_000;

/**
 * Folds rows into the leases: an IP's newest report (by receive time) sets
 * its lease, and a newer report without one (an older agent) ends it. When
 * the first new report comes more than one interval plus the grace after the
 * last one, the IP has come back from a silence: `returnedAt` marks it, and
 * what it observed before then is its backlog. Rows written before receive
 * times were recorded are ignored. Forgets leases older than LEASE_MEMORY_MS.
 * Pure; idempotent for rows already folded.
 */
export function mergeLeases(
  previous: Leases | undefined,
  rows: readonly MinuteTally[],
  now: number,
  knobs: { graceSeconds: number },
): Record<string, Lease> {
  const merge = new LeaseMerge(previous, now, knobs);
  for (const row of rows) merge.add(row);
  return merge.leases();
}

/**
 * mergeLeases row by row, so rows can be folded as they are read and let go
 * (a run catching up on minutes). The order rows are added in does not
 * matter: a row is new against the leases as they were before the merge.
 */
export class LeaseMerge {
  /** The leases before the merge, less those forgotten. */
  private readonly before: Record<string, Lease> = {};
  private readonly merged: Record<string, Lease> = {};
  /** Per IP, the earliest report received after its lease before the merge. */
  private readonly firstNew = new Map<string, number>();
  /** Per IP, the newest report received without a lease. */
  private readonly seenWithout = new Map<string, number>();

  constructor(
    previous: Leases | undefined,
    now: number,
    private readonly knobs: { graceSeconds: number },
  ) {
    for (const [ip, lease] of Object.entries(previous ?? {}))
      if (now - lease[0] <= LEASE_MEMORY_MS) {
        this.before[ip] = lease;
        this.merged[ip] = lease;
      }
  }

  add(row: MinuteTally): void {
    const at = row.receivedAt;
    if (at === undefined) return;
    const before = this.before[row.ip];
    if (
      before &&
      at > before[0] &&
      at < (this.firstNew.get(row.ip) ?? Number.POSITIVE_INFINITY)
    )
      this.firstNew.set(row.ip, at);
    if (row.leaseSeconds === undefined) {
      if (at > (this.seenWithout.get(row.ip) ?? 0))
        this.seenWithout.set(row.ip, at);
      return;
    }
    const active: 0 | 1 = hasCounts(row) ? 1 : 0;
    const current = this.merged[row.ip];
    if (!current || at > current[0])
      this.merged[row.ip] = [at, row.leaseSeconds, active, current?.[3]];
    else if (at === current[0] && active)
      this.merged[row.ip] = [current[0], current[1], 1, current[3]];
  }

  /** The leases with every row added so far. */
  leases(): Record<string, Lease> {
    const leases = { ...this.merged };
    for (const [ip, first] of this.firstNew) {
      const before = this.before[ip];
      const lease = leases[ip];
      if (
        before &&
        lease &&
        first - before[0] > (before[1] + this.knobs.graceSeconds) * 1000
      )
        leases[ip] = [lease[0], lease[1], lease[2], first];
    }
    for (const [ip, at] of this.seenWithout) {
      const current = leases[ip];
      if (current && at > current[0]) delete leases[ip];
    }
    // No trailing undefined: the state item stays as small as before for IPs that never came back.
    for (const [ip, lease] of Object.entries(leases))
      if (lease.length > 3 && lease[3] === undefined)
        leases[ip] = [lease[0], lease[1], lease[2]];
    return leases;
  }
}

/**
 * A fresh grace for every lease, as Kubernetes' node controller resets every
 * node's probe time when it leaves "all nodes down" mode: after the fleet went
 * silent together, nobody's silence counts from before the fleet came back.
 */
export function freshGrace(leases: Leases, now: number): Record<string, Lease> {
  const fresh: Record<string, Lease> = {};
  for (const [ip, [seenAt, interval, active, returnedAt]] of Object.entries(
    leases,
  )) {
    fresh[ip] =
      returnedAt === undefined
        ? [Math.max(seenAt, now), interval, active]
        : [Math.max(seenAt, now), interval, active, returnedAt];
  }
  return fresh;
}

/** Milliseconds of silence after which a lease counts as broken: `silentLeases` intervals plus the grace. */
export function silentAfterMs(
  intervalSeconds: number,
  knobs: { silentLeases: number; graceSeconds: number },
): number {
  return (knobs.silentLeases * intervalSeconds + knobs.graceSeconds) * 1000;
}

/** IPs that missed at least one report at `now`: the ones the silence rule may judge. */
export function quietIps(
  leases: Leases | undefined,
  now: number,
  knobs: { graceSeconds: number },
): string[] {
  return Object.entries(leases ?? {})
    .filter(
      ([, [seenAt, interval]]) =>
        now - seenAt > (interval + knobs.graceSeconds) * 1000,
    )
    .map(([ip]) => ip);
}
