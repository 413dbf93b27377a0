import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BlocklistClientOptions } from '../../../../clients/dispatcher/index.js';
import type { Reply } from '../../../helpers/dispatcher-fakes.js';
import {
  BANNED,
  ban,
  HOUR,
  listOf,
  OTHER,
  scriptedClient,
  T0,
} from '../../../helpers/dispatcher-fakes.js';

const setup = (
  script: Reply[],
  options: Partial<BlocklistClientOptions> = {},
) =>
  scriptedClient(script, {
    url: 'http://127.0.0.1:1/prod',
    refreshMs: 10_000,
    maxStaleMs: 60_000,
    timeoutMs: 1_000,
    random: () => 0,
    ...options,
  });

describe('polling the blocklist', () => {
  it('asks GET /v1/blocklist under the base URL with the reader token as a bearer token', async () => {
    const { client, fetch } = setup([listOf(BANNED)]);

    await client.refresh();

    expect(fetch.requests).toHaveLength(1);
    expect(fetch.requests[0]?.url).toBe('http://127.0.0.1:1/prod/v1/blocklist');
    expect(fetch.requests[0]?.headers.authorization).toBe(
      'Bearer reader-token',
    );
    expect(fetch.requests[0]?.headers['if-none-match']).toBeUndefined();
  });

  it('blocks a listed IP and no other after the first refresh, comparing IPs canonically', async () => {
    const { client } = setup([listOf(BANNED, '2001:db8::1')]);

    const result = await client.refresh();

    expect(result.outcome).toBe('updated');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.isBlocked(OTHER)).toBe(false);
    expect(client.isBlocked('2001:DB8:0:0::1')).toBe(true);
    expect(client.isBlocked('::ffff:203.0.113.7')).toBe(true);
    expect(client.banOf(BANNED)?.reason).toBe('connect failures');
    expect(client.state()).toMatchObject({
      status: 'fresh',
      activeEntries: 2,
      lastSuccessAt: T0,
    });
  });

  it('sends If-None-Match with the last ETag and keeps the list on 304', async () => {
    const { client, fetch, clock } = setup([
      {
        kind: 'list',
        entries: [ban(BANNED, { until: T0 + HOUR })],
        etag: '"v1"',
      },
      { kind: 'not-modified' },
    ]);
    await client.refresh();
    clock.advance(10_000);

    const result = await client.refresh();

    expect(fetch.requests[1]?.headers['if-none-match']).toBe('"v1"');
    expect(result.outcome).toBe('not-modified');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.state()).toMatchObject({
      status: 'fresh',
      etag: '"v1"',
      lastSuccessAt: T0 + 10_000,
    });
  });

  it('replaces the list when a poll brings a new one, so a lifted ban stops blocking', async () => {
    const { client } = setup([listOf(BANNED), listOf(OTHER)]);
    await client.refresh();

    await client.refresh();

    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.isBlocked(OTHER)).toBe(true);
  });

  it('does not send If-None-Match when the server gave no ETag', async () => {
    const { client, fetch } = setup([
      { kind: 'list', entries: [], etag: null },
      listOf(BANNED),
    ]);
    await client.refresh();

    await client.refresh();

    expect(fetch.requests[1]?.headers['if-none-match']).toBeUndefined();
    expect(client.isBlocked(BANNED)).toBe(true);
  });

  it('shares one request between concurrent refresh calls', async () => {
    const { client, fetch } = setup([listOf(BANNED)]);

    const [a, b] = await Promise.all([client.refresh(), client.refresh()]);

    expect(fetch.requests).toHaveLength(1);
    expect(a).toBe(b);
  });
});

