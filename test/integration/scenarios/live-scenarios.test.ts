import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../functions/core/minutes.js';
import type { TestStatusCenter } from '../../helpers/status-center.js';
import { apiClient, startStatusCenter } from '../../helpers/status-center.js';

/**
 * Live decisions and silence, told over HTTP against a status center on
 * DynamoDB Local: ten relay machines whose agents declare a 60 s report
 * interval (a lease), 12 relays over three origins and 4 canary probes each.
 * A manual clock; every aggregation call is one pass at the clock's time, as
 * the scheduled run makes every RELAYWATCH_PASS_SECONDS.
 */

const FLEET = Array.from({ length: 10 }, (_, i) => `203.0.113.${i + 41}`);
const ip = (n: number) => FLEET[n - 1]!;
const ORIGINS = [
  'rtmp://origin-a.example.net/live',
  'rtmp://origin-b.example.net/live',
  'https://origin-c.example.net/hls',
];
const CANARY = 'tcp://canary.example.net:443';
const S = 1000;

type Status = 'ok' | 'connect_failed';
type Row = { scenario: string; observed: string };
const table: Row[] = [];

/** A status picker for reports(): machine n reports `status` (none: it stays silent), every other one ok. */
const allOkBut =
  (n: number, status?: Status) =>
  (address: string): Status | undefined =>
    address === ip(n) ? status : 'ok';

/** The status centers of the running test's worlds, stopped after it. */
const started: Array<{ stop(): Promise<void> }> = [];

async function world(env: Record<string, string> = {}) {
  const m = minuteOf(Date.now()) + 1;
  let now = minuteStart(m);
  // What happens while the run sleeps between its passes: each hook runs once the clock reaches its time.
  const during: Array<{ at: number; run: () => Promise<unknown> }> = [];
  const sleep = async (ms: number) => {
    const until = now + ms;
    for (const hook of during
      .filter((h) => h.at <= until)
      .sort((a, b) => a.at - b.at)) {
      during.splice(during.indexOf(hook), 1);
      now = Math.max(now, hook.at);
      await hook.run();
    }
    now = until;
  };
  const center: TestStatusCenter = await startStatusCenter({
    env,
    overrides: { now: () => now, sleep },
  });
  started.push(center);
  const api = apiClient(center);
  let sequence = 0;

  /** One agent report of `address` at `at` (its heartbeats observed at `observedAt`). */
  async function report(
    address: string,
    at: number,
    status: Status,
    options: { lease?: number | null; observedAt?: number } = {},
  ) {
    now = at;
    const ts = options.observedAt ?? at;
    const heartbeats = [
      ...Array.from({ length: 12 }, (_, n) => ({
        ip: address,
        process: `ffmpeg-${n}`,
        kind: 'relay',
        status,
        origin: `${ORIGINS[n % 3]}/s-${n}`,
        ts,
      })),
      ...Array.from({ length: 4 }, (_, n) => ({
        ip: address,
        process: `probe-${n}`,
        kind: 'probe',
        status,
        origin: CANARY,
        ts,
      })),
    ];
    const lease = options.lease === undefined ? 60 : options.lease;
    const body = {
      batchId: `${address}-${sequence++}`,
      heartbeats,
      ...(lease === null ? {} : { reportIntervalSeconds: lease }),
    };
    const response = await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body,
    });
    expect(response.status).toBe(202);
  }
  /** Every machine `statusOf` names reports at `at`. */
  async function reports(
    at: number,
    statusOf: (address: string) => Status | undefined = () => 'ok',
  ) {
    for (const address of FLEET) {
      const status = statusOf(address);
      if (status) await report(address, at, status);
    }
  }
  async function pass(at: number) {
    now = at;
    return (await center.aggregate(new Date(at).toISOString())) as {
      minutes: string[];
      passes: string[];
    };
  }
  const blocklist = async () =>
    (await api('GET', '/v1/blocklist', { role: 'reader' })).json
      .entries as Array<{ ip: string; since: string; reason: string }>;
  const events = async (query = '') =>
    (await api('GET', `/v1/events${query}`, { role: 'reader' })).json
      .events as Array<{
      type: string;
      ip?: string;
      rule?: string;
      minute?: string;
      evidence: any;
    }>;
  const at = (minute: number, second: number) =>
    minuteStart(m + minute) + second * S;
  const post = async (time: number, body: unknown) => {
    now = time;
    return api('POST', '/v1/heartbeats', { role: 'reporter', body });
  };
  return {
    m,
    at,
    during,
    report,
    reports,
    post,
    pass,
    blocklist,
    events,
    fleet: async () => (await api('GET', '/v1/fleet', { role: 'reader' })).json,
  };
}

const trail = (entries: Array<{ type: string; ip?: string; rule?: string }>) =>
  entries.map(
    (e) => `${e.type}${e.ip ? ` ${e.ip}` : ''}${e.rule ? ` (${e.rule})` : ''}`,
  );

