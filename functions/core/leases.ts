import type { MinuteTally } from './tally.js';
import { totalOf } from './tally.js';

/**
 * What the status center remembers of an agent's lease, per IP: when it last
 * reported (receive time, epoch ms), the report interval it declared
 * (seconds), and whether that report had relays or probes in it (1) or not
 * (0). A tuple, because the aggregator's state holds one per leased IP.
 */
export type Lease = readonly [seenAt: number, intervalSeconds: number, active: 0 | 1];
export type Leases = Readonly<Record<string, Lease>>;

/** How long a lease is remembered after the IP's last report: as long as `lastSeen`. */
export const LEASE_MEMORY_MS = 86_400_000;

/**
 * Folds rows into the leases: an IP's newest report (by receive time) sets
 * its lease, and a newer report without one (an older agent) ends it. Rows
 * written before receive times were recorded are ignored. Forgets leases
 * older than LEASE_MEMORY_MS. Pure; idempotent for rows already folded.
 */
export function mergeLeases(previous: Leases | undefined, rows: readonly MinuteTally[], now: number): Record<string, Lease> {
  const leases: Record<string, Lease> = {};
  const seenWithout = new Map<string, number>();
  for (const [ip, lease] of Object.entries(previous ?? {})) if (now - lease[0] <= LEASE_MEMORY_MS) leases[ip] = lease;
  for (const row of rows) {
    if (row.receivedAt === undefined) continue;
    const current = leases[row.ip];
    if (row.leaseSeconds === undefined) {
      if (row.receivedAt > (seenWithout.get(row.ip) ?? 0)) seenWithout.set(row.ip, row.receivedAt);
      continue;
    }
    const active: 0 | 1 = row.origins.some((o) => totalOf(o.counts) > 0) ? 1 : 0;
    if (!current || row.receivedAt > current[0]) leases[row.ip] = [row.receivedAt, row.leaseSeconds, active];
    else if (row.receivedAt === current[0] && active) leases[row.ip] = [current[0], current[1], 1];
  }
  for (const [ip, at] of seenWithout) {
    const current = leases[ip];
    if (current && at > current[0]) delete leases[ip];
  }
  return leases;
}

/**
 * A fresh grace for every lease, as Kubernetes' node controller resets every
 * node's probe time when it leaves "all nodes down" mode: after the fleet went
 * silent together, nobody's silence counts from before the fleet came back.
 */
export function freshGrace(leases: Leases, now: number): Record<string, Lease> {
  const fresh: Record<string, Lease> = {};
  for (const [ip, [seenAt, interval, active]] of Object.entries(leases)) fresh[ip] = [Math.max(seenAt, now), interval, active];
  return fresh;
}

/** Milliseconds of silence after which a lease counts as broken: `silentLeases` intervals plus the grace. */
export function silentAfterMs(intervalSeconds: number, knobs: { silentLeases: number; graceSeconds: number }): number {
  return (knobs.silentLeases * intervalSeconds + knobs.graceSeconds) * 1000;
}

/** IPs that missed at least one report at `now`: the ones the silence rule may judge. */
export function quietIps(leases: Leases | undefined, now: number, knobs: { graceSeconds: number }): string[] {
  return Object.entries(leases ?? {})
    .filter(([, [seenAt, interval]]) => now - seenAt > (interval + knobs.graceSeconds) * 1000)
    .map(([ip]) => ip);
}