describe('fail-static when the status center cannot be reached', () => {
  it.each<[string, Reply, string]>([
    ['a network error', { kind: 'network-error' }, 'network'],
    ['a 503', { kind: 'status', status: 503 }, 'http'],
    ['a 500', { kind: 'status', status: 500 }, 'http'],
    ['a 404 (wrong URL)', { kind: 'status', status: 404 }, 'http'],
    [
      'a body that is not JSON',
      { kind: 'body', status: 200, text: '<html>' },
      'invalid',
    ],
    [
      'a body that breaks the contract',
      { kind: 'body', status: 200, text: '{"entries":"none"}' },
      'invalid',
    ],
    [
      'an entry whose IP is not an IP',
      {
        kind: 'body',
        status: 200,
        text: JSON.stringify({
          generatedAt: 'x',
          entries: [{ ...ban('nope', { until: T0 + HOUR }) }],
        }),
      },
      'invalid',
    ],
  ])(
    'keeps blocking the last listed IPs after %s and reports stale',
    async (_, failure, kind) => {
      const { client, clock } = setup([listOf(BANNED), failure]);
      await client.refresh();
      clock.advance(10_000);

      const result = await client.refresh();

      expect(result.outcome).toBe('failed');
      expect(client.isBlocked(BANNED)).toBe(true);
      expect(client.state()).toMatchObject({
        status: 'stale',
        lastSuccessAt: T0,
        consecutiveFailures: 1,
        lastError: { kind, at: T0 + 10_000 },
      });
    },
  );

  it.each([401, 403])(
    'treats HTTP %i as an outage, not as an empty list, and logs it as an error',
    async (status) => {
      const { client, logger } = setup([
        listOf(BANNED),
        { kind: 'status', status },
      ]);
      await client.refresh();

      await client.refresh();

      expect(client.isBlocked(BANNED)).toBe(true);
      expect(client.state()).toMatchObject({
        status: 'stale',
        lastError: { kind: 'auth', status },
      });
      const refused = logger.lines.find((line) =>
        line.message.includes('refused the reader token'),
      );
      expect(refused?.level).toBe('error');
    },
  );

  it('gives up on a poll that never answers after timeoutMs and keeps the last good list', async () => {
    const { client } = setup([listOf(BANNED), { kind: 'hang' }], {
      timeoutMs: 20,
    });
    await client.refresh();

    const result = await client.refresh();

    expect(result.error?.kind).toBe('timeout');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.state().status).toBe('stale');
  });

  it('says in its logs that it is using the last good list, once per change of status', async () => {
    const { client, logger } = setup([
      listOf(BANNED),
      { kind: 'network-error' },
    ]);
    await client.refresh();

    await client.refresh();
    await client.refresh();
    client.isBlocked(BANNED);

    const staleLines = logger.lines.filter((line) =>
      line.message.includes('fail-static'),
    );
    expect(staleLines).toHaveLength(1);
    expect(staleLines[0]?.level).toBe('warn');
    expect(
      logger.lines.filter((line) => line.message.includes('refresh failed')),
    ).toHaveLength(2);
  });

  it('becomes fresh again on the next good poll', async () => {
    const { client, fetch } = setup([
      listOf(BANNED),
      { kind: 'network-error' },
    ]);
    await client.refresh();
    await client.refresh();
    fetch.setReply({ kind: 'not-modified' });

    await client.refresh();

    expect(client.state()).toMatchObject({
      status: 'fresh',
      consecutiveFailures: 0,
    });
    expect(client.isBlocked(BANNED)).toBe(true);
  });

  it('reports stale when no poll has confirmed the list for longer than refreshMs × 1.1 + timeoutMs', async () => {
    const { client, clock } = setup([listOf(BANNED)]);
    await client.refresh();

    clock.advance(12_001);

    expect(client.state().status).toBe('stale');
    expect(client.isBlocked(BANNED)).toBe(true);
  });
});

describe('fail-open past maxStaleMs', () => {
  it('treats nothing as blocked once the last good list is older than maxStaleMs', async () => {
    const { client, clock, logger } = setup([
      listOf(BANNED),
      { kind: 'network-error' },
    ]);
    await client.refresh();
    clock.advance(59_000);
    await client.refresh();
    expect(client.isBlocked(BANNED)).toBe(true);

    clock.advance(1_001);

    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.filterHealthy([BANNED, OTHER])).toEqual([BANNED, OTHER]);
    expect(client.state()).toMatchObject({
      status: 'failed-open',
      lastSuccessAt: T0,
    });
    expect(
      logger.lines.some(
        (line) =>
          line.level === 'error' && line.message.includes('failing open'),
      ),
    ).toBe(true);
  });

  it('fails open while no list has ever been loaded', async () => {
    const { client } = setup([{ kind: 'network-error' }]);

    await client.refresh();

    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.pick([BANNED])).toBe(BANNED);
    expect(client.state()).toMatchObject({
      status: 'failed-open',
      lastSuccessAt: null,
      lastError: { kind: 'network' },
    });
  });

  it('blocks again as soon as a poll succeeds after failing open', async () => {
    const { client, clock, fetch } = setup([
      listOf(BANNED),
      { kind: 'network-error' },
    ]);
    await client.refresh();
    clock.advance(120_000);
    await client.refresh();
    expect(client.state().status).toBe('failed-open');
    fetch.setReply({ kind: 'not-modified' });

    await client.refresh();

    expect(client.state().status).toBe('fresh');
    expect(client.isBlocked(BANNED)).toBe(true);
  });
});