describe('live decisions and silence over HTTP on DynamoDB Local', () => {
  afterEach(async () => {
    await Promise.all(started.splice(0).map((center) => center.stop()));
  });
  afterAll(() => {
    console.log(
      [
        '| scenario | observed |',
        '|---|---|',
        ...table.map((r) => `| ${r.scenario} | ${r.observed} |`),
      ].join('\n'),
    );
  });

  it('decides evidence that arrives mid-minute at the next pass, long before the minute closes', async () => {
    const w = await world();
    await w.reports(w.at(0, 5), allOkBut(7, 'connect_failed'));
    expect(await w.blocklist()).toEqual([]);
    await w.pass(w.at(0, 15));

    const [entry, ...rest] = await w.blocklist();
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({
      ip: ip(7),
      since: new Date(w.at(0, 15)).toISOString(),
    });
    const events = await w.events(`?ip=${ip(7)}`);
    expect(trail(events)).toEqual([`ban ${ip(7)} (fail-ratio)`]);
    // A later pass and the minute's own close change nothing.
    await w.pass(w.at(1, 15));
    expect(trail(await w.events(`?ip=${ip(7)}`))).toEqual([
      `ban ${ip(7)} (fail-ratio)`,
    ]);
    table.push({
      scenario: 'evidence at :05, pass at :15',
      observed: `banned at +10 s after the evidence (minute closes at +65 s); events ${trail(events)}`,
    });
  });

  it('passes every 10 s through its minute in one scheduled run, so evidence posted at second 5 is a ban at second 10', async () => {
    const w = await world({ RELAYWATCH_AGGREGATE_WAITS: 'true' });
    w.during.push({
      at: w.at(0, 5),
      run: () => w.reports(w.at(0, 5), allOkBut(7, 'connect_failed')),
    });
    const summary = (await w.pass(w.at(0, 0))) as unknown as {
      passes: string[];
      waitedMs: number;
      decisions: Array<{ type: string; ip?: string; at: string }>;
    };

    expect(summary.passes).toEqual(
      [0, 10, 20, 30, 40, 50].map((second) =>
        new Date(w.at(0, second)).toISOString(),
      ),
    );
    expect(summary.waitedMs).toBe(50_000);
    expect(summary.decisions).toEqual([
      expect.objectContaining({
        type: 'ban',
        ip: ip(7),
        at: new Date(w.at(0, 10)).toISOString(),
      }),
    ]);
    expect((await w.blocklist()).map((e) => [e.ip, e.since])).toEqual([
      [ip(7), new Date(w.at(0, 10)).toISOString()],
    ]);
    table.push({
      scenario: 'one run, passes every 10 s; evidence at :05',
      observed: `passes at :00..:50; banned at :10 (5 s after the evidence)`,
    });
  });

  it('bans a machine that stops reporting while relaying, once two intervals and the grace have passed', async () => {
    const w = await world();
    await w.reports(w.at(0, 30));
    await w.pass(w.at(0, 40));
    for (const minute of [1, 2]) {
      await w.reports(w.at(minute, 30), allOkBut(7));
      await w.pass(w.at(minute, 35));
    }
    expect(await w.blocklist()).toEqual([]); // 125 s of silence: not yet
    await w.pass(w.at(2, 45)); // 135 s

    const entries = await w.blocklist();
    expect(entries.map((e) => e.ip)).toEqual([ip(7)]);
    expect(entries[0]!.reason).toMatch(
      /^silent for 135 s \(report interval 60 s; limit 2 x 60 s \+ 10 s grace\)/,
    );
    const events = await w.events(`?ip=${ip(7)}`);
    expect(trail(events)).toEqual([`ban ${ip(7)} (silent)`]);
    expect(events[0]!.evidence.silence).toMatchObject({
      intervalSeconds: 60,
      silentSeconds: 135,
    });
    table.push({
      scenario: 'one machine silent (lease 60 s)',
      observed: `not banned at 125 s, banned at 135 s: ${entries[0]!.reason}`,
    });
  });

  it('bans nobody when the whole fleet goes silent (a status-center outage), records fleet_silence, and bans nobody after', async () => {
    const w = await world();
    await w.reports(w.at(0, 30));
    await w.pass(w.at(0, 40));
    // Reports stop reaching the status center; its scheduled passes go on.
    for (const second of [45, 55]) await w.pass(w.at(1, second));
    for (const second of [15, 45]) await w.pass(w.at(2, second));
    await w.pass(w.at(3, 45));
    expect(await w.blocklist()).toEqual([]);
    expect(trail(await w.events())).toEqual(['fleet_silence (silent)']);
    expect((await w.fleet()).fleetSilence).toBe(true);

    // The outage ends: nine agents get through at once, the tenth 20 s later.
    await w.reports(w.at(4, 30), allOkBut(10));
    await w.pass(w.at(4, 35));
    await w.reports(w.at(4, 50), (a) => (a === ip(10) ? 'ok' : undefined));
    await w.pass(w.at(4, 55));
    for (const minute of [5, 6]) {
      await w.reports(w.at(minute, 30));
      await w.pass(w.at(minute, 45));
    }
    expect(await w.blocklist()).toEqual([]);
    const all = trail(await w.events());
    expect(all.sort()).toEqual([
      'fleet_silence (silent)',
      'fleet_silence_recovered (silent)',
    ]);
    table.push({
      scenario: 'whole fleet silent for 4 min, then back',
      observed: `banned []; events ${all}`,
    });
  });

  it('releases a silent-banned machine at the first pass after it reports healthy, and its late backlog bans nothing', async () => {
    const w = await world();
    await w.reports(w.at(0, 30));
    await w.pass(w.at(0, 40));
    for (const minute of [1, 2]) {
      await w.reports(w.at(minute, 30), allOkBut(7));
      await w.pass(w.at(minute, 35));
    }
    await w.pass(w.at(2, 45));
    expect((await w.blocklist()).map((e) => e.ip)).toEqual([ip(7)]);

    // Repaired at 3:05: the agent first delivers what it buffered while cut off
    // (failures observed at 2:30, late), and a pass runs before its current report.
    // The last buffered report was observed 2 s before the repair: fresh, yet backlog.
    await w.report(ip(7), w.at(3, 5), 'connect_failed', {
      observedAt: w.at(2, 30),
    });
    await w.report(ip(7), w.at(3, 5), 'connect_failed', {
      observedAt: w.at(3, 3),
    });
    await w.pass(w.at(3, 6));
    expect((await w.blocklist()).map((e) => e.ip)).toEqual([ip(7)]);
    await w.report(ip(7), w.at(3, 7), 'ok');
    await w.pass(w.at(3, 15));
    expect(await w.blocklist()).toEqual([]);
    // The minute of the backlog, closed by that pass: its failures are shown as late, counted against nobody.
    const view = await w.fleet();
    expect(
      view.reporting.find((e: { ip: string }) => e.ip === ip(7)),
    ).toMatchObject({ lateFailures: 16, connectFailed: 0 });

    // Passes that still see the backlog in their window ban nothing.
    await w.reports(w.at(3, 30), allOkBut(7));
    for (const second of [25, 35, 45]) await w.pass(w.at(3, second));
    await w.pass(w.at(4, 15));
    expect(await w.blocklist()).toEqual([]);
    const events = await w.events(`?ip=${ip(7)}`);
    expect(trail(events)).toEqual([
      `release ${ip(7)} (reported-healthy)`,
      `ban ${ip(7)} (silent)`,
    ]);
    table.push({
      scenario: 'silent-banned, repaired, backlog then healthy report',
      observed: `still banned after the backlog, released 8 s after the healthy report; events ${trail(events).reverse()}`,
    });
  });

  it('never bans an idle machine whose agent renews its lease with empty reports', async () => {
    const w = await world();
    await w.reports(w.at(0, 30));
    await w.pass(w.at(0, 40));
    for (const minute of [1, 2, 3, 4]) {
      await w.reports(w.at(minute, 30), allOkBut(7));
      // Its last job ended: nothing to relay or probe, so it only renews its lease.
      const renewal = {
        ip: ip(7),
        reportIntervalSeconds: 60,
        heartbeats: [],
      };
      expect((await w.post(w.at(minute, 31), renewal)).status).toBe(202);
      await w.pass(w.at(minute, 45));
    }
    expect(await w.blocklist()).toEqual([]);
    expect(await w.events(`?ip=${ip(7)}`)).toEqual([]);
    // Once it stops renewing too, its last report ran nothing: still never banned for silence.
    for (const minute of [5, 6, 7]) {
      await w.reports(w.at(minute, 30), allOkBut(7));
      await w.pass(w.at(minute, 45));
    }
    expect(await w.blocklist()).toEqual([]);
    table.push({
      scenario: 'idle machine renewing its lease, then gone',
      observed: 'banned []; no events',
    });
  });

  it('never bans a machine for silence when its agent declared no report interval (an older agent)', async () => {
    const w = await world();
    await w.report(ip(7), w.at(0, 30), 'ok', { lease: null });
    await w.reports(w.at(0, 30), allOkBut(7));
    await w.pass(w.at(0, 40));
    for (const minute of [1, 2, 3, 4]) {
      await w.reports(w.at(minute, 30), allOkBut(7));
      await w.pass(w.at(minute, 45));
    }
    expect(await w.blocklist()).toEqual([]);
    expect(await w.events(`?ip=${ip(7)}`)).toEqual([]);
    table.push({
      scenario: 'older agent (no interval) silent 4 min',
      observed: 'banned []; no events',
    });
  });
});
