import { afterAll, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../functions/core/minutes.js';
import { createLogger } from '../../../functions/log.js';
import type { TestStatusCenter } from '../../helpers/status-center.js';
import { apiClient, startStatusCenter } from '../../helpers/status-center.js';

/**
 * Detection stories told over HTTP against a status center on DynamoDB Local:
 * ten relay machines, three origins, 12 relay heartbeats and 4 probes per
 * machine per minute. Each story has its own table and a manual clock, so
 * minutes pass without waiting; the aggregation runs as if EventBridge fired
 * 15 s into the next minute (after the 10 s grace).
 */

const FLEET = [
  ...Array.from({ length: 9 }, (_, i) => `203.0.113.${i + 11}`),
  '2001:db8:a::10',
];
const ip = (n: number) => FLEET[n - 1]!;
const ORIGINS = [
  'rtmp://origin-a.example.net/live',
  'rtmp://origin-b.example.net/live',
  'https://origin-c.example.net/hls',
];
const CANARY = 'tcp://canary.example.net:443';
const RELAYS_PER_MINUTE = 12;
const PROBES_PER_MINUTE = 4;

type Status = 'ok' | 'connect_failed' | 'origin_error' | 'error';
/** What one heartbeat of a machine says: `n` counts its heartbeats in the minute, relays first. */
type Health = (beat: {
  ip: string;
  kind: 'relay' | 'probe';
  origin: string;
  n: number;
}) => Status | undefined;

type Row = { scenario: string; expected: string; observed: string };
const table: Row[] = [];

function manualClock(start: number) {
  let now = start;
  return { now: () => now, set: (ms: number) => (now = ms) };
}

async function story(env: Record<string, string> = {}) {
  const first = minuteOf(Date.now());
  const clock = manualClock(minuteStart(first) + 5_000);
  // The center's log lines (warnings and metrics), kept for the stories to read.
  const logged: Array<Record<string, any>> = [];
  const log = createLogger({
    level: 'warn',
    write: (line) => void logged.push(JSON.parse(line)),
  });
  const center: TestStatusCenter = await startStatusCenter({
    env,
    overrides: { now: clock.now, log },
  });
  const api = apiClient(center);

  /**
   * Posts minute `m` of the whole fleet (one batch per machine); `health`
   * undefined means silent. Relays spread over the three origins unless
   * `originOf` names another one.
   */
  async function minute(
    m: number,
    health: Health,
    originOf: (ip: string, n: number) => string | undefined = () => undefined,
  ) {
    clock.set(minuteStart(m) + 30_000);
    for (const address of FLEET) {
      const beats: object[] = [];
      for (let n = 0; n < RELAYS_PER_MINUTE + PROBES_PER_MINUTE; n++) {
        const kind = n < RELAYS_PER_MINUTE ? 'relay' : 'probe';
        const origin =
          kind === 'relay'
            ? (originOf(address, n) ??
              `${ORIGINS[n % ORIGINS.length]}/stream-${n}`)
            : CANARY;
        const status = health({ ip: address, kind, origin, n });
        if (!status) continue;
        const ts = minuteStart(m) + 1_000 + n * 3_000;
        beats.push({
          ip: address,
          process: kind === 'relay' ? `ffmpeg-${n}` : 'probe',
          kind,
          status,
          origin,
          ts,
        });
      }
      if (!beats.length) continue;
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: { heartbeats: beats },
      });
      expect(response.status).toBe(202);
    }
  }

  /** Runs the aggregation 15 s into minute `m + 1`: minute `m` (and any missed before it) is decided. */
  async function aggregate(m: number) {
    clock.set(minuteStart(m + 1) + 15_000);
    return center.aggregate(new Date(clock.now()).toISOString());
  }

  const blocklist = async () => {
    const response = await api('GET', '/v1/blocklist', { role: 'reader' });
    return response.json.entries as Array<{
      ip: string;
      since: string;
      until: string;
      manual: boolean;
      failRatio: number;
      samples: number;
    }>;
  };
  const events = async (query = '') => {
    const response = await api('GET', `/v1/events${query}`, { role: 'reader' });
    expect(response.status).toBe(200);
    return response.json.events as Array<{
      type: string;
      ip?: string;
      origin?: string;
      enforced: boolean;
      rule?: string;
      evidence: any;
    }>;
  };
  const fleet = async () =>
    (await api('GET', '/v1/fleet', { role: 'reader' })).json;

  return {
    first,
    center,
    logged,
    minute,
    aggregate,
    blocklist,
    events,
    fleet,
    stop: () => center.stop(),
  };
}

