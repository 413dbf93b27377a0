import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCidr } from '#contract/ip';
import type { Ban } from '../../../../functions/core/blocklist.js';
import type { HeartbeatKind } from '../../../../functions/core/heartbeat.js';
import type {
  Decision,
  PolicyInput,
  PolicyKnobs,
  PolicyResult,
} from '../../../../functions/core/policy.js';
import { decideMinute } from '../../../../functions/core/policy.js';
import type {
  MinuteTally,
  OriginTally,
  StatusCounts,
} from '../../../../functions/core/tally.js';
import { KNOBS, MINUTE, NOW, row } from './policy-fixtures.js';

/**
 * Invariants of decideMinute over generated fleets: several origins, several
 * IPs per origin, relays and probes, machines that are healthy, broken, flaky
 * or quiet, dead origins, bans (automatic and manual, some ended), offenses
 * within and beyond 24 h, and knobs drawn around the defaults.
 */

const DAY_MS = 86_400_000;
const RUNS = { numRuns: 400 };

const ORIGINS = [
  'rtmp://origin-1.example.net:1935',
  'rtmp://origin-2.example.net:1935',
  'https://origin-3.example.net',
  'srt://origin-4.example.net:9000',
  'rtmp://origin-5.example.net:1935',
];
const CANARIES = [
  'tcp://canary-1.example.net:443',
  'tcp://canary-2.example.net:443',
];
const POOL = [
  ...Array.from({ length: 10 }, (_, i) => `10.0.0.${i + 1}`),
  '2001:db8::1',
  '2001:db8::2',
  '2001:db8:1::9',
];
/** Banned and silent: never in the generated fleet. */
const SILENT_IP = '10.9.9.9';

/** Each allowlist entry with the pool addresses it covers, written out by hand. */
const ALLOWLIST_ENTRIES: Record<string, readonly string[]> = {
  '10.0.0.0/30': ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
  '10.0.0.7/32': ['10.0.0.7'],
  '2001:db8::/126': ['2001:db8::1', '2001:db8::2'],
  '192.0.2.0/24': [],
};

type Health = 'healthy' | 'broken' | 'flaky' | 'quiet';
type Raw = readonly [number, number, number, number];
type Source = { origin: string; kind: HeartbeatKind; raw: Raw };
type IpSpec = { ip: string; health: Health; sources: Source[]; split: number };
type Fleet = { ips: IpSpec[]; dead: string[] };

type Scenario = {
  fleet: Fleet;
  knobs: PolicyKnobs;
  bans: Ban[];
  offenses: Record<string, number[]>;
  earlierProbes: MinuteTally[];
  previous: PolicyInput['previous'];
};

const rawArb: fc.Arbitrary<Raw> = fc.tuple(
  fc.nat(8),
  fc.nat(8),
  fc.nat(2),
  fc.nat(2),
);

/** Most fleets are mostly healthy; a troubled one (an uplink or region fault) is mostly broken. */
const HEALTH_BY_MOOD: Record<'normal' | 'troubled', Health[]> = {
  normal: ['healthy', 'healthy', 'healthy', 'broken', 'flaky', 'quiet'],
  troubled: ['healthy', 'broken', 'broken', 'broken', 'flaky'],
};

const ipSpecArb = (
  ip: string,
  mood: keyof typeof HEALTH_BY_MOOD,
): fc.Arbitrary<IpSpec> =>
  fc
    .record({
      ip: fc.constant(ip),
      health: fc.constantFrom<Health>(...HEALTH_BY_MOOD[mood]),
      relays: fc.subarray(ORIGINS, { minLength: 1, maxLength: 3 }),
      probes: fc.subarray(CANARIES),
      split: fc.integer({ min: 1, max: 3 }),
    })
    .chain(
      ({ relays, probes, ...rest }) =>
        fc.record({
          ...Object.fromEntries(
            Object.entries(rest).map(([k, v]) => [k, fc.constant(v)]),
          ),
          sources: fc.tuple(
            ...relays.map((origin) =>
              rawArb.map((raw): Source => ({ origin, kind: 'relay', raw })),
            ),
            ...probes.map((origin) =>
              rawArb.map((raw): Source => ({ origin, kind: 'probe', raw })),
            ),
          ),
        }) as fc.Arbitrary<IpSpec>,
    );

