import { describe, expect, it } from 'vitest';
import { parseCidr } from '#contract/ip';
import { minuteOf } from '../../../../functions/core/minutes.js';
import type {
  PolicyInput,
  PolicyKnobs,
  PolicyResult,
} from '../../../../functions/core/policy.js';
import {
  automaticBanCap,
  banDurationSeconds,
  decideMinute,
  isAllowlisted,
} from '../../../../functions/core/policy.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';
import {
  automaticBan,
  banned,
  failing,
  fleetRows,
  HOUR,
  input,
  ipOf,
  ipsWith,
  KNOBS,
  knobsWith,
  MINUTE,
  NOW,
  ORIGIN_A,
  ORIGIN_B,
  ORIGIN_C,
  probes,
  row,
  TEN,
} from './policy-fixtures.js';

function decide(
  window: MinuteTally[],
  options: Partial<Omit<PolicyInput, 'window'>> & {
    knobs?: Partial<PolicyKnobs>;
  } = {},
): PolicyResult {
  const { knobs: overrides, ...rest } = options;
  return decideMinute(input({ window, ...rest }), knobsWith(overrides));
}

const typesOf = (result: PolicyResult) => result.decisions.map((d) => d.type);

describe('decideMinute: origin evidence', () => {
  it('bans the one machine of ten that cannot reach origins the other nine reach', () => {
    const result = decide(
      fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C], failing(ipOf(7))),
    );
    expect(banned(result)).toEqual([ipOf(7)]);
    const ban = result.decisions.find((d) => d.type === 'ban');
    expect(ban).toMatchObject({
      evidence: { samples: 12, connectFailed: 12, failRatio: 1 },
      ban: { offense: 1, rule: 'fail-ratio' },
    });
  });

  it('bans all three machines of a datacenter cut off from origins that seven others reach', () => {
    const cutOff = new Set([ipOf(8), ipOf(9), ipOf(10)]);
    const result = decide(
      fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C], failing(...cutOff)),
    );
    expect(banned(result)).toEqual([...cutOff].sort());
    expect(result.outages).toEqual([]);
  });

  it('declares an origin failing from every IP an outage, excuses its failures and bans nobody', () => {
    const result = decide(
      fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C], (_, origin) =>
        origin === ORIGIN_B ? 'connect_failed' : 'ok',
      ),
    );
    expect(banned(result)).toEqual([]);
    expect(result.outages).toEqual([ORIGIN_B]);
    expect(result.decisions).toContainEqual({
      type: 'origin_outage',
      origin: ORIGIN_B,
      evidence: { origin: ORIGIN_B, relayingIps: 10, failingIps: 10 },
    });
    expect(result.reporting[0]).toMatchObject({
      samples: 8,
      connectFailed: 0,
      excusedFailures: 4,
    });
  });

  it('declares an outage at three failing IPs of six relaying, and not at two failing of three', () => {
    const six = TEN.slice(0, 6);
    const threeOfSix = decide(
      fleetRows(six, [ORIGIN_A, ORIGIN_B], (ip, o) =>
        o === ORIGIN_B && six.indexOf(ip) < 3 ? 'connect_failed' : 'ok',
      ),
    );
    expect(threeOfSix.outages).toEqual([ORIGIN_B]);

    const three = TEN.slice(0, 3);
    const twoOfThree = decide(
      three.map((ip, i) =>
        row(ip, [{ origin: ORIGIN_B, [i < 2 ? 'connect_failed' : 'ok']: 12 }]),
      ),
      { knobs: { maxBanFraction: 1 } },
    );
    expect(twoOfThree.outages).toEqual([]);
    // The third IP reached the origin, so the other two are the suspects.
    expect(banned(twoOfThree)).toEqual(three.slice(0, 2).sort());
  });

  it('declares no outage when fewer than half of the relaying IPs fail, however many fail', () => {
    const fourOfTen = decide(
      fleetRows(TEN, [ORIGIN_A], failing(...TEN.slice(0, 4))),
    );
    expect(fourOfTen.outages).toEqual([]);
    expect(banned(fourOfTen)).toHaveLength(4);
  });

  it('bans neither of two machines whose only origin is dead: nobody else reached it to cross-check', () => {
    const rows = [
      ...fleetRows(TEN.slice(0, 8), [ORIGIN_A]),
      row(ipOf(9), [{ origin: ORIGIN_C, connect_failed: 12 }]),
      row(ipOf(10), [{ origin: ORIGIN_C, connect_failed: 12 }]),
    ];
    const result = decide(rows);
    expect(banned(result)).toEqual([]);
    expect(result.reporting.find((e) => e.ip === ipOf(9))).toMatchObject({
      samples: 0,
      uncorroboratedFailures: 12,
    });
  });

  it('counts a failure on an origin another IP reached, even when only one other IP relays it', () => {
    const result = decide([
      row(ipOf(1), [{ origin: ORIGIN_C, connect_failed: 12 }]),
      row(ipOf(2), [{ origin: ORIGIN_C, ok: 12 }]),
    ]);
    expect(banned(result)).toEqual([ipOf(1)]);
  });

  it('never counts origin_error or error: an IP whose streams all answer 404 or crash is not banned', () => {
    const result = decide([
      ...fleetRows(TEN.slice(0, 8), [ORIGIN_A]),
      row(ipOf(9), [{ origin: ORIGIN_A, origin_error: 30 }]),
      row(ipOf(10), [{ origin: ORIGIN_A, error: 30, ok: 2 }]),
    ]);
    expect(banned(result)).toEqual([]);
    expect(result.reporting.find((e) => e.ip === ipOf(9))).toMatchObject({
      samples: 0,
      originErrors: 30,
    });
    expect(result.reporting.find((e) => e.ip === ipOf(10))).toMatchObject({
      samples: 2,
      errors: 30,
    });
  });

  it('judges heartbeats without an origin on their ratio alone, since they cannot be cross-checked', () => {
    const result = decide([
      ...fleetRows(TEN.slice(0, 4), [ORIGIN_A]),
      row(ipOf(5), [{ origin: '', connect_failed: 12 }]),
    ]);
    expect(banned(result)).toEqual([ipOf(5)]);
  });

  it('records origin_outage only when an outage begins and origin_recovered when it ends', () => {
    const down = fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C], (_, o) =>
      o === ORIGIN_B ? 'connect_failed' : 'ok',
    );
    const still = decide(down, {
      previous: { outages: [ORIGIN_B], fleetWide: false },
    });
    expect(typesOf(still)).toEqual([]);
    const back = decide(fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C]), {
      previous: { outages: [ORIGIN_B], fleetWide: false },
    });
    expect(back.decisions).toEqual([
      {
        type: 'origin_recovered',
        origin: ORIGIN_B,
        evidence: { origin: ORIGIN_B, relayingIps: 10, failingIps: 0 },
      },
    ]);
  });
});