const seconds = (entry: { since: string; until: string }) =>
  (Date.parse(entry.until) - Date.parse(entry.since)) / 1000;
const ipsOf = (entries: Array<{ ip: string }>) =>
  entries.map((e) => e.ip).sort();
const summary = (
  entries: Array<{ type: string; ip?: string; origin?: string }>,
) =>
  entries.map(
    (e) =>
      `${e.type}${e.ip ? ` ${e.ip}` : ''}${e.origin ? ` ${e.origin}` : ''}`,
  );

describe('detection stories over HTTP on DynamoDB Local', () => {
  afterAll(() => {
    console.log(
      [
        '| scenario | expected | observed |',
        '|---|---|---|',
        ...table.map(
          (r) => `| ${r.scenario} | ${r.expected} | ${r.observed} |`,
        ),
      ].join('\n'),
    );
  });

  it('bans the one machine of ten that cannot reach origins the other nine reach', async () => {
    const s = await story();
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(7) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);

      const entries = await s.blocklist();
      expect(ipsOf(entries)).toEqual([ip(7)]);
      expect(entries[0]).toMatchObject({
        manual: false,
        failRatio: 1,
        samples: 16,
      });
      expect(seconds(entries[0]!)).toBe(3600);
      const trail = await s.events(`?ip=${ip(7)}`);
      expect(summary(trail)).toEqual([`ban ${ip(7)}`]);
      expect(trail[0]!.evidence).toMatchObject({
        samples: 16,
        connectFailed: 16,
        failRatio: 1,
        excusedFailures: 0,
      });
      const view = await s.fleet();
      expect(view).toMatchObject({
        originOutages: [],
        fleetWideFailure: false,
        capInForce: false,
      });
      expect(view.reporting).toHaveLength(10);
      table.push({
        scenario: 'one machine of ten cut off',
        expected: `banned [${ip(7)}]`,
        observed: `banned [${ipsOf(entries)}]; events ${summary(trail)}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans all three machines of a datacenter cut off from origins the other seven reach', async () => {
    const s = await story();
    try {
      const datacenter = [ip(8), ip(9), ip(10)];
      const m = s.first + 1;
      await s.minute(m, (b) =>
        datacenter.includes(b.ip) ? 'connect_failed' : 'ok',
      );
      await s.aggregate(m);

      const entries = await s.blocklist();
      expect(ipsOf(entries)).toEqual([...datacenter].sort());
      const trail = await s.events();
      expect(summary(trail).sort()).toEqual(
        datacenter.map((a) => `ban ${a}`).sort(),
      );
      expect((await s.fleet()).originOutages).toEqual([]);
      table.push({
        scenario: 'datacenter of 3/10 cut off',
        expected: 'banned all 3',
        observed: `banned [${ipsOf(entries)}]; no origin outage`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans nobody when an origin goes down for every machine, and records and shows the origin outage', async () => {
    const s = await story();
    try {
      const m = s.first + 1;
      await s.minute(m, (b) =>
        b.origin.startsWith(ORIGINS[1]!) ? 'connect_failed' : 'ok',
      );
      await s.aggregate(m);

      expect(await s.blocklist()).toEqual([]);
      const trail = await s.events();
      expect(summary(trail)).toEqual([
        'origin_outage rtmp://origin-b.example.net',
      ]);
      expect(trail[0]!.evidence).toEqual({
        origin: 'rtmp://origin-b.example.net',
        relayingIps: 10,
        failingIps: 10,
      });
      const view = await s.fleet();
      expect(view.originOutages).toEqual(['rtmp://origin-b.example.net']);
      expect(view.reporting[0]).toMatchObject({
        excusedFailures: 4,
        connectFailed: 0,
      });
      table.push({
        scenario: 'origin down',
        expected: 'no ban; origin_outage; in /v1/fleet',
        observed: `banned []; events ${summary(trail)}; originOutages ${view.originOutages}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans neither of two machines whose own customer origin is dead, since no other machine reached it', async () => {
    const s = await story();
    try {
      const m = s.first + 1;
      // Machines 4 and 5 relay only origin D, which answers nobody; their probes reach the canary.
      const relaysD = [ip(4), ip(5)];
      await s.minute(
        m,
        (b) =>
          relaysD.includes(b.ip) && b.kind === 'relay'
            ? 'connect_failed'
            : 'ok',
        (address, n) =>
          relaysD.includes(address)
            ? `rtmp://origin-d.example.net/live/stream-${n}`
            : undefined,
      );
      await s.aggregate(m);

      expect(await s.blocklist()).toEqual([]);
      expect(await s.events()).toEqual([]);
      const view = await s.fleet();
      const evidence = view.reporting.filter((e: { ip: string }) =>
        relaysD.includes(e.ip),
      );
      expect(
        evidence.map((e: Record<string, number>) => [
          e.connectFailed,
          e.uncorroboratedFailures,
          e.ok,
        ]),
      ).toEqual([
        [0, 12, 4],
        [0, 12, 4],
      ]);
      table.push({
        scenario: 'dead origin relayed by only 2 machines',
        expected: 'no ban (nothing to cross-check)',
        observed: `banned []; no events; uncorroboratedFailures 12 each in /v1/fleet`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans nobody when every machine fails, and records a fleet-wide failure', async () => {
    const s = await story();
    try {
      const m = s.first + 1;
      await s.minute(m, () => 'connect_failed');
      await s.aggregate(m);

      expect(await s.blocklist()).toEqual([]);
      const types = summary(await s.events());
      expect(types).toContain('fleet_failure');
      expect(types.filter((t) => t.startsWith('ban'))).toEqual([]);
      const view = await s.fleet();
      expect(view.fleetWideFailure).toBe(true);
      expect(view.banned).toEqual([]);
      table.push({
        scenario: 'everyone failing',
        expected: 'no ban; fleet_failure; fleetWideFailure true',
        observed: `banned []; events ${[...new Set(types.map((t) => t.split(' ')[0]))].sort()}; fleetWideFailure ${view.fleetWideFailure}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans a repeat offender twice as long the second time within 24 h', async () => {
    const s = await story({ RELAYWATCH_BAN_SECONDS: '120' });
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(3) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);
      const firstBan = await s.blocklist();
      expect(ipsOf(firstBan)).toEqual([ip(3)]);
      expect(seconds(firstBan[0]!)).toBe(120);

      // Banned, the machine gets no work and says nothing; the ban runs out.
      for (const later of [m + 1, m + 2]) {
        await s.minute(later, (b) => (b.ip === ip(3) ? undefined : 'ok'));
        await s.aggregate(later);
      }
      expect(await s.blocklist()).toEqual([]);

      await s.minute(m + 3, (b) => (b.ip === ip(3) ? 'connect_failed' : 'ok'));
      await s.aggregate(m + 3);
      const secondBan = await s.blocklist();
      expect(ipsOf(secondBan)).toEqual([ip(3)]);
      expect(seconds(secondBan[0]!)).toBe(240);
      const trail = await s.events(`?ip=${ip(3)}`);
      expect(summary(trail)).toEqual([`escalation ${ip(3)}`, `ban ${ip(3)}`]);
      expect(trail[0]).toMatchObject({
        rule: 'fail-ratio-escalated',
        evidence: { ban: { offense: 2 } },
      });
      table.push({
        scenario: 'repeat offender (BAN_SECONDS 120)',
        expected: '1st ban 120 s, 2nd 240 s',
        observed: `1st ${seconds(firstBan[0]!)} s, 2nd ${seconds(secondBan[0]!)} s; events ${summary(trail).reverse()}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('releases a banned machine early by default once its probes were healthy over the last minute', async () => {
    const s = await story();
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(5) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);
      expect(ipsOf(await s.blocklist())).toEqual([ip(5)]);

      await s.minute(m + 1, (b) =>
        b.ip === ip(5) && b.kind === 'relay' ? undefined : 'ok',
      );
      await s.aggregate(m + 1);

      expect(await s.blocklist()).toEqual([]);
      expect(summary(await s.events(`?ip=${ip(5)}`))).toEqual([
        `release ${ip(5)}`,
        `ban ${ip(5)}`,
      ]);
      table.push({
        scenario: 'banned machine, probes recover (defaults)',
        expected: 'released after 1 healthy minute',
        observed:
          'released at the first decision whose window holds only healthy probes',
      });
    } finally {
      await s.stop();
    }
  });

  it('releases a banned machine early once its probes were healthy for three minutes (RELEASE_MINUTES=3)', async () => {
    const s = await story({ RELAYWATCH_RELEASE_MINUTES: '3' });
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(5) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);
      expect(ipsOf(await s.blocklist())).toEqual([ip(5)]);

      // The banned machine relays nothing; its probes reach the canary again.
      const probesOnly: Health = (b) =>
        b.ip === ip(5) && b.kind === 'relay' ? undefined : 'ok';
      const stillBanned: string[][] = [];
      for (const later of [m + 1, m + 2]) {
        await s.minute(later, probesOnly);
        await s.aggregate(later);
        stillBanned.push(ipsOf(await s.blocklist()));
      }
      expect(stillBanned).toEqual([[ip(5)], [ip(5)]]);
      await s.minute(m + 3, probesOnly);
      await s.aggregate(m + 3);

      expect(await s.blocklist()).toEqual([]);
      const trail = await s.events(`?ip=${ip(5)}`);
      expect(summary(trail)).toEqual([`release ${ip(5)}`, `ban ${ip(5)}`]);
      expect(trail[0]!.evidence.healthyMinutes).toHaveLength(3);
      expect(trail[0]!.evidence.healthyMinutes[0]).toMatchObject({
        ok: 4,
        connectFailed: 0,
      });
      table.push({
        scenario: 'banned machine, probes recover',
        expected: 'released after 3 healthy minutes',
        observed: `banned through 2 healthy minutes, released after the 3rd; events ${summary(trail).reverse()}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans a machine again right when its ban ends if its probes still fail, on probes alone and escalated', async () => {
    const s = await story({ RELAYWATCH_BAN_SECONDS: '120' });
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(6) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);
      const [firstBan] = await s.blocklist();
      expect(firstBan?.ip).toBe(ip(6));

      const failingProbesOnly: Health = (b) =>
        b.ip !== ip(6)
          ? 'ok'
          : b.kind === 'probe'
            ? 'connect_failed'
            : undefined;
      await s.minute(m + 1, failingProbesOnly);
      await s.aggregate(m + 1);
      expect((await s.blocklist()).map((e) => e.until)).toEqual([
        firstBan!.until,
      ]);
      await s.minute(m + 2, failingProbesOnly);
      await s.aggregate(m + 2);

      const [secondBan] = await s.blocklist();
      expect(secondBan).toMatchObject({
        ip: ip(6),
        since: firstBan!.until,
        samples: 4,
        failRatio: 1,
      });
      expect(seconds(secondBan!)).toBe(240);
      const trail = await s.events(`?ip=${ip(6)}`);
      expect(summary(trail)).toEqual([`escalation ${ip(6)}`, `ban ${ip(6)}`]);
      table.push({
        scenario: 'banned machine, probes keep failing (BAN_SECONDS 120)',
        expected: 're-banned at expiry on 4 probes, 240 s',
        observed: `re-banned since = 1st until, samples ${secondBan!.samples}, ${seconds(secondBan!)} s; events ${summary(trail).reverse()}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('records the ban it would make in dry run, with enforced false, and leaves the blocklist empty', async () => {
    const s = await story({ RELAYWATCH_DRY_RUN: 'true' });
    try {
      const m = s.first + 1;
      await s.minute(m, (b) => (b.ip === ip(2) ? 'connect_failed' : 'ok'));
      await s.aggregate(m);

      expect(await s.blocklist()).toEqual([]);
      const trail = await s.events(`?ip=${ip(2)}`);
      expect(trail.map((e) => [e.type, e.enforced])).toEqual([['ban', false]]);
      const view = await s.fleet();
      expect(view).toMatchObject({ dryRun: true, banned: [] });
      table.push({
        scenario: 'dry run',
        expected: 'ban event enforced=false; blocklist empty',
        observed: `blocklist []; events ${trail.map((e) => `${e.type} enforced=${e.enforced}`)}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('never bans allowlisted machines (an IPv4 and an IPv6 CIDR), records why, and still bans the others', async () => {
    const s = await story({
      RELAYWATCH_ALLOWLIST: '203.0.113.16/30, 2001:db8:a::/48',
    });
    try {
      const failing = [ip(2), ip(7), ip(10)]; // .12 outside; .17 and the IPv6 machine inside
      const m = s.first + 1;
      await s.minute(m, (b) =>
        failing.includes(b.ip) ? 'connect_failed' : 'ok',
      );
      await s.aggregate(m);

      expect(ipsOf(await s.blocklist())).toEqual([ip(2)]);
      const trail = await s.events();
      expect(summary(trail).sort()).toEqual(
        [
          `allowlisted ${ip(10)}`,
          `allowlisted ${ip(7)}`,
          `ban ${ip(2)}`,
        ].sort(),
      );
      table.push({
        scenario: 'allowlist (v4 /30 + v6 /48)',
        expected: `banned [${ip(2)}]; allowlisted ${ip(7)}, ${ip(10)}`,
        observed: `banned [${ipsOf(await s.blocklist())}]; events ${summary(trail).sort()}`,
      });
    } finally {
      await s.stop();
    }
  });

  it('bans only the two worst of four failing machines at MAX_BAN_FRACTION 0.2 and records the other two as capped', async () => {
    const s = await story({ RELAYWATCH_MAX_BAN_FRACTION: '0.2' });
    try {
      // Failing heartbeats of 16: ip1 16, ip3 14, ip2 12, ip4 9.
      const failures: Record<string, number> = {
        [ip(1)]: 16,
        [ip(2)]: 12,
        [ip(3)]: 14,
        [ip(4)]: 9,
      };
      const m = s.first + 1;
      await s.minute(m, (b) =>
        b.n < (failures[b.ip] ?? 0) ? 'connect_failed' : 'ok',
      );
      await s.aggregate(m);

      const entries = await s.blocklist();
      expect(ipsOf(entries)).toEqual([ip(1), ip(3)]);
      const trail = await s.events();
      expect(summary(trail).sort()).toEqual(
        [
          `ban ${ip(1)}`,
          `ban ${ip(3)}`,
          `capped ${ip(2)}`,
          `capped ${ip(4)}`,
        ].sort(),
      );
      const capped = trail.find((e) => e.type === 'capped')!;
      expect(capped.evidence.cap).toMatchObject({
        reportingIps: 10,
        cap: 2,
        formula: 'max(1, floor(10 x 0.2)) = 2',
      });
      const view = await s.fleet();
      expect(view).toMatchObject({ capInForce: true, capped: [ip(2), ip(4)] });
      expect(s.logged).toContainEqual(
        expect.objectContaining({
          level: 'warn',
          message: expect.stringMatching(/ban cap in force/),
          capped: [ip(2), ip(4)],
        }),
      );
      // Counted by rule and kind, one metric line each (functions/metrics.ts).
      expect(s.logged).toContainEqual(
        expect.objectContaining({ kind: 'ban', BansDecided: 2 }),
      );
      expect(s.logged).toContainEqual(
        expect.objectContaining({ kind: 'capped', CappedBans: 2 }),
      );
      table.push({
        scenario: 'cap in force (4/10 failing, fraction 0.2)',
        expected: `banned 2 worst [${ip(1)}, ${ip(3)}]; 2 capped`,
        observed: `banned [${ipsOf(entries)}]; capped [${view.capped}]; capInForce ${view.capInForce}`,
      });
    } finally {
      await s.stop();
    }
  });
});
