import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * Per-machine reporter tokens over HTTP on DynamoDB Local: a token speaks for
 * its own machine only, and the abuse of issue 10 (one machine's credential
 * framing, shielding or diluting others) is refused when every machine has
 * its own token.
 */

function manualClock(start: number) {
  let now = start;
  return { now: () => now, set: (ms: number) => (now = ms) };
}

const ORIGINS = [
  'rtmp://origin-a.example.net/live',
  'rtmp://origin-b.example.net/live',
  'https://origin-c.example.net/hls',
];
type Status = 'ok' | 'connect_failed';

function beats(
  ip: string,
  status: Status | ((n: number) => Status),
  count: number,
  ts: number,
  origin?: string,
) {
  return Array.from({ length: count }, (_, n) => ({
    ip,
    process: `ffmpeg-${n}`,
    status: typeof status === 'function' ? status(n) : status,
    origin: origin ?? `${ORIGINS[n % ORIGINS.length]}/s${n}`,
    ts,
  }));
}

/** A center with a manual clock and a machine token for each of `ips`, issued over the API. */
async function fleetCenter(ips: readonly string[]) {
  const clock = manualClock(minuteStart(minuteOf(Date.now())) + 5_000);
  const center: TestStatusCenter = await startStatusCenter({
    env: { RELAYWATCH_CREDENTIAL_CACHE_SECONDS: '0' },
    overrides: { now: clock.now },
  });
  const api = apiClient(center);
  const tokens: Record<string, string> = {};
  for (const ip of ips) {
    const issued = await api('POST', '/v1/reporter-tokens', {
      role: 'admin',
      body: { ip },
    });
    expect(issued.status).toBe(201);
    tokens[ip] = issued.json.token;
  }
  const post = (token: string, heartbeats: object[]) =>
    api('POST', '/v1/heartbeats', { token, body: { heartbeats } });
  /** Every machine reports minute `m` for itself with its own token; `statusOf` picks each one's status. */
  async function honestMinute(m: number, statusOf: (ip: string) => Status) {
    clock.set(minuteStart(m) + 30_000);
    for (const ip of ips)
      expect(
        (await post(tokens[ip]!, beats(ip, statusOf(ip), 12, clock.now())))
          .status,
      ).toBe(202);
  }
  async function aggregate(m: number) {
    clock.set(minuteStart(m + 1) + 15_000);
    await center.aggregate(new Date(clock.now()).toISOString());
    return (
      (await api('GET', '/v1/blocklist', { role: 'reader' })).json.entries as {
        ip: string;
      }[]
    )
      .map((e) => e.ip)
      .sort();
  }
  const relayCounts = async (ip: string, m: number) =>
    (await api('GET', `/v1/ips/${ip}`, { role: 'reader' })).json.minutes.find(
      (entry: { start: string }) => Date.parse(entry.start) === minuteStart(m),
    ).relay;
  return {
    clock,
    center,
    api,
    tokens,
    post,
    honestMinute,
    aggregate,
    relayCounts,
    first: minuteOf(clock.now()),
  };
}

const FLEET = [
  '203.0.113.21',
  '203.0.113.22',
  '203.0.113.23',
  '203.0.113.24',
  '203.0.113.25',
  '203.0.113.26',
];
const [ATTACKER, VICTIM, BROKEN] = FLEET as [string, string, string];
const madeUp = (count: number) =>
  Array.from(
    { length: count },
    (_, i) => `198.18.${Math.floor(i / 200)}.${(i % 200) + 1}`,
  );