describe('ban expiry on the client', () => {
  it('stops blocking an entry once its until has passed, even while the list is stale', async () => {
    const { client, clock } = setup([
      {
        kind: 'list',
        entries: [
          ban(BANNED, { until: T0 + 30_000 }),
          ban(OTHER, { until: T0 + HOUR }),
        ],
      },
      { kind: 'network-error' },
    ]);
    await client.refresh();
    await client.refresh();

    clock.advance(30_000);

    expect(client.state()).toMatchObject({ status: 'stale', activeEntries: 1 });
    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.isBlocked(OTHER)).toBe(true);
  });

  it('does not block an entry that had already expired when it was listed', async () => {
    const { client } = setup([
      { kind: 'list', entries: [ban(BANNED, { until: T0 - 1 })] },
    ]);

    await client.refresh();

    expect(client.isBlocked(BANNED)).toBe(false);
  });
});

describe('choosing among candidates', () => {
  const agents = [
    { url: 'http://127.0.0.1:7001', ip: '198.51.100.1' },
    { url: 'http://127.0.0.1:7002', ip: '198.51.100.2' },
    { url: 'http://127.0.0.1:7003', ip: '198.51.100.3' },
    { url: 'http://127.0.0.1:7004', ip: '198.51.100.4' },
  ];

  it('filters blocked candidates out, keeping the objects it was given', async () => {
    const { client } = setup([listOf('198.51.100.2')]);
    await client.refresh();

    const healthy = client.filterHealthy(agents);

    expect(healthy).toEqual([agents[0], agents[2], agents[3]]);
    expect(healthy[0]).toBe(agents[0]);
    expect(client.state().panic).toBe(false);
  });

  it('never picks a blocked candidate outside panic, whatever the random draw', async () => {
    let draw = 0;
    const { client } = setup([listOf('198.51.100.1', '198.51.100.3')], {
      random: () => draw,
    });
    await client.refresh();

    const picks = [0, 0.25, 0.5, 0.75, 0.999999].map((value) => {
      draw = value;
      return client.pick(agents)?.ip;
    });

    expect(new Set(picks)).toEqual(new Set(['198.51.100.2', '198.51.100.4']));
  });

  it('uses every candidate and reports panic when fewer than minHealthyShare are healthy', async () => {
    const { client, logger } = setup([
      listOf('198.51.100.1', '198.51.100.2', '198.51.100.3'),
    ]);
    await client.refresh();

    const decision = client.decide(agents);

    expect(decision.panic).toBe(true);
    expect(decision.usable).toEqual(agents);
    expect(decision.blocked.map(({ candidate }) => candidate.ip)).toEqual([
      '198.51.100.1',
      '198.51.100.2',
      '198.51.100.3',
    ]);
    expect(client.filterHealthy(agents)).toEqual(agents);
    expect(client.state().panic).toBe(true);
    expect(
      logger.lines.filter((line) => line.message.startsWith('panic:')),
    ).toHaveLength(1);
  });

  it('does not panic when exactly minHealthyShare of the candidates is healthy', async () => {
    const { client } = setup([listOf('198.51.100.1', '198.51.100.2')]);
    await client.refresh();

    expect(client.filterHealthy(agents)).toEqual([agents[2], agents[3]]);
    expect(client.state().panic).toBe(false);
  });

  it('leaves panic when enough candidates are healthy again', async () => {
    const { client } = setup([
      listOf('198.51.100.1', '198.51.100.2', '198.51.100.3'),
      listOf('198.51.100.1'),
    ]);
    await client.refresh();
    client.filterHealthy(agents);
    await client.refresh();

    const usable = client.filterHealthy(agents);

    expect(usable).toHaveLength(3);
    expect(client.state().panic).toBe(false);
  });

  it('with minHealthyShare 0 never panics, so an all-blocked pool leaves nothing to pick', async () => {
    const { client } = setup([listOf(BANNED)], { minHealthyShare: 0 });
    await client.refresh();

    expect(client.pick([BANNED])).toBeUndefined();
    expect(client.filterHealthy([BANNED])).toEqual([]);
  });

  it('with minHealthyShare 1 panics as soon as one candidate is blocked', async () => {
    const { client } = setup([listOf('198.51.100.4')], { minHealthyShare: 1 });
    await client.refresh();

    expect(client.decide(agents)).toMatchObject({
      panic: true,
      usable: agents,
    });
  });

  it('picks nothing from an empty pool', async () => {
    const { client } = setup([listOf(BANNED)]);
    await client.refresh();

    expect(client.pick([])).toBeUndefined();
    expect(client.decide([])).toMatchObject({ panic: false, usable: [] });
  });

  it('refuses a candidate without an ip', () => {
    const { client } = setup([listOf(BANNED)]);

    expect(() =>
      client.filterHealthy([{ url: 'x' } as unknown as { ip: string }]),
    ).toThrow(/ip/);
  });
});

