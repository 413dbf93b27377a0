import { describe, expect, it } from 'vitest';
import {
  freshGrace,
  LEASE_MEMORY_MS,
  LeaseMerge,
  mergeLeases,
  quietIps,
  silentAfterMs,
} from '../../../../functions/core/leases.js';
import { trailingWindow } from '../../../../functions/core/minutes.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';

const KNOBS = { graceSeconds: 10 };

const NOW = Date.parse('2026-11-24T14:03:30Z');
const IP = '198.51.100.7';
const rowAt = (
  receivedAt: number | undefined,
  leaseSeconds?: number,
  ok = 3,
): MinuteTally => ({
  minute: Math.floor((receivedAt ?? NOW) / 60_000),
  ip: IP,
  origins: [
    {
      origin: 'tcp://canary.example.net:443',
      kind: 'probe',
      counts: { ok, connect_failed: 0, origin_error: 0, error: 0 },
    },
  ],
  ...(receivedAt === undefined ? {} : { receivedAt, observedAt: receivedAt }),
  ...(leaseSeconds === undefined ? {} : { leaseSeconds }),
});

describe('mergeLeases', () => {
  it('keeps the newest report of each IP: its time, its interval and whether it ran anything', () => {
    const leases = mergeLeases(
      undefined,
      [
        rowAt(NOW - 30_000, 60),
        rowAt(NOW - 5_000, 15),
        rowAt(NOW - 50_000, 60),
      ],
      NOW,
      KNOBS,
    );
    expect(leases).toEqual({ [IP]: [NOW - 5_000, 15, 1] });
    expect(mergeLeases(leases, [rowAt(NOW, 15, 0)], NOW, KNOBS)).toEqual({
      [IP]: [NOW, 15, 0],
    });
  });

  it('ends the lease when a newer report declares none (the agent was downgraded)', () => {
    const leases = mergeLeases(
      undefined,
      [rowAt(NOW - 30_000, 60)],
      NOW,
      KNOBS,
    );
    expect(mergeLeases(leases, [rowAt(NOW - 1_000)], NOW, KNOBS)).toEqual({});
    expect(mergeLeases(leases, [rowAt(NOW - 40_000)], NOW, KNOBS)).toEqual(
      leases,
    );
  });

  it('marks the return of an IP whose first new report came more than one interval plus the grace after its last', () => {
    const before = { [IP]: [NOW - 200_000, 60, 1] as const };
    const back = mergeLeases(
      before,
      [rowAt(NOW - 3_000, 60), rowAt(NOW - 1_000, 60)],
      NOW,
      KNOBS,
    );
    expect(back).toEqual({ [IP]: [NOW - 1_000, 60, 1, NOW - 3_000] });
    // Later reports keep the mark; a report one interval after the last is no return.
    expect(mergeLeases(back, [rowAt(NOW + 50_000, 60)], NOW, KNOBS)).toEqual({
      [IP]: [NOW + 50_000, 60, 1, NOW - 3_000],
    });
    expect(
      mergeLeases(
        { [IP]: [NOW - 70_000, 60, 1] },
        [rowAt(NOW, 60)],
        NOW,
        KNOBS,
      ),
    ).toEqual({ [IP]: [NOW, 60, 1] });
  });

  it('marks the return at the first new report whatever order the rows come in (a minute read shard by shard, or folded as it is read)', () => {
    const before = { [IP]: [NOW - 200_000, 60, 1] as const };
    const rows = [rowAt(NOW - 3_000, 60), rowAt(NOW - 1_000, 60)];
    const expected = { [IP]: [NOW - 1_000, 60, 1, NOW - 3_000] };
    expect(mergeLeases(before, [...rows].reverse(), NOW, KNOBS)).toEqual(
      expected,
    );
    const merge = new LeaseMerge(before, NOW, KNOBS);
    for (const row of [...rows].reverse()) merge.add(row);
    expect(merge.leases()).toEqual(expected);
  });

  it('ignores rows written before receive times were kept, and forgets leases after a day', () => {
    expect(mergeLeases(undefined, [rowAt(undefined, 60)], NOW, KNOBS)).toEqual(
      {},
    );
    expect(
      mergeLeases({ [IP]: [NOW - LEASE_MEMORY_MS - 1, 60, 1] }, [], NOW, KNOBS),
    ).toEqual({});
  });
});

describe('lease arithmetic', () => {
  it('counts silence after N intervals plus the grace, and a missed report after one', () => {
    expect(silentAfterMs(60, { silentLeases: 2, graceSeconds: 10 })).toBe(
      130_000,
    );
    expect(
      quietIps({ a: [NOW - 70_001, 60, 1], b: [NOW - 70_000, 60, 1] }, NOW, {
        graceSeconds: 10,
      }),
    ).toEqual(['a']);
  });

  it('gives every lease a fresh grace after the fleet went silent together', () => {
    expect(
      freshGrace(
        { a: [NOW - 500_000, 60, 1], b: [NOW + 1, 15, 0, NOW - 9] },
        NOW,
      ),
    ).toEqual({ a: [NOW, 60, 1], b: [NOW + 1, 15, 0, NOW - 9] });
  });
});

describe('trailingWindow', () => {
  it('keeps the reports observed in the last window before now, and rows without a time by their minute', () => {
    const rows = [
      rowAt(NOW - 61_000),
      rowAt(NOW - 59_000),
      { ...rowAt(undefined), minute: Math.floor((NOW - 90_000) / 60_000) },
    ];
    expect(trailingWindow(rows, { now: NOW, windowMs: 60_000 })).toEqual([
      rows[1],
      rows[2],
    ]);
  });
});