const fleetArb: fc.Arbitrary<Fleet> = fc
  .record({
    ips: fc.uniqueArray(fc.constantFrom(...POOL), {
      minLength: 1,
      maxLength: 12,
    }),
    dead: fc.subarray(ORIGINS, { maxLength: 2 }),
    mood: fc.constantFrom<keyof typeof HEALTH_BY_MOOD>(
      'normal',
      'normal',
      'troubled',
    ),
  })
  .chain(({ ips, dead, mood }) =>
    fc.record({
      ips: fc.tuple(...ips.map((ip) => ipSpecArb(ip, mood))),
      dead: fc.constant(dead),
    }),
  );

const knobsArb: fc.Arbitrary<PolicyKnobs> = fc
  .record({
    failRatio: fc.constantFrom(0.3, 0.5, 0.8),
    minSamples: fc.integer({ min: 1, max: 20 }),
    maxBanFraction: fc.constantFrom(0.1, 0.2, 0.3, 0.5, 1),
    originOutageMinIps: fc.integer({ min: 2, max: 4 }),
    originOutageRatio: fc.constantFrom(0.5, 0.7),
    fleetFailureShare: fc.constantFrom(0.6, 0.8, 1),
    fleetMinIps: fc.integer({ min: 2, max: 4 }),
    releaseMinutes: fc.integer({ min: 1, max: 3 }),
    probeMinSamples: fc.integer({ min: 1, max: 5 }),
    allowlist: fc.subarray(Object.keys(ALLOWLIST_ENTRIES)),
  })
  .map(({ allowlist, ...rest }) => ({
    ...KNOBS,
    ...rest,
    allowlist: allowlist.map((text) => parseCidr(text)!),
  }));

const banArb = (ip: string): fc.Arbitrary<Ban> =>
  fc
    .record({
      manual: fc.boolean(),
      agoMinutes: fc.integer({ min: 0, max: 180 }),
      minutes: fc.integer({ min: 1, max: 240 }),
    })
    .map(({ manual, agoMinutes, minutes }) => {
      const since = NOW - agoMinutes * 60_000;
      return {
        ip,
        reason: 'generated',
        since,
        until: since + minutes * 60_000,
        manual,
        failRatio: manual ? null : 1,
        samples: manual ? null : 12,
        offense: 1,
        rule: manual ? 'manual' : 'fail-ratio',
      };
    });

/** A row of `ip` in `minute` probing the first canary. */
const canaryRow = (ip: string, minute: number, ok: number, failed: number) =>
  row(
    ip,
    [{ origin: CANARIES[0]!, kind: 'probe', ok, connect_failed: failed }],
    { minute },
  );

const probeRowsArb = (ip: string): fc.Arbitrary<MinuteTally[]> =>
  fc
    .tuple(fc.nat(6), fc.nat(2), fc.nat(6), fc.nat(2))
    .map(([ok1, failed1, ok2, failed2]) => [
      canaryRow(ip, MINUTE - 2, ok1, failed1),
      canaryRow(ip, MINUTE - 1, ok2, failed2),
    ]);

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .record({ fleet: fleetArb, knobs: knobsArb })
  .chain(({ fleet, knobs }) => {
    const ips = fleet.ips.map((s) => s.ip);
    return fc.record({
      fleet: fc.constant(fleet),
      knobs: fc.constant(knobs),
      bans: fc
        .subarray([...ips, SILENT_IP])
        .chain((banned) => fc.tuple(...banned.map(banArb))),
      offenses: fc
        .subarray(ips)
        .chain((offenders) =>
          fc.tuple(
            ...offenders.map((ip) =>
              fc
                .array(fc.integer({ min: 1, max: 47 * 60 }), {
                  minLength: 1,
                  maxLength: 3,
                })
                .map((ago) => [ip, ago] as const),
            ),
          ),
        )
        .map((entries) =>
          Object.fromEntries(
            entries.map(([ip, ago]) => [ip, ago.map((m) => NOW - m * 60_000)]),
          ),
        ),
      earlierProbes: fc
        .subarray(ips)
        .chain((probing) =>
          fc.tuple(...probing.map(probeRowsArb)).map((rows) => rows.flat()),
        ),
      previous: fc.record({
        outages: fc.subarray(ORIGINS),
        fleetWide: fc.boolean(),
      }),
    });
  });