describe('decideMinute: a fault that hits every machine', () => {
  it('bans nobody when every IP fails every origin, and records fleet_failure with who was spared', () => {
    const result = decide(
      fleetRows(TEN, [ORIGIN_A, ORIGIN_B, ORIGIN_C], () => 'connect_failed'),
    );
    expect(banned(result)).toEqual([]);
    expect(result.fleetWide).toBe(true);
    const fleet = result.decisions.find((d) => d.type === 'fleet_failure');
    expect(fleet).toMatchObject({
      evidence: { reportingIps: 10, failingIps: 10, share: 1 },
    });
  });

  it('bans nobody when eight of ten fail, the fleet-wide share, and lists the eight it would have banned', () => {
    // Each failing IP has an origin of its own that one of the two healthy IPs reaches:
    // no origin is in outage, so all eight qualify on cross-checked evidence.
    const own = (i: number) => `rtmp://customer-${i}.example.net:1935`;
    const rows = [
      ...TEN.slice(0, 8).map((ip, i) =>
        row(ip, [{ origin: own(i), connect_failed: 12 }]),
      ),
      row(
        ipOf(9),
        [0, 1, 2, 3].map((i) => ({ origin: own(i), ok: 3 })),
      ),
      row(
        ipOf(10),
        [4, 5, 6, 7].map((i) => ({ origin: own(i), ok: 3 })),
      ),
    ];
    const result = decide(rows);
    expect(result.fleetWide).toBe(true);
    expect(banned(result)).toEqual([]);
    const fleet = result.decisions.find((d) => d.type === 'fleet_failure');
    expect(fleet).toMatchObject({
      evidence: { reportingIps: 10, failingIps: 8, share: 0.8 },
    });
    expect(
      fleet?.type === 'fleet_failure' &&
        fleet.suppressed.map((e) => e.ip).sort(),
    ).toEqual(TEN.slice(0, 8).sort());
  });

  it('bans nobody when seven of ten fail every shared origin: each origin is in outage', () => {
    const result = decide(
      fleetRows(TEN, [ORIGIN_A, ORIGIN_B], failing(...TEN.slice(0, 7))),
    );
    expect(result.fleetWide).toBe(false);
    expect(result.outages).toEqual([ORIGIN_A, ORIGIN_B]);
    expect(banned(result)).toEqual([]);
  });

  it('records fleet_failure again only while someone is being spared, and fleet_recovered when it ends', () => {
    const previous = { outages: [ORIGIN_A], fleetWide: true };
    const allDown = decide(
      fleetRows(TEN, [ORIGIN_A], () => 'connect_failed'),
      { previous },
    );
    // Everything is excused as an origin outage: nobody qualifies, nothing new to say.
    expect(typesOf(allDown)).toEqual([]);
    const recovered = decide(fleetRows(TEN, [ORIGIN_A]), { previous });
    expect(typesOf(recovered)).toEqual(['origin_recovered', 'fleet_recovered']);
  });

  it('does not call three IPs of five fleet-wide', () => {
    const five = TEN.slice(0, 5);
    const result = decide(
      fleetRows(five, [ORIGIN_A, ORIGIN_B], failing(...five.slice(0, 3))),
    );
    expect(result.fleetWide).toBe(false);
  });
});

