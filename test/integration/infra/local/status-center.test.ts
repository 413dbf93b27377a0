import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_LIMITS } from '../../../../functions/core/heartbeat.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { keys } from '../../../../functions/store/table.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/** A clock the test moves by hand: minute boundaries without waiting for them. */
function manualClock(start: number) {
  let now = start;
  return {
    now: () => now,
    set: (ms: number) => (now = ms),
    advance: (ms: number) => (now += ms),
  };
}

const FIVE_IPS = [
  '198.51.100.1',
  '198.51.100.2',
  '198.51.100.3',
  '198.51.100.4',
  '198.51.100.5',
];

function heartbeatsOf(
  ip: string,
  status: string,
  count: number,
  ts: number,
  origin = 'rtmp://origin-a.example.net/live',
) {
  return Array.from({ length: count }, (_, i) => ({
    ip,
    process: `ffmpeg-${i}`,
    status,
    origin: `${origin}/s${i}`,
    ts,
  }));
}

describe('the status center over HTTP on DynamoDB Local', () => {
  // The current minute, entered 20 s in; tests move the clock forward from here.
  const minute = minuteOf(Date.now());
  const clock = manualClock(minuteStart(minute) + 20_000);
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    center = await startStatusCenter({ overrides: { now: clock.now } });
    api = apiClient(center);
  });
  afterAll(async () => center?.stop());

  describe('auth by role', () => {
    it('answers 401 when the bearer token is missing', async () => {
      const response = await api('GET', '/v1/blocklist', { role: null });
      expect(response.status).toBe(401);
      expect(response.json.error).toMatch(/bearer token/);
    });

    it('answers 401 to an unknown token', async () => {
      const response = await api('GET', '/v1/blocklist', {
        token: 'not-a-token',
      });
      expect(response.status).toBe(401);
    });

    it('answers 403 to a known token of the wrong role', async () => {
      expect(
        (await api('POST', '/v1/heartbeats', { role: 'reader', body: {} }))
          .status,
      ).toBe(403);
      expect(
        (await api('GET', '/v1/blocklist', { role: 'reporter' })).status,
      ).toBe(403);
      expect(
        (
          await api('PUT', '/v1/bans/192.0.2.1', {
            role: 'reader',
            body: { durationSeconds: 60 },
          })
        ).status,
      ).toBe(403);
    });

    it('lets an admin token read the blocklist', async () => {
      expect(
        (await api('GET', '/v1/blocklist', { role: 'admin' })).status,
      ).toBe(200);
    });
  });

  describe('ingest', () => {
    it('refuses a batch with one bad heartbeat with 400 naming the field, and stores none of it', async () => {
      const ip = '192.0.2.10';
      const good = heartbeatsOf(ip, 'ok', 3, clock.now());
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          heartbeats: [
            ...good,
            { ip: '300.1.2.3', process: 'p', status: 'ok' },
          ],
        },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues).toContainEqual({
        path: 'heartbeats.3.ip',
        message: 'must be an IPv4 or IPv6 address',
      });
      const state = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
      expect(state.json.minutes[0].relay.ok).toBe(0);
    });

    it('names every invalid field of a heartbeat', async () => {
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          ip: '192.0.2.1',
          process: '',
          status: 'broken',
          detail: 'x'.repeat(600),
        },
      });
      expect(response.status).toBe(400);
      expect(
        response.json.issues
          .map((issue: { path: string }) => issue.path)
          .sort(),
      ).toEqual(['detail', 'process', 'status']);
    });

    it('refuses a heartbeat more than 60 s in the future', async () => {
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          ip: '192.0.2.1',
          process: 'p',
          status: 'ok',
          ts: clock.now() + 61_000,
        },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues[0].path).toBe('ts');
    });

    it('refuses more than the batch limit with 400 on heartbeats', async () => {
      const heartbeats = heartbeatsOf(
        '192.0.2.1',
        'ok',
        HEARTBEAT_LIMITS.maxBatch + 1,
        clock.now(),
      );
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: { heartbeats },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues[0].path).toBe('heartbeats');
    });

    it('answers 413 to a body over the size limit', async () => {
      const body = JSON.stringify({
        ip: '192.0.2.1',
        process: 'p',
        status: 'ok',
        pad: 'x'.repeat(HEARTBEAT_LIMITS.maxBodyBytes),
      });
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body,
      });
      expect(response.status).toBe(413);
    });

    it('answers 413 with connection: close to a body over the gateway cap, instead of resetting the connection', async () => {
      const body = Buffer.alloc(12 * 1024 * 1024, 'x');
      const response = await fetch(`${center.url}/v1/heartbeats`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${center.tokens.reporter}`,
          'content-type': 'application/json',
        },
        body,
      });
      expect(response.status).toBe(413);
      expect(response.headers.get('connection')).toBe('close');
      expect(((await response.json()) as { error: string }).error).toMatch(
        /payload over 10485760 bytes/,
      );
    });

    it('answers 413 to a chunked body that grows over the gateway cap', async () => {
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 12) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const response = await fetch(`${center.url}/v1/heartbeats`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${center.tokens.reporter}`,
          'content-type': 'application/json',
        },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expect(response.status).toBe(413);
    });

    it('answers 400 to a body that is not JSON and 415 to a non-JSON content type', async () => {
      expect(
        (
          await api('POST', '/v1/heartbeats', {
            role: 'reporter',
            body: '{"ip":',
          })
        ).status,
      ).toBe(400);
      const wrongType = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: 'ip=1',
        headers: { 'content-type': 'text/plain' },
      });
      expect(wrongType.status).toBe(415);
    });

    it('counts a batch posted twice with the same batchId once', async () => {
      const ip = '192.0.2.20';
      const body = {
        batchId: 'agent-7-seq-42',
        heartbeats: heartbeatsOf(ip, 'ok', 4, clock.now()),
      };
      expect(
        (await api('POST', '/v1/heartbeats', { role: 'reporter', body })).json,
      ).toEqual({ accepted: 4 });
      expect(
        (await api('POST', '/v1/heartbeats', { role: 'reporter', body }))
          .status,
      ).toBe(202);
      const state = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
      expect(state.json.minutes[0].relay.ok).toBe(4);
    });

    it('counts two posts without batchId twice', async () => {
      const ip = '192.0.2.21';
      const body = { heartbeats: heartbeatsOf(ip, 'ok', 2, clock.now()) };
      await api('POST', '/v1/heartbeats', { role: 'reporter', body });
      await api('POST', '/v1/heartbeats', { role: 'reporter', body });
      const state = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
      expect(state.json.minutes[0].relay.ok).toBe(4);
    });

    it('accepts heartbeats of a closed minute but reports them as stale and does not count them', async () => {
      const ip = '192.0.2.22';
      const old = clock.now() - 5 * 60_000;
      const body = {
        heartbeats: [
          ...heartbeatsOf(ip, 'ok', 2, old),
          ...heartbeatsOf(ip, 'ok', 1, clock.now()),
        ],
      };
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body,
      });
      expect(response.status).toBe(202);
      expect(response.json).toEqual({ accepted: 3, stale: 2 });
      const state = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
      const total = state.json.minutes.reduce(
        (sum: number, m: { relay: { ok: number } }) => sum + m.relay.ok,
        0,
      );
      expect(total).toBe(1);
    });

    it('keys an IPv6 address by its canonical spelling', async () => {
      await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          ip: '2001:DB8:0:0::7',
          process: 'p',
          status: 'ok',
          ts: clock.now(),
        },
      });
      const state = await api('GET', '/v1/ips/2001:db8::7', { role: 'reader' });
      expect(state.json.ip).toBe('2001:db8::7');
      expect(state.json.minutes[0].relay.ok).toBe(1);
    });
  });

  describe('aggregation and the blocklist', () => {
    it('bans exactly the one IP of five whose relays all fail to connect', async () => {
      const ts = clock.now();
      for (const ip of FIVE_IPS) {
        const status = ip === '198.51.100.5' ? 'connect_failed' : 'ok';
        const response = await api('POST', '/v1/heartbeats', {
          role: 'reporter',
          body: { heartbeats: heartbeatsOf(ip, status, 12, ts) },
        });
        expect(response.status).toBe(202);
      }
      // The minute closes at its end plus the 10 s grace; the run comes after.
      clock.set(minuteStart(minute + 1) + 15_000);
      await center.aggregate(new Date(clock.now()).toISOString());
      const blocklist = await api('GET', '/v1/blocklist', { role: 'reader' });
      expect(blocklist.status).toBe(200);
      expect(blocklist.json.entries.map((e: { ip: string }) => e.ip)).toEqual([
        '198.51.100.5',
      ]);
      const [entry] = blocklist.json.entries;
      expect(entry).toMatchObject({ manual: false, failRatio: 1, samples: 12 });
      expect(Date.parse(entry.until) - Date.parse(entry.since)).toBe(3600_000);
    });

    it('changes nothing when the same minute is aggregated again', async () => {
      const before = await api('GET', '/v1/blocklist', { role: 'reader' });
      const summary = (await center.aggregate(
        new Date(clock.now()).toISOString(),
      )) as { minutes: string[] };
      expect(summary.minutes).toEqual([]);
      const after = await api('GET', '/v1/blocklist', { role: 'reader' });
      expect(after.json.entries).toEqual(before.json.entries);
      expect(after.headers.get('etag')).toBe(before.headers.get('etag'));
    });

    it('shows the ban and the counts in GET /v1/ips/{ip}', async () => {
      const state = await api('GET', '/v1/ips/198.51.100.5', {
        role: 'reader',
      });
      expect(state.json.banned).toBe(true);
      expect(state.json.ban).toMatchObject({
        ip: '198.51.100.5',
        manual: false,
        offense: 1,
      });
      const counted = state.json.minutes.find(
        (m: { relay: { connect_failed: number } }) =>
          m.relay.connect_failed > 0,
      );
      expect(counted.relay.connect_failed).toBe(12);
    });

    it('answers 304 to If-None-Match with the current ETag, and 200 once the list changed', async () => {
      const first = await api('GET', '/v1/blocklist', { role: 'reader' });
      const etag = first.headers.get('etag') ?? '';
      expect(etag).toMatch(/^".+"$/);
      const again = await api('GET', '/v1/blocklist', {
        role: 'reader',
        headers: { 'if-none-match': etag },
      });
      expect(again.status).toBe(304);
      expect(again.text).toBe('');
      await api('PUT', '/v1/bans/192.0.2.99', {
        role: 'admin',
        body: { durationSeconds: 600, reason: 'maintenance' },
      });
      const changed = await api('GET', '/v1/blocklist', {
        role: 'reader',
        headers: { 'if-none-match': etag },
      });
      expect(changed.status).toBe(200);
      expect(changed.headers.get('etag')).not.toBe(etag);
    });

    it('catches up on minutes it missed when a run comes late', async () => {
      const start = minute + 1;
      // Two later minutes in which a second IP fails, and no run in between.
      for (const m of [start, start + 1]) {
        clock.set(minuteStart(m) + 30_000);
        for (const ip of FIVE_IPS.slice(0, 4)) {
          const status = ip === '198.51.100.4' ? 'connect_failed' : 'ok';
          await api('POST', '/v1/heartbeats', {
            role: 'reporter',
            body: { heartbeats: heartbeatsOf(ip, status, 12, clock.now()) },
          });
        }
      }
      clock.set(minuteStart(start + 2) + 20_000);
      const summary = (await center.aggregate(
        new Date(clock.now()).toISOString(),
      )) as { minutes: string[] };
      expect(summary.minutes).toHaveLength(2);
      const blocklist = await api('GET', '/v1/blocklist', { role: 'reader' });
      expect(blocklist.json.entries.map((e: { ip: string }) => e.ip)).toContain(
        '198.51.100.4',
      );
    });
  });

  describe('manual bans', () => {
    it('validates the ban body and names the field', async () => {
      const response = await api('PUT', '/v1/bans/192.0.2.50', {
        role: 'admin',
        body: { durationSeconds: -5 },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues[0].path).toBe('durationSeconds');
    });

    it('answers 201 for a new ban, 200 when it replaces one, 204 on lift and 404 when none is in force', async () => {
      expect(
        (
          await api('PUT', '/v1/bans/192.0.2.51', {
            role: 'admin',
            body: { durationSeconds: 60 },
          })
        ).status,
      ).toBe(201);
      expect(
        (
          await api('PUT', '/v1/bans/192.0.2.51', {
            role: 'admin',
            body: { durationSeconds: 120 },
          })
        ).status,
      ).toBe(200);
      expect(
        (await api('DELETE', '/v1/bans/192.0.2.51', { role: 'admin' })).status,
      ).toBe(204);
      expect(
        (await api('DELETE', '/v1/bans/192.0.2.51', { role: 'admin' })).status,
      ).toBe(404);
    });

    it('answers 400 naming the ip for a path that is not an address', async () => {
      const response = await api('PUT', '/v1/bans/not-an-ip', {
        role: 'admin',
        body: { durationSeconds: 60 },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues[0].path).toBe('ip');
    });
  });
});

