import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_LIMITS } from '../../../../functions/core/heartbeat.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/** Every request's work is bounded: what a request may ask for is clamped or refused, over HTTP. */

const DAY_MS = 86_400_000;

describe('bounded work over HTTP on DynamoDB Local', () => {
  const now = minuteStart(minuteOf(Date.now())) + 20_000;
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    center = await startStatusCenter({
      env: { RELAYWATCH_EVENT_TTL_DAYS: '30' },
      overrides: { now: () => now },
    });
    api = apiClient(center);
  });
  afterAll(async () => center?.stop());

  describe('GET /v1/events', () => {
    it("clamps a since before the events' retention to the retention, and still finds the events", async () => {
      // Reading yesterday's and older day partitions finds nothing; today's has the ban.
      expect(
        (
          await api('PUT', '/v1/bans/192.0.2.200', {
            role: 'admin',
            body: { durationSeconds: 60 },
          })
        ).status,
      ).toBe(201);
      const response = await api('GET', '/v1/events?since=1970-01-01', {
        role: 'reader',
      });
      expect(response.status).toBe(200);
      expect(Date.parse(response.json.since)).toBe(now - 30 * DAY_MS);
      expect(
        response.json.events.map(
          (e: { type: string; ip: string }) => `${e.type} ${e.ip}`,
        ),
      ).toContain('manual_ban 192.0.2.200');
    });

    it('clamps a since far in the future to now and answers only events of this very moment', async () => {
      const response = await api(
        'GET',
        `/v1/events?since=${encodeURIComponent('+010000-01-01T00:00:00Z')}`,
        { role: 'reader' },
      );
      expect(response.status).toBe(200);
      expect(Date.parse(response.json.since)).toBe(now);
      for (const event of response.json.events)
        expect(Date.parse(event.at)).toBe(now);
    });
  });

  describe('distinct origins', () => {
    const beat = (ip: string, n: number) => ({
      ip,
      process: `p-${n}`,
      status: 'ok',
      origin: `rtmp://origin-${n}.example.net/live`,
      ts: now,
    });

    it(`refuses more than ${HEARTBEAT_LIMITS.maxOriginsPerIpMinute} distinct origins of one IP in one minute, naming the first heartbeat past it`, async () => {
      const heartbeats = Array.from(
        { length: HEARTBEAT_LIMITS.maxOriginsPerIpMinute + 1 },
        (_, n) => beat('192.0.2.201', n),
      );
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: { heartbeats },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues).toEqual([
        expect.objectContaining({
          path: `heartbeats.${HEARTBEAT_LIMITS.maxOriginsPerIpMinute}.origin`,
        }),
      ]);
      const state = await api('GET', '/v1/ips/192.0.2.201', { role: 'reader' });
      expect(state.json.minutes[0].relay.ok).toBe(0);
    });

    it(`refuses more than ${HEARTBEAT_LIMITS.maxOriginsPerRequest} distinct origins in one request with 400 on heartbeats`, async () => {
      const heartbeats = Array.from(
        { length: HEARTBEAT_LIMITS.maxOriginsPerRequest + 1 },
        (_, n) => beat(`192.0.2.${n % 3}`, n),
      );
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: { heartbeats },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues.map((i: { path: string }) => i.path)).toEqual(
        ['heartbeats'],
      );
    });

    it('accepts exactly the limit', async () => {
      const heartbeats = Array.from(
        { length: HEARTBEAT_LIMITS.maxOriginsPerIpMinute },
        (_, n) => beat('192.0.2.202', n),
      );
      expect(await postHeartbeats(api, heartbeats)).toBe(202);
      const state = await api('GET', '/v1/ips/192.0.2.202', { role: 'reader' });
      expect(state.json.minutes[0].origins).toBe(
        HEARTBEAT_LIMITS.maxOriginsPerIpMinute,
      );
    });
  });

  describe('POST /_local/run/aggregate', () => {
    it('refuses a time more than a minute ahead of the clock, naming time, and moves no progress', async () => {
      const response = await api('POST', '/_local/run/aggregate', {
        role: 'admin',
        body: { time: '2099-01-01T00:00:00Z' },
      });
      expect(response.status).toBe(400);
      expect(response.json.issues[0].path).toBe('time');
      const fleet = await api('GET', '/v1/fleet', { role: 'reader' });
      expect(fleet.json.aggregatedMinute).toBeNull();
    });

    it('runs for a time up to a minute ahead', async () => {
      const response = await api('POST', '/_local/run/aggregate', {
        role: 'admin',
        body: { time: new Date(now + 60_000).toISOString() },
      });
      expect(response.status).toBe(200);
    });
  });
});
