import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../../../functions/core/heartbeat.js';
import {
  minuteEnd,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';
import {
  addCounts,
  emptyCounts,
  NewestReports,
  originId,
  originKey,
  tallyHeartbeats,
  totalOf,
  UNKNOWN_ORIGIN,
  unnamedOrigin,
  WindowTally,
} from '../../../../functions/core/tally.js';

const MINUTE = minuteOf(Date.parse('2026-11-24T14:03:00Z'));
// 20 s into the minute: the minute before is closed (grace 10 s), this one open.
const NOW = minuteStart(MINUTE) + 20_000;
const GRACE_MS = 10_000;
const ORIGIN = 'rtmp://origin-a.example.net/live/s1';

function hb(fields: Partial<Heartbeat> = {}): Heartbeat {
  return {
    ip: '192.0.2.1',
    process: 'ffmpeg-1',
    status: 'ok',
    origin: ORIGIN,
    ts: NOW,
    ...fields,
  };
}

const tally = (heartbeats: Heartbeat[]) =>
  tallyHeartbeats(heartbeats, { now: NOW, graceMs: GRACE_MS });

describe('tallyHeartbeats pre-combines per (minute, ip)', () => {
  it('turns 300 heartbeats of one ip in one minute into one tally', () => {
    const heartbeats = Array.from({ length: 300 }, (_, i) =>
      hb({ process: `ffmpeg-${i}`, ts: NOW - (i % 20) * 1000 }),
    );
    const { tallies, accepted } = tally(heartbeats);
    expect(accepted).toBe(300);
    expect(tallies).toHaveLength(1);
    expect(tallies[0]).toMatchObject({ minute: MINUTE, ip: '192.0.2.1' });
    expect(tallies[0]?.origins).toHaveLength(1);
    expect(tallies[0]?.origins[0]?.counts).toEqual({
      ok: 300,
      connect_failed: 0,
      origin_error: 0,
      error: 0,
    });
  });

  it('counts each status separately', () => {
    const statuses = [
      'ok',
      'ok',
      'ok',
      'connect_failed',
      'connect_failed',
      'origin_error',
      'error',
    ] as const;
    const { tallies } = tally(statuses.map((status) => hb({ status })));
    expect(tallies[0]?.origins[0]?.counts).toEqual({
      ok: 3,
      connect_failed: 2,
      origin_error: 1,
      error: 1,
    });
  });

  it('makes one tally per ip', () => {
    const { tallies } = tally([
      hb({ ip: '192.0.2.1' }),
      hb({ ip: '192.0.2.2' }),
      hb({ ip: '192.0.2.1' }),
    ]);
    expect(tallies.map((t) => t.ip).sort()).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it('makes one tally per minute when a request spans a minute boundary', () => {
    const { tallies } = tally([
      hb({ ts: NOW }),
      hb({ ts: minuteEnd(MINUTE) + 5_000 }),
      hb({ ts: NOW - 1_000 }),
    ]);
    expect(
      tallies
        .map((t) => [t.minute, totalOf(t.origins[0]?.counts ?? emptyCounts())])
        .sort(),
    ).toEqual([
      [MINUTE, 2],
      [MINUTE + 1, 1],
    ]);
  });

  it('files a heartbeat without ts under the server minute', () => {
    const { ts: _ts, ...withoutTs } = hb();
    const { tallies } = tally([withoutTs]);
    expect(tallies[0]?.minute).toBe(minuteOf(NOW));
  });

  it('merges every spelling of one address into the canonical ip', () => {
    const { tallies } = tally([
      hb({ ip: '2001:DB8::1' }),
      hb({ ip: '2001:db8:0:0:0:0:0:1' }),
      hb({ ip: '::ffff:192.0.2.9' }),
      hb({ ip: '192.0.2.9' }),
    ]);
    expect(
      tallies
        .map((t) => [t.ip, totalOf(t.origins[0]?.counts ?? emptyCounts())])
        .sort(),
    ).toEqual([
      ['192.0.2.9', 2],
      ['2001:db8::1', 2],
    ]);
  });
});

describe('tallyHeartbeats records when and under which lease a report came', () => {
  it('keeps the receive time, the newest heartbeat time and the declared interval on every tally', () => {
    const { tallies } = tallyHeartbeats(
      [
        hb({ ts: NOW - 4000 }),
        hb({ process: 'ffmpeg-2', ts: NOW - 1000 }),
        hb({ ts: NOW - 15_000 }),
        hb({ ip: '192.0.2.2', ts: NOW - 15_000 }),
      ],
      {
        now: NOW,
        graceMs: GRACE_MS,
        leaseSeconds: 60,
      },
    );
    expect(
      tallies.map(({ minute, receivedAt, observedAt, leaseSeconds }) => ({
        minute,
        receivedAt,
        observedAt,
        leaseSeconds,
      })),
    ).toEqual([
      {
        minute: MINUTE,
        receivedAt: NOW,
        observedAt: NOW - 1000,
        leaseSeconds: 60,
      },
      {
        minute: MINUTE,
        receivedAt: NOW,
        observedAt: NOW - 15_000,
        leaseSeconds: 60,
      },
    ]);
  });

  it('turns an idle agent\u2019s empty lease renewal into one row of its IP with nothing in it', () => {
    const { tallies, accepted } = tallyHeartbeats([], {
      now: NOW,
      graceMs: GRACE_MS,
      leaseSeconds: 60,
      ip: '2001:DB8::7',
    });
    expect(accepted).toBe(0);
    expect(tallies).toEqual([
      {
        minute: MINUTE,
        ip: '2001:db8::7',
        origins: [],
        receivedAt: NOW,
        observedAt: NOW,
        leaseSeconds: 60,
      },
    ]);
  });

  it('keeps a retried batch\u2019s first arrival as its receive time', () => {
    const { tallies } = tallyHeartbeats([hb({ ts: NOW - 4000 })], {
      now: NOW,
      graceMs: GRACE_MS,
      receivedAt: NOW - 3000,
    });
    expect(tallies[0]).toMatchObject({
      receivedAt: NOW - 3000,
      observedAt: NOW - 4000,
    });
  });

  it('leaves the lease out for an agent that declares none', () => {
    expect(tally([hb()]).tallies[0]).not.toHaveProperty('leaseSeconds');
  });
});

describe('tallyHeartbeats keys origins by scheme and host', () => {
  it('counts streams of one origin host together', () => {
    const { tallies } = tally([
      hb({ origin: 'rtmp://origin-a.example.net/live/s1' }),
      hb({ origin: 'rtmp://origin-a.example.net/live/s2?token=abc' }),
      hb({ origin: 'RTMP://Origin-A.example.net/other' }),
    ]);
    expect(tallies[0]?.origins).toEqual([
      {
        origin: 'rtmp://origin-a.example.net',
        kind: 'relay',
        counts: { ...emptyCounts(), ok: 3 },
      },
    ]);
  });

  it('keeps different hosts, ports and schemes apart', () => {
    const { tallies } = tally([
      hb({ origin: 'rtmp://origin-a.example.net/live' }),
      hb({ origin: 'rtmp://origin-b.example.net/live' }),
      hb({ origin: 'rtmp://origin-a.example.net:1936/live' }),
      hb({ origin: 'srt://origin-a.example.net/live' }),
    ]);
    expect(tallies[0]?.origins.map((o) => o.origin).sort()).toEqual([
      'rtmp://origin-a.example.net',
      'rtmp://origin-a.example.net:1936',
      'rtmp://origin-b.example.net',
      'srt://origin-a.example.net',
    ]);
  });

  it('counts heartbeats without an origin under the unknown origin', () => {
    const { origin: _origin, ...withoutOrigin } = hb();
    const { tallies } = tally([withoutOrigin, withoutOrigin]);
    expect(tallies[0]?.origins).toEqual([
      {
        origin: UNKNOWN_ORIGIN,
        kind: 'relay',
        counts: { ...emptyCounts(), ok: 2 },
      },
    ]);
  });

  it.each([
    [
      'rtmp://Origin.example.com:1935/live/abc',
      'rtmp://origin.example.com:1935',
    ],
    ['https://origin.example.com:443/hls/x.m3u8', 'https://origin.example.com'],
    ['https://user:secret@origin.example.com/x', 'https://origin.example.com'],
    ['srt://[2001:DB8::1]:9000?streamid=live', 'srt://[2001:db8::1]:9000'],
    [' HTTP://Origin.example.com/live ', 'http://origin.example.com'],
    ['Origin-A', 'origin-a'],
    ['rtmp://', 'rtmp://'],
  ])('keys origin %j as %j', (origin, expected) => {
    expect(originKey(origin)).toBe(expected);
  });

  it('never keeps user credentials of an origin URL', () => {
    expect(
      originKey('rtmp://user:hunter2@origin.example.com/live'),
    ).not.toContain('hunter2');
  });
});

describe('tallyHeartbeats separates kinds', () => {
  it('keeps probes and relay heartbeats of one origin in separate counts', () => {
    const { tallies } = tally([
      hb({ kind: 'probe', status: 'connect_failed' }),
      hb({ kind: 'relay' }),
      hb({}),
      hb({ kind: 'probe' }),
    ]);
    const origins = tallies[0]?.origins ?? [];
    expect(origins).toHaveLength(2);
    expect(origins.find((o) => o.kind === 'relay')?.counts).toEqual({
      ...emptyCounts(),
      ok: 2,
    });
    expect(origins.find((o) => o.kind === 'probe')?.counts).toEqual({
      ...emptyCounts(),
      ok: 1,
      connect_failed: 1,
    });
  });

  it('treats a heartbeat without kind as a relay heartbeat', () => {
    const { tallies } = tally([hb({ kind: undefined })]);
    expect(tallies[0]?.origins[0]?.kind).toBe('relay');
  });
});

describe('tallyHeartbeats counts stale heartbeats', () => {
  it('accepts but does not count heartbeats of a closed minute', () => {
    const closedMinuteTs = minuteStart(MINUTE - 1) + 30_000;
    const { tallies, accepted, stale } = tally([
      hb({ ts: closedMinuteTs }),
      hb({ ts: closedMinuteTs }),
      hb(),
    ]);
    expect({ accepted, stale }).toEqual({ accepted: 3, stale: 2 });
    expect(tallies).toHaveLength(1);
    expect(tallies[0]?.minute).toBe(MINUTE);
  });

  it('still counts a heartbeat of the previous minute within the grace', () => {
    const { tallies, stale } = tallyHeartbeats(
      [hb({ ts: minuteEnd(MINUTE) - 1 })],
      { now: minuteEnd(MINUTE) + GRACE_MS - 1, graceMs: GRACE_MS },
    );
    expect(stale).toBe(0);
    expect(tallies[0]?.minute).toBe(MINUTE);
  });

  it('counts it as stale from the moment the grace runs out', () => {
    const { tallies, stale } = tallyHeartbeats(
      [hb({ ts: minuteEnd(MINUTE) - 1 })],
      { now: minuteEnd(MINUTE) + GRACE_MS, graceMs: GRACE_MS },
    );
    expect(stale).toBe(1);
    expect(tallies).toEqual([]);
  });

  it('produces no tally at all for a backlog that is entirely stale', () => {
    const backlog = Array.from({ length: 50 }, (_, i) =>
      hb({ ts: NOW - 3_600_000 + i * 1000 }),
    );
    expect(tally(backlog)).toEqual({ tallies: [], accepted: 50, stale: 50 });
  });
});

describe('count helpers', () => {
  it('adds counts into the first argument and totals them', () => {
    const into = { ok: 1, connect_failed: 2, origin_error: 3, error: 4 };
    const result = addCounts(into, {
      ok: 10,
      connect_failed: 20,
      origin_error: 30,
      error: 40,
    });
    expect(result).toBe(into);
    expect(into).toEqual({
      ok: 11,
      connect_failed: 22,
      origin_error: 33,
      error: 44,
    });
    expect(totalOf(into)).toBe(110);
  });
});

describe('WindowTally keeps one key per origin', () => {
  const A = 'rtmp://origin-a.example.net';
  const B = 'rtmp://origin-b.example.net';
  const C = 'rtmp://origin-c.example.net';
  /** As a reader that has not met the name yet keys the origin. */
  const byId = (origin: string) => unnamedOrigin(originId(origin));
  const counts = (ok: number, failed = 0) => ({
    ok,
    connect_failed: failed,
    origin_error: 0,
    error: 0,
  });
  const row = (
    ip: string,
    origins: Array<[origin: string, ok: number, failed?: number]>,
  ): MinuteTally => ({
    minute: MINUTE,
    ip,
    origins: origins.map(([origin, ok, failed]) => ({
      origin,
      kind: 'relay' as const,
      counts: counts(ok, failed),
    })),
  });
  /** What the fold says: its origins in order, and each IP's pairs as origin name and ok/failed counts. */
  const seen = (tally: WindowTally) =>
    tally.withReturns(
      () => undefined,
      ({ ips, origins, start, size, pairOrigin, pairCounts }) => ({
        origins: [...origins],
        ips: ips.map((ip, i) => {
          const pairs: string[] = [];
          const from = start[i] as number;
          for (let p = from; p < from + (size[i] as number); p++)
            pairs.push(
              `${origins[pairOrigin[p] as number]} ${pairCounts[p * 4]}/${pairCounts[p * 4 + 1]}`,
            );
          return `${ip}: ${pairs.join(', ')}`;
        }),
      }),
    );
  const fold = (rows: MinuteTally[]) =>
    WindowTally.of(rows, { graceMs: GRACE_MS });

  it('merges an origin keyed by id with its name when a later row names it, as if the name had been known all along', () => {
    const named = [
      row('192.0.2.1', [
        [A, 5],
        [B, 4],
      ]),
      row('192.0.2.2', [
        [C, 1],
        [A, 2],
      ]),
      row('192.0.2.2', [[A, 0, 3]]),
      row('192.0.2.3', [
        [B, 0, 6],
        [A, 1],
      ]),
    ];
    // The first rows key A and B by id; later rows name them.
    const early = [
      row('192.0.2.1', [
        [byId(A), 5],
        [byId(B), 4],
      ]),
      row('192.0.2.2', [
        [C, 1],
        [byId(A), 2],
      ]),
      row('192.0.2.2', [[A, 0, 3]]),
      row('192.0.2.3', [
        [B, 0, 6],
        [A, 1],
      ]),
    ];

    const expected = seen(fold(named));
    expect(expected.origins).toEqual([A, B, C]);
    expect(expected.ips).toEqual([
      `192.0.2.1: ${A} 5/0, ${B} 4/0`,
      `192.0.2.2: ${C} 1/0, ${A} 2/3`,
      `192.0.2.3: ${B} 0/6, ${A} 1/0`,
    ]);
    const merged = fold(early);
    expect(seen(merged)).toEqual(expected);
    expect(merged.indexOfOrigin(byId(A))).toBeUndefined();
    expect(merged.indexOfOrigin(A)).toBe(0);
  });

  it('merges a key by id that comes after the name, and keeps merging as rows are added after a read', () => {
    const tally = fold([row('192.0.2.1', [[A, 1, 1]])]);
    expect(seen(tally).origins).toEqual([A]);
    tally.add(row('192.0.2.1', [[byId(A), 2]]));
    tally.add(row('192.0.2.2', [[byId(B), 7]]));
    expect(seen(tally)).toEqual({
      origins: [A, byId(B)],
      ips: [`192.0.2.1: ${A} 3/1`, `192.0.2.2: ${byId(B)} 7/0`],
    });
    tally.add(row('192.0.2.3', [[B, 0, 2]]));
    expect(seen(tally)).toEqual({
      origins: [A, B],
      ips: [
        `192.0.2.1: ${A} 3/1`,
        `192.0.2.2: ${B} 7/0`,
        `192.0.2.3: ${B} 0/2`,
      ],
    });
  });

  it('folds any rows alike whichever of their origins earlier rows keyed by id (generated)', () => {
    const names = [A, B, C, 'tcp://probe.example.org:443', UNKNOWN_ORIGIN];
    const rowArb = fc.record({
      ip: fc.constantFrom('192.0.2.1', '192.0.2.2', '198.51.100.9'),
      origins: fc.array(
        fc.tuple(
          fc.nat({ max: names.length - 1 }),
          fc.nat({ max: 5 }),
          fc.nat({ max: 3 }),
        ),
        { minLength: 1, maxLength: 4 },
      ),
      // Whether this row's reader knew the names already.
      knew: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(rowArb, { minLength: 1, maxLength: 12 }),
        (drawn) => {
          const asRows = (byIdWhenUnknown: boolean) =>
            drawn.map(({ ip, origins, knew }) =>
              row(
                ip,
                origins.map(([o, ok, failed]) => {
                  const name = names[o] as string;
                  // A row names an origin where it failed (and the unknown one).
                  const keyed =
                    byIdWhenUnknown && !knew && failed === 0 && name !== ''
                      ? byId(name)
                      : name;
                  return [keyed, ok, failed];
                }),
              ),
            );
          const named = seen(fold(asRows(false)));
          const early = seen(fold(asRows(true)));
          // Origins no row ever named stay keyed by id: name them to compare.
          const rename = (text: string) =>
            names.reduce(
              (into, name) =>
                name === '' ? into : into.replaceAll(byId(name), name),
              text,
            );
          expect({
            origins: early.origins.map(rename),
            ips: early.ips.map(rename),
          }).toEqual(named);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('folds alike whatever size its arena starts at (pairsHint), through the doublings and moves of IPs seen again (generated)', () => {
    const pool = Array.from(
      { length: 60 },
      (_, i) => `rtmp://live-${i}.example.net`,
    );
    const rowArb = fc.record({
      ip: fc.nat({ max: 30 }).map((n) => `192.0.2.${n}`),
      origins: fc.uniqueArray(fc.nat({ max: pool.length - 1 }), {
        minLength: 1,
        maxLength: 40,
      }),
      ok: fc.nat({ max: 4 }),
      failed: fc.nat({ max: 2 }),
    });
    fc.assert(
      fc.property(
        fc.array(rowArb, { minLength: 1, maxLength: 80 }),
        fc.constantFrom(0, 1, 700, 1500, 100_000),
        (drawn, pairsHint) => {
          const rows = drawn.map(({ ip, origins, ok, failed }) =>
            row(
              ip,
              origins.map((o) => [pool[o] as string, ok, failed]),
            ),
          );
          const hinted = new WindowTally({ graceMs: GRACE_MS, pairsHint });
          for (const each of rows) hinted.add(each);
          const plain = fold(rows);
          expect(hinted.pairCount).toBe(plain.pairCount);
          expect(seen(hinted)).toEqual(seen(plain));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps an origin keyed by id when no row names it', () => {
    const tally = fold([
      row('192.0.2.1', [
        [byId(A), 1],
        [B, 0, 1],
      ]),
    ]);
    expect(seen(tally).origins).toEqual([byId(A), B]);
  });
});

describe('WindowTally tells a reader of a fold in progress which IPs began failing', () => {
  const rowsOf = (ip: string, status: Heartbeat['status']): MinuteTally[] => [
    {
      minute: MINUTE,
      ip,
      origins: [
        {
          origin: originKey(ORIGIN),
          kind: 'relay',
          counts: { ...emptyCounts(), [status]: 1 },
        },
      ],
    },
  ];

  it('answers the IPs from the nth to begin failing, once each, whatever rows of theirs come later', () => {
    const fold = new WindowTally({ graceMs: GRACE_MS });
    for (const row of [
      ...rowsOf('192.0.2.1', 'ok'),
      ...rowsOf('192.0.2.2', 'connect_failed'),
    ])
      fold.add(row);
    expect(fold.failingCount).toBe(1);
    expect(fold.failingIpsFrom(0)).toEqual(['192.0.2.2']);

    for (const row of [
      ...rowsOf('192.0.2.2', 'connect_failed'),
      ...rowsOf('192.0.2.3', 'connect_failed'),
      ...rowsOf('192.0.2.1', 'connect_failed'),
      ...rowsOf('192.0.2.4', 'ok'),
    ])
      fold.add(row);
    expect(fold.failingIpsFrom(1)).toEqual(['192.0.2.3', '192.0.2.1']);
    expect(fold.failingCount).toBe(3);
    expect(fold.failingIpsFrom(3)).toEqual([]);
    expect(new Set(fold.failingIpsFrom(0))).toEqual(new Set(fold.failingIps()));
  });
});

describe('WindowTally.withReturns judges rows by the IPs’ returns from a silence', () => {
  const A = 'rtmp://origin-a.example.net';
  const B = 'rtmp://origin-b.example.net';
  const RETURNED = NOW - 30_000;
  /** A row of one IP, observed and received at the given times, with failures per origin. */
  const row = (
    ip: string,
    observedAt: number,
    receivedAt: number,
    failed: Array<[origin: string, connectFailed: number]>,
  ): MinuteTally => ({
    minute: MINUTE,
    ip,
    observedAt,
    receivedAt,
    origins: failed.map(([origin, connectFailed]) => ({
      origin,
      kind: 'relay' as const,
      counts: { ...emptyCounts(), ok: 1, connect_failed: connectFailed },
    })),
  });
  /** Per IP: its failed count per origin as the work sees it, and its late failures. */
  const seen = (fold: WindowTally, returns: Record<string, number>) =>
    fold.withReturns(
      (ip) => returns[ip],
      ({ ips, origins, start, size, pairOrigin, pairCounts }, late) =>
        Object.fromEntries(
          ips.map((ip, i) => {
            const failed: Record<string, number> = {};
            const from = start[i] as number;
            for (let p = from; p < from + (size[i] as number); p++)
              failed[origins[pairOrigin[p] as number] as string] = pairCounts[
                p * 4 + 1
              ] as number;
            return [ip, { failed, late: late(i) }];
          }),
        ),
    );

  const fold = () =>
    WindowTally.of(
      [
        // Observed before the return, delivered after it: a backlog if 192.0.2.1 returned.
        row('192.0.2.1', RETURNED - 5_000, RETURNED + 1_000, [
          [A, 3],
          [B, 2],
        ]),
        // Observed after the return: counts whatever the returns say.
        row('192.0.2.1', RETURNED + 2_000, RETURNED + 3_000, [[A, 1]]),
        row('192.0.2.2', RETURNED - 5_000, RETURNED + 1_000, [[A, 4]]),
      ],
      { graceMs: GRACE_MS },
    );

  it('counts every row as on time when no IP returned', () => {
    expect(seen(fold(), {})).toEqual({
      '192.0.2.1': { failed: { [A]: 4, [B]: 2 }, late: 0 },
      '192.0.2.2': { failed: { [A]: 4 }, late: 0 },
    });
  });

  it('counts the backlog of a returned IP as late, for that work only: the fold is left as it was', () => {
    const tally = fold();
    expect(seen(tally, { '192.0.2.1': RETURNED })).toEqual({
      '192.0.2.1': { failed: { [A]: 1, [B]: 0 }, late: 5 },
      '192.0.2.2': { failed: { [A]: 4 }, late: 0 },
    });
    expect(seen(tally, {})).toEqual({
      '192.0.2.1': { failed: { [A]: 4, [B]: 2 }, late: 0 },
      '192.0.2.2': { failed: { [A]: 4 }, late: 0 },
    });
    // A return after the row was delivered makes it no backlog.
    expect(seen(tally, { '192.0.2.2': RETURNED + 1_500 })['192.0.2.2']).toEqual(
      { failed: { [A]: 4 }, late: 0 },
    );
  });
});

describe('NewestReports.merged', () => {
  /** A row of one IP observed at `observedAt` with `ok` and `failed` relay counts. */
  const report = (
    ip: string,
    observedAt: number,
    ok: number,
    failed: number,
  ): MinuteTally => ({
    minute: minuteOf(observedAt),
    ip,
    observedAt,
    receivedAt: observedAt,
    origins: [
      {
        origin: ORIGIN,
        kind: 'relay',
        counts: { ...emptyCounts(), ok, connect_failed: failed },
      },
    ],
  });
  const rows = [
    report('192.0.2.1', NOW - 70_000, 5, 0),
    report('192.0.2.1', NOW - 10_000, 0, 5),
    report('192.0.2.2', NOW - 65_000, 3, 1),
    report('192.0.2.2', NOW - 65_000, 2, 0),
    report('192.0.2.3', NOW - 5_000, 1, 0),
  ];

  it("answers what one fold of every part's rows answers, in any order of the parts", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), {
          minLength: rows.length,
          maxLength: rows.length,
        }),
        fc.boolean(),
        (partOf, reversed) => {
          const parts = [0, 1, 2, 3].map((part) =>
            NewestReports.of(rows.filter((_, i) => partOf[i] === part)),
          );
          const merged = NewestReports.merged(
            reversed ? parts.reverse() : parts,
          );
          const whole = NewestReports.of(rows);
          for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'])
            expect(merged.get(ip)).toEqual(whole.get(ip));
        },
      ),
    );
  });

  it('leaves its parts as they were', () => {
    const part = NewestReports.of([report('192.0.2.2', NOW - 65_000, 3, 1)]);
    const other = NewestReports.of([report('192.0.2.2', NOW - 65_000, 2, 0)]);

    expect(NewestReports.merged([part, other]).get('192.0.2.2')).toMatchObject({
      ok: 5,
      connectFailed: 1,
    });
    expect(part.get('192.0.2.2')).toMatchObject({ ok: 3, connectFailed: 1 });
  });
});