describe('decideMinute: minimum volume', () => {
  it.each([
    { failures: 9, banned: false },
    { failures: 10, banned: true },
  ])(
    'with MIN_SAMPLES 10, $failures connect failures and nothing else -> banned: $banned',
    ({ failures, banned: expected }) => {
      const result = decide([
        ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
        row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: failures }]),
      ]);
      expect(banned(result).includes(ipOf(6))).toBe(expected);
    },
  );

  it('counts ok samples towards the volume, as Envoy request_volume and Hystrix requestVolumeThreshold do', () => {
    // 9 failures alone are too few to judge; 9 of 10 are a 90% failure rate on enough volume.
    const result = decide([
      ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
      row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: 9, ok: 1 }]),
    ]);
    expect(banned(result)).toEqual([ipOf(6)]);
  });

  it('leaves origin_error and error out of the volume', () => {
    const result = decide([
      ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
      row(ipOf(6), [
        { origin: ORIGIN_A, connect_failed: 9, origin_error: 20, error: 20 },
      ]),
    ]);
    expect(banned(result)).toEqual([]);
  });

  it('bans at the failure ratio and not below it', () => {
    const at = decide([
      ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
      row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: 6, ok: 6 }]),
    ]);
    expect(banned(at)).toEqual([ipOf(6)]);
    const below = decide([
      ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
      row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: 5, ok: 6 }]),
    ]);
    expect(banned(below)).toEqual([]);
  });
});