/** What a machine of this health sees on this source; a dead origin fails from everywhere. */
function countsOf(
  health: Health,
  source: Source,
  dead: readonly string[],
): StatusCounts {
  const [a, b, c, d] = source.raw;
  if (dead.includes(source.origin))
    return { ok: 0, connect_failed: a + 1, origin_error: c, error: d };
  switch (health) {
    case 'healthy':
      return {
        ok: a + 2,
        connect_failed: b > 6 ? 1 : 0,
        origin_error: c,
        error: d,
      };
    case 'broken':
      return {
        ok: a > 6 ? 1 : 0,
        connect_failed: b + 2,
        origin_error: c,
        error: d,
      };
    case 'flaky':
      return { ok: a, connect_failed: b, origin_error: c, error: d };
    case 'quiet':
      return { ok: a % 2, connect_failed: b % 2, origin_error: 0, error: 0 };
  }
}

/** One IP's minute as `split` rows, as several requests store it; the counts add up to the same. */
function rowsOf(
  spec: IpSpec,
  dead: readonly string[],
  split = spec.split,
): MinuteTally[] {
  const part = (n: number, i: number) =>
    Math.floor((n * (i + 1)) / split) - Math.floor((n * i) / split);
  return Array.from({ length: split }, (_, i) => ({
    minute: MINUTE,
    ip: spec.ip,
    origins: spec.sources.map((source): OriginTally => {
      const c = countsOf(spec.health, source, dead);
      return {
        origin: source.origin,
        kind: source.kind,
        counts: {
          ok: part(c.ok, i),
          connect_failed: part(c.connect_failed, i),
          origin_error: part(c.origin_error, i),
          error: part(c.error, i),
        },
      };
    }),
  }));
}

function inputOf(
  s: Scenario,
  window = s.fleet.ips.flatMap((spec) => rowsOf(spec, s.fleet.dead)),
): PolicyInput {
  return {
    minute: MINUTE,
    now: NOW,
    window,
    recent: [...s.earlierProbes, ...window],
    bans: s.bans,
    offenses: s.offenses,
    previous: s.previous,
  };
}

const isBan = (
  d: Decision,
): d is Extract<Decision, { type: 'ban' | 'escalation' }> =>
  d.type === 'ban' || d.type === 'escalation';
const inForce = (s: Scenario) => s.bans.filter((ban) => ban.until > NOW);
const recentOffenses = (s: Scenario, ip: string) =>
  (s.offenses[ip] ?? []).filter((start) => start > NOW - DAY_MS);

/** An IP is judged failing when the policy banned it or says why it did not. */
function judged(result: PolicyResult, ip: string): boolean {
  return result.decisions.some(
    (d) =>
      (['ban', 'escalation', 'capped', 'allowlisted'].includes(d.type) &&
        'ip' in d &&
        d.ip === ip) ||
      (d.type === 'fleet_failure' && d.suppressed.some((e) => e.ip === ip)),
  );
}

/** Decisions as a set: order-free, comparable. */
const asSet = (result: PolicyResult) =>
  result.decisions.map((d) => JSON.stringify(d)).sort();