describe('a short manual ban on the real clock', () => {
  let center: TestStatusCenter;
  beforeAll(async () => {
    center = await startStatusCenter({ ownDynamoDb: true });
  });
  afterAll(async () => center?.stop());

  it('leaves the blocklist when it ends, and DynamoDB TTL deletes the item shortly after', async () => {
    const api = apiClient(center);
    const put = await api('PUT', '/v1/bans/203.0.113.77', {
      role: 'admin',
      body: { durationSeconds: 10, reason: 'ttl test' },
    });
    expect(put.status).toBe(201);
    const until = Date.parse(put.json.until);
    const listed = await api('GET', '/v1/blocklist', { role: 'reader' });
    // A loaded machine may answer after the ban's end: the list then must
    // already be empty, so the answer's own time decides what is expected.
    expect(listed.json.entries.map((e: { ip: string }) => e.ip)).toEqual(
      Date.parse(listed.json.generatedAt) < until ? ['203.0.113.77'] : [],
    );

    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, until - Date.now()) + 50),
    );
    const afterEnd = await api('GET', '/v1/blocklist', { role: 'reader' });
    expect(afterEnd.json.entries).toEqual([]);

    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: center.dynamodbEndpoint,
    });
    const key = { pk: keys.banPartition(), sk: keys.ban('203.0.113.77') };
    let item: unknown = {};
    for (let attempt = 0; attempt < 90 && item; attempt++) {
      item = (
        await client.send(
          new GetCommand({ TableName: center.tableName, Key: key }),
        )
      ).Item;
      if (item) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(item).toBeUndefined();

    // The TTL delete reaches the stream consumer, which records the ban's end.
    let types: string[] = [];
    for (
      let attempt = 0;
      attempt < 20 && !types.includes('expiry');
      attempt++
    ) {
      const events = await api('GET', '/v1/events?ip=203.0.113.77', {
        role: 'reader',
      });
      types = events.json.events.map((e: { type: string }) => e.type);
      if (!types.includes('expiry'))
        await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(types).toEqual(['expiry', 'manual_ban']);
  }, 150_000);
});