describe('decideMinute: safety cap', () => {
  it.each([
    { n: 1, fraction: 0.5, cap: 1 },
    { n: 2, fraction: 0.5, cap: 1 },
    { n: 3, fraction: 0.5, cap: 1 },
    { n: 5, fraction: 0.5, cap: 2 },
    { n: 10, fraction: 0.5, cap: 5 },
    { n: 1, fraction: 0.2, cap: 1 },
    { n: 2, fraction: 0.2, cap: 1 },
    { n: 3, fraction: 0.2, cap: 1 },
    { n: 5, fraction: 0.2, cap: 1 },
    { n: 10, fraction: 0.2, cap: 2 },
    { n: 10, fraction: 0.3, cap: 3 },
    { n: 100, fraction: 0.07, cap: 7 },
  ])(
    'allows max(1, floor($n x $fraction)) = $cap automatic bans',
    ({ n, fraction, cap }) => {
      expect(automaticBanCap(n, fraction)).toBe(cap);
    },
  );

  it('bans the two worst of four failing IPs at MAX_BAN_FRACTION 0.2 and records the other two as capped', () => {
    const ratios: Record<string, number> = {
      [ipOf(1)]: 12,
      [ipOf(2)]: 9,
      [ipOf(3)]: 11,
      [ipOf(4)]: 7,
    };
    const rows = TEN.map((ip) =>
      row(ip, [
        {
          origin: ORIGIN_A,
          connect_failed: ratios[ip] ?? 0,
          ok: 12 - (ratios[ip] ?? 0),
        },
      ]),
    );
    const result = decide(rows, { knobs: { maxBanFraction: 0.2 } });
    expect(banned(result)).toEqual([ipOf(1), ipOf(3)]);
    expect(ipsWith(result, 'capped')).toEqual([ipOf(2), ipOf(4)]);
    expect(result.capInForce).toBe(true);
    const capped = result.decisions.find((d) => d.type === 'capped');
    expect(capped).toMatchObject({
      cap: {
        reportingIps: 10,
        cap: 2,
        automaticBansInForce: 0,
        formula: 'max(1, floor(10 x 0.2)) = 2',
      },
    });
  });

  it('counts automatic bans already in force against the cap, but not manual ones', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(1), ipOf(2)));
    const withAutomatic = decide(rows, {
      knobs: { maxBanFraction: 0.2 },
      bans: [automaticBan(ipOf(9), NOW - HOUR / 2)],
    });
    expect(banned(withAutomatic)).toEqual([ipOf(1)]);
    expect(ipsWith(withAutomatic, 'capped')).toEqual([ipOf(2)]);
    const withManual = decide(rows, {
      knobs: { maxBanFraction: 0.2 },
      bans: [
        automaticBan(ipOf(9), NOW - HOUR / 2, {
          manual: true,
          rule: 'manual',
        }),
      ],
    });
    expect(banned(withManual)).toEqual([ipOf(1), ipOf(2)]);
  });

  it('always allows one automatic ban, even in a fleet of two at 0.2', () => {
    const result = decide(
      [
        row(ipOf(1), [{ origin: ORIGIN_A, connect_failed: 12 }]),
        row(ipOf(2), [{ origin: ORIGIN_A, ok: 12 }]),
      ],
      {
        knobs: { maxBanFraction: 0.2 },
      },
    );
    expect(banned(result)).toEqual([ipOf(1)]);
  });

  it('counts banned IPs that went silent in the fleet size', () => {
    // Eight report, two more are banned and silent: N = 10, cap 2 at 0.2, both slots used.
    const rows = fleetRows(TEN.slice(0, 8), [ORIGIN_A], failing(ipOf(1)));
    const bans = [
      automaticBan(ipOf(9), NOW - 60_000),
      automaticBan(ipOf(10), NOW - 60_000),
    ];
    const result = decide(rows, { knobs: { maxBanFraction: 0.2 }, bans });
    expect(banned(result)).toEqual([]);
    expect(result.decisions.find((d) => d.type === 'capped')).toMatchObject({
      ip: ipOf(1),
      cap: { reportingIps: 10, cap: 2 },
    });
  });
});