describe('per-machine reporter tokens', () => {
  let f: Awaited<ReturnType<typeof fleetCenter>>;
  beforeAll(async () => {
    f = await fleetCenter(FLEET);
  });
  afterAll(async () => f?.center.stop());

  it('are issued to admins only, as 201 {ip, token} with the IP in canonical form', async () => {
    const issued = await f.api('POST', '/v1/reporter-tokens', {
      role: 'admin',
      body: { ip: '2001:DB8:0:0::9' },
    });
    expect(issued.status).toBe(201);
    expect(issued.json).toEqual({
      ip: '2001:db8::9',
      token: expect.stringMatching(/^rwm1\./),
    });
    expect(
      (
        await f.api('POST', '/v1/reporter-tokens', {
          role: 'reader',
          body: { ip: '192.0.2.1' },
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await f.api('POST', '/v1/reporter-tokens', {
          role: 'reporter',
          body: { ip: '192.0.2.1' },
        })
      ).status,
    ).toBe(403);
    const bad = await f.api('POST', '/v1/reporter-tokens', {
      role: 'admin',
      body: { ip: '300.1.2.3' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.issues[0].path).toBe('ip');
  });

  it('records who issued a token in the events, and never the token', async () => {
    const events = await f.api('GET', `/v1/events?ip=${ATTACKER}`, {
      role: 'reader',
    });
    const issued = events.json.events.find(
      (e: { type: string }) => e.type === 'reporter_token_issued',
    );
    expect(issued.actor).toMatch(/^admin:[0-9a-f]{12}$/);
    expect(events.text).not.toContain(f.tokens[ATTACKER]!);
  });

  it('report their own machine, in any spelling of its IP', async () => {
    const m = f.first;
    f.clock.set(minuteStart(m) + 20_000);
    const own = await f.post(
      f.tokens[ATTACKER]!,
      beats(ATTACKER, 'ok', 2, f.clock.now()),
    );
    expect(own.status).toBe(202);
    const mapped = await f.post(
      f.tokens[ATTACKER]!,
      beats(`::ffff:${ATTACKER}`, 'ok', 1, f.clock.now()),
    );
    expect(mapped.status).toBe(202);
    expect((await f.relayCounts(ATTACKER, m)).ok).toBe(3);
  });

  it('answer 403 naming heartbeats.N.ip to a heartbeat of another IP, and store nothing of the request', async () => {
    const m = f.first;
    const before = {
      own: (await f.relayCounts(ATTACKER, m)).ok,
      victim: (await f.relayCounts(VICTIM, m)).connect_failed,
    };
    const forged = [
      ...beats(ATTACKER, 'ok', 1, f.clock.now()),
      ...beats(VICTIM, 'connect_failed', 2, f.clock.now()),
    ];
    const response = await f.post(f.tokens[ATTACKER]!, forged);
    expect(response.status).toBe(403);
    expect(response.json.issues.map((i: { path: string }) => i.path)).toEqual([
      'heartbeats.1.ip',
      'heartbeats.2.ip',
    ]);
    const envelope = await f.api('POST', '/v1/heartbeats', {
      token: f.tokens[ATTACKER]!,
      body: { ip: VICTIM, heartbeats: beats(ATTACKER, 'ok', 1, f.clock.now()) },
    });
    expect(envelope.status).toBe(403);
    expect(envelope.json.issues.map((i: { path: string }) => i.path)).toEqual([
      'ip',
    ]);
    const single = await f.api('POST', '/v1/heartbeats', {
      token: f.tokens[ATTACKER]!,
      body: beats(VICTIM, 'ok', 1, f.clock.now())[0],
    });
    expect(single.status).toBe(403);
    expect(single.json.issues[0].path).toBe('ip');
    expect((await f.relayCounts(ATTACKER, m)).ok).toBe(before.own);
    expect((await f.relayCounts(VICTIM, m)).connect_failed).toBe(before.victim);
  });

  it('are refused on routes of other roles with 403', async () => {
    expect(
      (await f.api('GET', '/v1/blocklist', { token: f.tokens[ATTACKER]! }))
        .status,
    ).toBe(403);
    expect(
      (
        await f.api('PUT', `/v1/bans/${VICTIM}`, {
          token: f.tokens[ATTACKER]!,
          body: { durationSeconds: 60 },
        })
      ).status,
    ).toBe(403);
  });

  it('stop working once revoked, while a token issued after the revocation works', async () => {
    const ip = FLEET[5]!;
    const old = f.tokens[ip]!;
    f.clock.set(f.clock.now() + 1_000);
    const revoke = await f.api('DELETE', `/v1/reporter-tokens/${ip}`, {
      role: 'admin',
    });
    expect(revoke.status).toBe(204);
    expect((await f.post(old, beats(ip, 'ok', 1, f.clock.now()))).status).toBe(
      401,
    );
    f.clock.set(f.clock.now() + 1_000);
    const reissued = await f.api('POST', '/v1/reporter-tokens', {
      role: 'admin',
      body: { ip },
    });
    expect(
      (await f.post(reissued.json.token, beats(ip, 'ok', 1, f.clock.now())))
        .status,
    ).toBe(202);
    f.tokens[ip] = reissued.json.token;
    const events = await f.api('GET', `/v1/events?ip=${ip}`, {
      role: 'reader',
    });
    const revoked = events.json.events.find(
      (e: { type: string }) => e.type === 'reporter_token_revoked',
    );
    expect(revoked.actor).toMatch(/^admin:[0-9a-f]{12}$/);
  });

  it('refuse a forged token with 401', async () => {
    const forged = f.tokens[ATTACKER]!.replace(/.$/, (c) =>
      c === 'A' ? 'B' : 'A',
    );
    expect(
      (await f.post(forged, beats(ATTACKER, 'ok', 1, f.clock.now()))).status,
    ).toBe(401);
  });
});

describe('the abuse of one machine credential (issue 10), refused when each machine has its own token', () => {
  it('cannot frame a healthy machine: its forged failures get 403 and nobody is banned', async () => {
    const f = await fleetCenter(FLEET);
    try {
      const m = f.first + 1;
      await f.honestMinute(m, () => 'ok');
      const frame = await f.post(
        f.tokens[ATTACKER]!,
        beats(VICTIM, 'connect_failed', 25, f.clock.now()),
      );
      expect(frame.status).toBe(403);
      const never = await f.post(
        f.tokens[ATTACKER]!,
        beats('203.0.113.99', 'connect_failed', 25, f.clock.now()),
      );
      expect(never.status).toBe(403);
      expect(await f.aggregate(m)).toEqual([]);

      // Control: the fleet-wide token is unbound, and the same forgery bans the victim (why it is for trials only).
      await f.honestMinute(m + 1, () => 'ok');
      const unbound = await f.api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          heartbeats: beats(VICTIM, 'connect_failed', 25, f.clock.now()),
        },
      });
      expect(unbound.status).toBe(202);
      expect(await f.aggregate(m + 1)).toEqual([VICTIM]);
    } finally {
      await f.center.stop();
    }
  });

  it('cannot shield a broken machine: its forged ok heartbeats get 403 and the machine is banned', async () => {
    const f = await fleetCenter(FLEET);
    try {
      const m = f.first + 1;
      await f.honestMinute(m, (ip) =>
        ip === BROKEN ? 'connect_failed' : 'ok',
      );
      const shield = await f.post(
        f.tokens[ATTACKER]!,
        beats(BROKEN, 'ok', 16, f.clock.now()),
      );
      expect(shield.status).toBe(403);
      expect(await f.aggregate(m)).toEqual([BROKEN]);
    } finally {
      await f.center.stop();
    }
  });

  it('cannot dilute with made-up IPs: neither invent an origin outage that excuses a broken machine nor undo a fleet-wide fault', async () => {
    const f = await fleetCenter(FLEET);
    try {
      // An origin outage made of six made-up IPs would excuse the broken machine's failures on origin A.
      const m = f.first + 1;
      f.clock.set(minuteStart(m) + 30_000);
      for (const ip of FLEET) {
        const status = ip === BROKEN ? 'connect_failed' : 'ok';
        expect(
          (
            await f.post(
              f.tokens[ip]!,
              beats(ip, status, 12, f.clock.now(), `${ORIGINS[0]}/x`),
            )
          ).status,
        ).toBe(202);
      }
      const outage = madeUp(6).flatMap((ip) =>
        beats(ip, 'connect_failed', 4, f.clock.now(), `${ORIGINS[0]}/x`),
      );
      expect((await f.post(f.tokens[ATTACKER]!, outage)).status).toBe(403);
      expect(await f.aggregate(m)).toEqual([BROKEN]);

      // A fleet-wide fault (every machine failing) bans nobody; 40 made-up healthy IPs must not turn it into bans.
      const next = m + 1;
      await f.honestMinute(next, () => 'connect_failed');
      const healthy = madeUp(40).flatMap((ip) =>
        beats(ip, 'ok', 12, f.clock.now()),
      );
      expect(
        (await f.post(f.tokens[ATTACKER]!, healthy.slice(0, 480))).status,
      ).toBe(403);
      expect(await f.aggregate(next)).toEqual([BROKEN]);
      const fleet = await f.api('GET', '/v1/fleet', { role: 'reader' });
      expect(fleet.json.fleetWideFailure).toBe(true);
    } finally {
      await f.center.stop();
    }
  });
});
