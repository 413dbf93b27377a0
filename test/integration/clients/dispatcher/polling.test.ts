import { afterEach, describe, expect, it } from 'vitest';
import type { BlocklistClientOptions } from '../../../../clients/dispatcher/index.js';
import {
  BANNED,
  ban,
  clientOnClock,
  HOUR,
  OTHER,
  T0,
} from '../../../helpers/dispatcher-fakes.js';
import type { FakeStatusCenter } from '../../../helpers/dispatcher-servers.js';
import { startFakeStatusCenter } from '../../../helpers/dispatcher-servers.js';

describe('the blocklist client against a status center over loopback HTTP', () => {
  let center: FakeStatusCenter;

  afterEach(async () => {
    await center?.stop();
  });

  async function setup(options: Partial<BlocklistClientOptions> = {}) {
    center = await startFakeStatusCenter();
    center.setEntries([ban(BANNED, { until: T0 + HOUR })]);
    return clientOnClock({
      url: center.url,
      token: center.tokens.reader,
      refreshMs: 10_000,
      maxStaleMs: 60_000,
      timeoutMs: 2_000,
      ...options,
    });
  }

  it('sends If-None-Match on the second poll and keeps the list when the answer is 304', async () => {
    const { client, clock } = await setup();
    const first = await client.refresh();
    clock.advance(10_000);

    const second = await client.refresh();

    expect(first.outcome).toBe('updated');
    expect(center.requests[1]?.headers['if-none-match']).toBe(first.state.etag);
    expect(second.outcome).toBe('not-modified');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.state()).toMatchObject({
      status: 'fresh',
      etag: first.state.etag,
      lastSuccessAt: T0 + 10_000,
    });
  });

  it('takes a changed list on the next poll', async () => {
    const { client } = await setup();
    await client.refresh();
    center.setEntries([ban(OTHER, { until: T0 + HOUR })]);

    const result = await client.refresh();

    expect(result.outcome).toBe('updated');
    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.isBlocked(OTHER)).toBe(true);
  });

  it('keeps blocking the last listed IPs after the status center stops, and says it is stale', async () => {
    const { client, clock } = await setup();
    await client.refresh();
    await center.stop();
    clock.advance(10_000);

    const result = await client.refresh();

    expect(result.error?.kind).toBe('network');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.filterHealthy([BANNED, OTHER, '203.0.113.9'])).toEqual([
      OTHER,
      '203.0.113.9',
    ]);
    expect(client.state()).toMatchObject({
      status: 'stale',
      lastSuccessAt: T0,
      consecutiveFailures: 1,
    });
  });

  it('fails open once the status center has been down for longer than maxStaleMs', async () => {
    const { client, clock } = await setup();
    await client.refresh();
    await center.stop();
    clock.advance(30_000);
    await client.refresh();

    clock.advance(30_001);
    await client.refresh();

    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.state()).toMatchObject({
      status: 'failed-open',
      consecutiveFailures: 2,
    });
  });

  it('lets an entry expire on its until while the status center is down', async () => {
    const { client, clock } = await setup();
    center.setEntries([
      ban(BANNED, { until: T0 + 20_000 }),
      ban(OTHER, { until: T0 + HOUR }),
    ]);
    await client.refresh();
    await center.stop();
    await client.refresh();

    clock.advance(20_000);

    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.isBlocked(OTHER)).toBe(true);
    expect(client.state().status).toBe('stale');
  });

  it.each([500, 502, 503])(
    'treats a %i as an outage and keeps the last good list',
    async (status) => {
      const { client } = await setup();
      await client.refresh();
      center.setFault({ status });

      const result = await client.refresh();

      expect(result.error).toMatchObject({ kind: 'http', status });
      expect(client.isBlocked(BANNED)).toBe(true);
    },
  );

  it('times out a status center that accepts the connection but never answers', async () => {
    const { client } = await setup({ timeoutMs: 200 });
    await client.refresh();
    center.setFault('hang');

    const result = await client.refresh();

    expect(result.error?.kind).toBe('timeout');
    expect(client.isBlocked(BANNED)).toBe(true);
  });

  it('fails open on an unknown token from the first poll on, and logs the 401 as an error', async () => {
    const { client, logger } = await setup({ token: 'not-a-known-token' });

    const state = await client.ready();

    expect(state).toMatchObject({
      status: 'failed-open',
      lastError: { kind: 'auth', status: 401 },
    });
    expect(client.isBlocked(BANNED)).toBe(false);
    expect(
      logger.lines.some(
        (line) => line.level === 'error' && line.fields.httpStatus === 401,
      ),
    ).toBe(true);
  });

  it('answers a token of the wrong role (403) as an outage, keeping a saved list', async () => {
    const first = await setup();
    await first.client.refresh();
    const snapshot = first.client.snapshot() ?? undefined;
    const { client } = clientOnClock({
      url: center.url,
      token: center.tokens.reporter,
      now: first.clock.now,
      ...(snapshot ? { snapshot } : {}),
    });

    const result = await client.refresh();

    expect(result.error).toMatchObject({ kind: 'auth', status: 403 });
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.state().status).toBe('stale');
  });
});