describe('decideMinute: escalation', () => {
  it.each([
    { offense: 1, seconds: 3600 },
    { offense: 2, seconds: 7200 },
    { offense: 4, seconds: 14_400 },
    { offense: 5, seconds: 14_400 },
  ])(
    'makes ban number $offense within 24 h last $seconds s at the defaults',
    ({ offense, seconds }) => {
      expect(banDurationSeconds(offense, KNOBS)).toBe(seconds);
    },
  );

  it('escalates a second automatic ban within 24 h to twice BAN_SECONDS', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(4)));
    const result = decide(rows, { offenses: { [ipOf(4)]: [NOW - 3 * HOUR] } });
    const decision = result.decisions.find((d) => d.type === 'escalation');
    expect(decision).toMatchObject({
      ip: ipOf(4),
      ban: {
        offense: 2,
        rule: 'fail-ratio-escalated',
        since: NOW,
        until: NOW + 7200_000,
      },
    });
  });

  it('forgets bans that started more than 24 h ago', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(4)));
    const result = decide(rows, { offenses: { [ipOf(4)]: [NOW - 25 * HOUR] } });
    expect(result.decisions.find((d) => d.type === 'ban')).toMatchObject({
      ban: { offense: 1, until: NOW + 3600_000 },
    });
  });

  it('does not judge an IP again while its ban is in force', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(4)));
    const result = decide(rows, {
      bans: [automaticBan(ipOf(4), NOW - 60_000)],
    });
    expect(typesOf(result)).toEqual([]);
  });
});

describe('decideMinute: probes', () => {
  it('counts probes as samples: failing probes alone, cross-checked by other probers, ban at MIN_SAMPLES', () => {
    const result = decide([
      ...TEN.slice(0, 9).map((ip) => probes(ip, 12, 0)),
      probes(ipOf(10), 0, 12),
    ]);
    expect(banned(result)).toEqual([ipOf(10)]);
  });

  it('puts an IP banned in the last 24 h on probation: three failing probes ban it again, escalated', () => {
    const rows = [
      ...TEN.slice(0, 9).map((ip) => probes(ip, 4, 0)),
      probes(ipOf(10), 0, 3),
    ];
    expect(banned(decide(rows))).toEqual([]);
    const onProbation = decide(rows, {
      offenses: { [ipOf(10)]: [NOW - 2 * 60_000] },
    });
    expect(onProbation.decisions).toContainEqual(
      expect.objectContaining({
        type: 'escalation',
        ip: ipOf(10),
        ban: expect.objectContaining({ offense: 2, samples: 3 }),
      }),
    );
  });

  describe('early release', () => {
    const ban = automaticBan(ipOf(10), NOW - 5 * 60_000);
    /** A probe report of ipOf(10) observed `ago` ms before NOW. */
    const report = (ago: number, ok = 4, failed = 0) =>
      probes(ipOf(10), ok, failed, {
        minute: minuteOf(NOW - ago),
        observedAt: NOW - ago,
      });

    it('releases a banned IP once every probe it reported over the last RELEASE_MINUTES (a window of time) was healthy', () => {
      const recent = [report(90_000, 0, 4), report(45_000), report(15_000)];
      const result = decide([], { bans: [ban], recent });
      expect(result.decisions).toEqual([
        {
          type: 'release',
          ip: ipOf(10),
          ban,
          healthyMinutes: [
            { minute: minuteOf(NOW - 15_000), ok: 8, connectFailed: 0 },
          ],
        },
      ]);
    });

    it.each([
      {
        case: 'a probe failed within the window',
        recent: [report(50_000), report(20_000, 19, 2)],
      },
      {
        case: 'the window holds too few probe samples',
        recent: [report(90_000), report(20_000, 2, 0)],
      },
      {
        case: 'no probe was reported within the window',
        recent: [report(70_000), report(130_000)],
      },
      {
        case: 'only relays were healthy',
        recent: [
          {
            ...row(ipOf(10), [{ origin: ORIGIN_A, ok: 12 }]),
            observedAt: NOW - 20_000,
          },
        ],
      },
    ])('keeps the ban when $case', ({ recent }) => {
      expect(typesOf(decide([], { bans: [ban], recent }))).toEqual([]);
    });

    it('waits until the window begins after the ban, so the failures behind it have aged out', () => {
      const fresh = automaticBan(ipOf(10), NOW - 30_000);
      expect(
        typesOf(
          decide([], {
            bans: [fresh],
            recent: [report(20_000), report(10_000)],
          }),
        ),
      ).toEqual([]);
    });

    it('widens the window with RELEASE_MINUTES', () => {
      const recent = [report(150_000, 0, 4), report(90_000), report(30_000)];
      expect(
        typesOf(
          decide([], { bans: [ban], recent, knobs: { releaseMinutes: 3 } }),
        ),
      ).toEqual([]);
      expect(
        typesOf(
          decide([], { bans: [ban], recent, knobs: { releaseMinutes: 2 } }),
        ),
      ).toEqual(['release']);
    });

    it("judges a row of the older format (no observedAt) as observed at its minute's end", () => {
      expect(
        typesOf(
          decide([], {
            bans: [ban],
            recent: [probes(ipOf(10), 4, 0, { minute: MINUTE })],
          }),
        ),
      ).toEqual(['release']);
      expect(
        typesOf(
          decide([], {
            bans: [ban],
            recent: [probes(ipOf(10), 4, 0, { minute: MINUTE - 1 })],
          }),
        ),
      ).toEqual([]);
    });

    it('never releases a manual ban', () => {
      const manual = { ...ban, manual: true, rule: 'manual' };
      expect(
        typesOf(
          decide([], {
            bans: [manual],
            recent: [report(20_000), report(10_000)],
          }),
        ),
      ).toEqual([]);
    });
  });
});

