import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/** A batchId names one content, received once: retries count once, reuse for other content is refused. */

describe('batch identity over HTTP on DynamoDB Local', () => {
  const minute = minuteOf(Date.now());
  let now = minuteStart(minute) + 50_000;
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    center = await startStatusCenter({ overrides: { now: () => now } });
    api = apiClient(center);
  });
  afterAll(async () => center?.stop());

  const beats = (ip: string, count: number, status = 'ok') =>
    Array.from({ length: count }, (_, n) => ({
      ip,
      process: `ffmpeg-${n}`,
      status,
      origin: 'rtmp://origin-a.example.net/live',
    }));
  const okIn = async (ip: string, m: number) =>
    (await api('GET', `/v1/ips/${ip}`, { role: 'reader' })).json.minutes.find(
      (entry: { start: string }) => Date.parse(entry.start) === minuteStart(m),
    ).relay.ok as number;

  it('counts a batch without ts once when its retry comes in the next minute, in the minute it first arrived', async () => {
    const ip = '192.0.2.60';
    const body = { batchId: 'agent-1-seq-1', heartbeats: beats(ip, 4) };
    now = minuteStart(minute) + 50_000;
    expect(
      (await api('POST', '/v1/heartbeats', { role: 'reporter', body })).status,
    ).toBe(202);
    // The retry arrives 5 s into the next minute, inside the first minute's grace.
    now = minuteStart(minute + 1) + 5_000;
    expect(
      (await api('POST', '/v1/heartbeats', { role: 'reporter', body })).json,
    ).toEqual({ accepted: 4 });
    expect(await okIn(ip, minute)).toBe(4);
    expect(await okIn(ip, minute + 1)).toBe(0);
  });

  it('answers 409 naming batchId when a used batchId comes with other heartbeats, and keeps the first', async () => {
    const ip = '192.0.2.61';
    now = minuteStart(minute + 1) + 20_000;
    expect(
      (
        await api('POST', '/v1/heartbeats', {
          role: 'reporter',
          body: { batchId: 'agent-1-seq-2', heartbeats: beats(ip, 3) },
        })
      ).status,
    ).toBe(202);
    const reused = await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body: {
        batchId: 'agent-1-seq-2',
        heartbeats: beats(ip, 5, 'connect_failed'),
      },
    });
    expect(reused.status).toBe(409);
    expect(reused.json.issues[0].path).toBe('batchId');
    const state = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
    expect(state.json.minutes[0].relay).toMatchObject({
      ok: 3,
      connect_failed: 0,
    });
  });

  it('keeps batchIds of different machine tokens apart', async () => {
    now = minuteStart(minute + 1) + 25_000;
    const tokenOf = async (ip: string) =>
      (
        await api('POST', '/v1/reporter-tokens', {
          role: 'admin',
          body: { ip },
        })
      ).json.token as string;
    const [a, b] = [await tokenOf('192.0.2.62'), await tokenOf('192.0.2.63')];
    const post = (token: string, ip: string) =>
      api('POST', '/v1/heartbeats', {
        token,
        body: { batchId: 'seq-1', heartbeats: beats(ip, 2) },
      });
    expect((await post(a, '192.0.2.62')).status).toBe(202);
    expect((await post(b, '192.0.2.63')).status).toBe(202);
  });
});