describe('ready, start and stop', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ready() polls once and resolves with the loaded list', async () => {
    const { client, fetch } = setup([listOf(BANNED)]);

    const state = await client.ready();

    expect(fetch.requests).toHaveLength(1);
    expect(state).toMatchObject({ status: 'fresh', activeEntries: 1 });
  });

  it('ready() resolves failed-open when the first poll fails, instead of rejecting', async () => {
    const { client } = setup([{ kind: 'status', status: 503 }]);

    const state = await client.ready();

    expect(state).toMatchObject({
      status: 'failed-open',
      lastError: { kind: 'http', status: 503 },
    });
  });

  it('ready() gives up after its own timeout when the first poll hangs', async () => {
    const { client } = setup([{ kind: 'hang' }], { timeoutMs: 60_000 });

    const state = await client.ready({ timeoutMs: 10 });

    expect(state.status).toBe('failed-open');
    await client.stop();
  });

  it('start() polls at once and again every refreshMs until stop()', async () => {
    vi.useFakeTimers();
    const { client, fetch } = setup([listOf(BANNED), { kind: 'not-modified' }]);

    client.start();
    await client.ready();
    expect(client.state().polling).toBe(true);
    await vi.advanceTimersByTimeAsync(11_000);
    await vi.advanceTimersByTimeAsync(11_000);
    await client.stop();
    await vi.advanceTimersByTimeAsync(60_000);

    expect(fetch.requests).toHaveLength(3);
    expect(fetch.requests[2]?.headers['if-none-match']).toBeDefined();
    expect(client.state().polling).toBe(false);
  });

  it('stop() aborts a poll in flight without recording an outage, and keeps the list usable', async () => {
    const { client, fetch } = setup([listOf(BANNED), { kind: 'hang' }], {
      timeoutMs: 60_000,
    });
    await client.refresh();
    const pending = client.refresh();

    await client.stop();
    const result = await pending;

    expect(result.error).toBeNull();
    expect(client.state()).toMatchObject({
      consecutiveFailures: 0,
      lastError: null,
      status: 'fresh',
    });
    expect(client.isBlocked(BANNED)).toBe(true);
    fetch.setReply(listOf(OTHER));
    await client.refresh();
    expect(client.isBlocked(OTHER)).toBe(true);
  });
});

describe('snapshots', () => {
  it('has no snapshot before any list', () => {
    const { client } = setup([listOf(BANNED)]);

    expect(client.snapshot()).toBeNull();
  });

  it('restores a saved list, blocks from it before any poll, and revalidates it with its ETag', async () => {
    const first = setup([
      {
        kind: 'list',
        entries: [ban(BANNED, { until: T0 + HOUR })],
        etag: '"saved"',
      },
    ]);
    await first.client.refresh();
    const saved = JSON.parse(JSON.stringify(first.client.snapshot()));

    const { client, fetch } = setup([{ kind: 'not-modified' }], {
      snapshot: saved,
    });

    expect(client.isBlocked(BANNED)).toBe(true);
    await client.refresh();
    expect(fetch.requests[0]?.headers['if-none-match']).toBe('"saved"');
    expect(client.state()).toMatchObject({ status: 'fresh', etag: '"saved"' });
  });

  it('fails static from a saved list when the first poll fails, and open once it is older than maxStaleMs', async () => {
    const first = setup([listOf(BANNED)]);
    await first.client.refresh();
    const saved = first.client.snapshot() ?? undefined;
    const { client, clock } = setup([{ kind: 'network-error' }], {
      snapshot: saved,
    });
    clock.advance(30_000);

    await client.refresh();
    expect(client.state().status).toBe('stale');
    expect(client.isBlocked(BANNED)).toBe(true);

    clock.advance(31_000);
    expect(client.isBlocked(BANNED)).toBe(false);
  });
});