describe('decideMinute: allowlist', () => {
  const allowlist = ['198.51.100.8/30', '2001:db8:77::/48'].map(
    (text) => parseCidr(text)!,
  );

  it.each([
    { ip: '198.51.100.9', listed: true },
    { ip: '198.51.100.12', listed: false },
    { ip: '2001:db8:77::1', listed: true },
    { ip: '2001:db8:78::1', listed: false },
  ])('knows whether $ip is allowlisted: $listed', ({ ip, listed }) => {
    expect(isAllowlisted(ip, allowlist)).toBe(listed);
  });

  it('never bans an allowlisted IP, records why, and leaves its cap slot to others', () => {
    const ips = [...TEN.slice(0, 8), '2001:db8:77::1', '2001:db8:1::1'];
    const result = decide(
      fleetRows(
        ips,
        [ORIGIN_A, ORIGIN_B],
        failing(ipOf(8), '2001:db8:77::1', '2001:db8:1::1'),
      ),
      {
        knobs: { allowlist, maxBanFraction: 0.1 },
      },
    );
    expect(ipsWith(result, 'allowlisted')).toEqual([
      '198.51.100.8',
      '2001:db8:77::1',
    ]);
    expect(banned(result)).toEqual(['2001:db8:1::1']);
    expect(result.capInForce).toBe(false);
  });
});

describe('decideMinute: dry run', () => {
  it('decides the same in dry run; leaving the blocklist alone is the aggregator\u2019s job', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(3)));
    expect(decide(rows, { knobs: { dryRun: true } })).toEqual(decide(rows));
  });
});

describe('decideMinute: input handling', () => {
  it('adds up several rows of one IP in one minute, as several requests write them', () => {
    const split = [
      ...fleetRows(TEN.slice(0, 5), [ORIGIN_A]),
      row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: 5 }]),
      row(ipOf(6), [{ origin: ORIGIN_A, connect_failed: 5, ok: 1 }]),
    ];
    expect(decide(split).reporting.find((e) => e.ip === ipOf(6))).toMatchObject(
      { samples: 11, connectFailed: 10 },
    );
    expect(banned(decide(split))).toEqual([ipOf(6)]);
  });

  it('ignores bans that ended before the decision time', () => {
    const rows = fleetRows(TEN, [ORIGIN_A], failing(ipOf(4)));
    const ended = automaticBan(ipOf(4), NOW - 2 * HOUR);
    expect(banned(decide(rows, { bans: [ended] }))).toEqual([ipOf(4)]);
  });
});