describe('decideMinute invariants (fast-check)', () => {
  it('never bans automatically below MIN_SAMPLES, except on probation (PROBE_MIN_SAMPLES after a ban in 24 h), nor below FAIL_RATIO', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const result = decideMinute(inputOf(s), s.knobs);
        for (const d of result.decisions.filter(isBan)) {
          const probation = recentOffenses(s, d.ip).length > 0;
          const needed = probation
            ? Math.min(s.knobs.probeMinSamples, s.knobs.minSamples)
            : s.knobs.minSamples;
          expect(d.evidence.samples).toBeGreaterThanOrEqual(needed);
          expect(d.evidence.failRatio).toBeGreaterThanOrEqual(
            s.knobs.failRatio,
          );
          expect(d.ban.offense).toBe(recentOffenses(s, d.ip).length + 1);
          expect(d.ban.until - d.ban.since).toBe(
            Math.min(
              s.knobs.banSeconds * d.ban.offense,
              s.knobs.maxBanSeconds,
            ) * 1000,
          );
        }
      }),
      RUNS,
    );
  });

  it('never puts more automatic bans in force than max(1, floor(N x MAX_BAN_FRACTION)), and bans the worst first', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const result = decideMinute(inputOf(s), s.knobs);
        const automatic = inForce(s).filter((ban) => !ban.manual);
        const n = new Set([
          ...s.fleet.ips.map((spec) => spec.ip),
          ...automatic.map((ban) => ban.ip),
        ]).size;
        const cap = Math.max(1, Math.floor(n * s.knobs.maxBanFraction + 1e-9));
        const added = result.decisions.filter(isBan);
        if (added.length)
          expect(automatic.length + added.length).toBeLessThanOrEqual(cap);
        const capped = result.decisions.filter((d) => d.type === 'capped');
        if (capped.length) {
          expect(result.capInForce).toBe(true);
          expect(added.length).toBe(Math.max(0, cap - automatic.length));
        }
        for (const b of added) {
          for (const c of capped) {
            const worse =
              b.evidence.failRatio > c.evidence.failRatio ||
              (b.evidence.failRatio === c.evidence.failRatio &&
                b.evidence.samples >= c.evidence.samples);
            expect(worse).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it('always lets one automatic ban through when none is in force and someone qualifies', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const result = decideMinute(inputOf(s), s.knobs);
        const anyAutomatic = inForce(s).some((ban) => !ban.manual);
        const qualified = result.decisions.some(
          (d) => isBan(d) || d.type === 'capped',
        );
        if (!anyAutomatic && qualified)
          expect(result.decisions.filter(isBan).length).toBeGreaterThanOrEqual(
            1,
          );
      }),
      RUNS,
    );
  });

  it('bans nobody when an origin fails from every IP that relays it and everything else works', () => {
    const deadOrigin = ORIGINS[4]!;
    fc.assert(
      fc.property(
        scenarioArb,
        fc.integer({ min: 1, max: 8 }),
        (s, failures) => {
          // Every IP relays the dead origin and fails on it; elsewhere nothing fails to connect.
          const window = s.fleet.ips.flatMap((spec) => [
            ...rowsOf(spec, []).map((row) => ({
              ...row,
              origins: row.origins
                .filter((o) => o.origin !== deadOrigin)
                .map((o) => ({
                  ...o,
                  counts: { ...o.counts, connect_failed: 0 },
                })),
            })),
            {
              minute: MINUTE,
              ip: spec.ip,
              origins: [
                {
                  origin: deadOrigin,
                  kind: 'relay' as const,
                  counts: {
                    ok: 0,
                    connect_failed: failures,
                    origin_error: 0,
                    error: 0,
                  },
                },
              ],
            },
          ]);
          const result = decideMinute(inputOf(s, window), s.knobs);
          expect(result.decisions.filter(isBan)).toEqual([]);
          for (const spec of s.fleet.ips)
            expect(judged(result, spec.ip)).toBe(false);
        },
      ),
      RUNS,
    );
  });

  it('bans nobody when every IP fails to connect to every named origin and canary it tries', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const window = s.fleet.ips.flatMap((spec) =>
          rowsOf(spec, []).map((row) => ({
            ...row,
            origins: row.origins.map((o) => ({
              ...o,
              counts: {
                ...o.counts,
                ok: 0,
                connect_failed: o.counts.connect_failed + 1,
              },
            })),
          })),
        );
        const result = decideMinute(inputOf(s, window), s.knobs);
        expect(result.decisions.filter(isBan)).toEqual([]);
      }),
      RUNS,
    );
  });

  it('never bans an allowlisted IP', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const result = decideMinute(inputOf(s), s.knobs);
        const allowed = new Set(
          Object.entries(ALLOWLIST_ENTRIES)
            .filter(([text]) => {
              const entry = parseCidr(text)!;
              return s.knobs.allowlist.some(
                (c) =>
                  c.version === entry.version &&
                  c.network === entry.network &&
                  c.prefix === entry.prefix,
              );
            })
            .flatMap(([, ips]) => ips),
        );
        for (const d of result.decisions.filter(isBan))
          expect(allowed.has(d.ip)).toBe(false);
      }),
      RUNS,
    );
  });

  it('never judges an IP failing because it reported more ok samples, once it had the volume to be judged', () => {
    // The invariant, restated: see docs/policy.md. Below the minimum volume, ok samples
    // add volume (as Envoy's request_volume does), so 9 failures + 1 ok may be banned
    // where 9 failures alone are not. And an IP already judged failing but held back
    // by the cap or the fleet-wide guard may be banned once that guard no longer applies.
    const addition = fc.record({
      which: fc.nat(),
      origin: fc.constantFrom(...ORIGINS, ...CANARIES),
      kind: fc.constantFrom<HeartbeatKind>('relay', 'probe'),
      ok: fc.integer({ min: 1, max: 40 }),
    });
    fc.assert(
      fc.property(scenarioArb, addition, (s, add) => {
        const target = s.fleet.ips[add.which % s.fleet.ips.length]!.ip;
        const before = decideMinute(inputOf(s), s.knobs);
        const extra: MinuteTally = {
          minute: MINUTE,
          ip: target,
          origins: [
            {
              origin: add.origin,
              kind: add.kind,
              counts: {
                ok: add.ok,
                connect_failed: 0,
                origin_error: 0,
                error: 0,
              },
            },
          ],
        };
        const window = [
          ...s.fleet.ips.flatMap((spec) => rowsOf(spec, s.fleet.dead)),
          extra,
        ];
        const after = decideMinute(inputOf(s, window), s.knobs);

        const evidence = before.reporting.find((e) => e.ip === target)!;
        const probation = recentOffenses(s, target).length > 0;
        const needed = probation
          ? Math.min(s.knobs.probeMinSamples, s.knobs.minSamples)
          : s.knobs.minSamples;
        if (!judged(before, target) && evidence.samples >= needed) {
          expect(judged(after, target)).toBe(false);
          expect(
            after.decisions.filter(isBan).some((d) => d.ip === target),
          ).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('decides the same whatever the order of rows, bans and offense times', () => {
    const shuffled = scenarioArb.chain((s) => {
      const input = inputOf(s);
      const permutation = <T>(items: readonly T[]) =>
        fc.shuffledSubarray([...items], {
          minLength: items.length,
          maxLength: items.length,
        });
      return fc.record({
        s: fc.constant(s),
        window: permutation(input.window),
        recent: permutation(input.recent),
        bans: permutation(input.bans),
        offenses: fc
          .tuple(
            ...Object.entries(input.offenses).map(([ip, starts]) =>
              permutation(starts).map((p) => [ip, p] as const),
            ),
          )
          .map((entries) => Object.fromEntries(entries)),
      });
    });
    fc.assert(
      fc.property(shuffled, ({ s, window, recent, bans, offenses }) => {
        const ordered = decideMinute(inputOf(s), s.knobs);
        const reordered = decideMinute(
          { ...inputOf(s), window, recent, bans, offenses },
          s.knobs,
        );
        expect(asSet(reordered)).toEqual(asSet(ordered));
        expect({ ...reordered, decisions: [] }).toEqual({
          ...ordered,
          decisions: [],
        });
      }),
      RUNS,
    );
  });

  it('decides the same whether an IP\u2019s minute arrives in one row or in several', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const oneRowEach = s.fleet.ips.flatMap((spec) =>
          rowsOf(spec, s.fleet.dead, 1),
        );
        expect(asSet(decideMinute(inputOf(s), s.knobs))).toEqual(
          asSet(decideMinute(inputOf(s, oneRowEach), s.knobs)),
        );
      }),
      RUNS,
    );
  });

  it('releases early only automatic bans in force, and never bans an IP whose ban is in force', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const result = decideMinute(inputOf(s), s.knobs);
        const active = new Map(inForce(s).map((ban) => [ban.ip, ban]));
        for (const d of result.decisions) {
          if (d.type === 'release')
            expect(active.get(d.ip)?.manual).toBe(false);
          if (isBan(d)) expect(active.has(d.ip)).toBe(false);
        }
      }),
      RUNS,
    );
  });
});
