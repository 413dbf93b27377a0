import { describe, expect, it } from 'vitest';
import type { BlocklistClientOptions } from '../../../../clients/dispatcher/index.js';
import {
  BLOCKLIST_CLIENT_DEFAULTS,
  BlocklistClientOptionsError,
  createBlocklistClient,
} from '../../../../clients/dispatcher/index.js';
import { ban, scriptedClient, T0 } from '../../../helpers/dispatcher-fakes.js';

const valid: BlocklistClientOptions = {
  url: 'http://127.0.0.1:3000',
  token: 'reader-token',
};

function thrownBy(options: unknown): BlocklistClientOptionsError {
  try {
    createBlocklistClient(options as BlocklistClientOptions);
  } catch (error) {
    if (error instanceof BlocklistClientOptionsError) return error;
    throw error;
  }
  throw new Error('createBlocklistClient accepted the options');
}

describe('createBlocklistClient option validation', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['url', { url: undefined }, /url must be an http\(s\) URL/],
    ['url', { url: 'ftp://127.0.0.1/' }, /url must be an http\(s\) URL .*ftp/],
    ['url', { url: 'not a url' }, /url must be an http\(s\) URL/],
    [
      'url',
      { url: 'http://user:pw@127.0.0.1/' },
      /url must not contain a user or password/,
    ],
    ['url', { url: 'http://127.0.0.1/?x=1' }, /url must not have a query/],
    ['token', { token: '' }, /token must be a non-empty reader token/],
    ['token', { token: 'two words' }, /token must be a non-empty reader token/],
    ['token', { token: 'line\nbreak' }, /token must be/],
    ['token', { token: 42 }, /token must be/],
    [
      'refreshMs',
      { refreshMs: 0 },
      /refreshMs must be a whole number of milliseconds .*got 0/,
    ],
    ['refreshMs', { refreshMs: -5 }, /refreshMs must be/],
    ['refreshMs', { refreshMs: 1.5 }, /refreshMs must be/],
    ['refreshMs', { refreshMs: Number.NaN }, /refreshMs must be/],
    ['refreshMs', { refreshMs: '1000' }, /refreshMs must be .*got "1000"/],
    ['refreshMs', { refreshMs: 2 ** 31 }, /refreshMs must be .*2147483647/],
    [
      'maxStaleMs',
      { maxStaleMs: Number.POSITIVE_INFINITY },
      /maxStaleMs must be a whole number/,
    ],
    [
      'maxStaleMs',
      { refreshMs: 30_000, maxStaleMs: 20_000 },
      /maxStaleMs must be at least refreshMs \(30000\)/,
    ],
    ['timeoutMs', { timeoutMs: 0 }, /timeoutMs must be/],
    [
      'minHealthyShare',
      { minHealthyShare: -0.1 },
      /minHealthyShare must be a number from 0 to 1/,
    ],
    ['minHealthyShare', { minHealthyShare: 1.5 }, /minHealthyShare must be/],
    [
      'minHealthyShare',
      { minHealthyShare: Number.NaN },
      /minHealthyShare must be/,
    ],
    ['minHealthyShare', { minHealthyShare: '0.5' }, /minHealthyShare must be/],
    ['fetch', { fetch: 'fetch' }, /fetch must be a function/],
    ['now', { now: 123 }, /now must be a function/],
    ['random', { random: {} }, /random must be a function/],
    [
      'logger',
      { logger: { info() {}, error() {} } },
      /logger must have info, warn and error methods \(warn/,
    ],
    [
      'snapshot',
      { snapshot: { fetchedAt: 'yesterday', etag: null, blocklist: {} } },
      /snapshot is not a saved blocklist: fetchedAt/,
    ],
    ['refershMs', { refershMs: 1000 }, /refershMs is not an option/],
  ])(
    'refuses a bad %s with an error that names it (%o)',
    (option, override, message) => {
      const error = thrownBy({ ...valid, ...override });

      expect(error.option).toBe(option);
      expect(error.message).toMatch(/^createBlocklistClient: /);
      expect(error.message).toMatch(message);
    },
  );

  it('refuses a missing options object', () => {
    expect(thrownBy(undefined).option).toBe('options');
  });

  it('never puts the token in an error message', () => {
    const error = thrownBy({ ...valid, token: 'secret value' });

    expect(error.message).not.toContain('secret');
  });

  it('accepts the documented extremes: minHealthyShare 0 and 1, maxStaleMs equal to refreshMs', () => {
    expect(() =>
      createBlocklistClient({ ...valid, minHealthyShare: 0 }),
    ).not.toThrow();
    expect(() =>
      createBlocklistClient({ ...valid, minHealthyShare: 1 }),
    ).not.toThrow();
    expect(() =>
      createBlocklistClient({ ...valid, refreshMs: 5_000, maxStaleMs: 5_000 }),
    ).not.toThrow();
  });
});

describe('documented defaults', () => {
  it('are 10 s refresh, 10 min staleness bound, 5 s timeout and a 0.5 panic share', () => {
    expect(BLOCKLIST_CLIENT_DEFAULTS).toEqual({
      refreshMs: 10_000,
      maxStaleMs: 600_000,
      timeoutMs: 5_000,
      minHealthyShare: 0.5,
    });
  });

  it('go stale after 10 s × 1.1 + 5 s without a poll and fail open after 10 min', async () => {
    const { client, clock } = scriptedClient(
      [
        {
          kind: 'list',
          entries: [ban('203.0.113.7', { until: T0 + 86_400_000 })],
        },
      ],
      valid,
    );
    await client.refresh();

    clock.advance(16_000);
    expect(client.state().status).toBe('fresh');
    clock.advance(1);
    expect(client.state().status).toBe('stale');
    clock.set(T0 + 600_000);
    expect(client.isBlocked('203.0.113.7')).toBe(true);
    clock.advance(1);
    expect(client.isBlocked('203.0.113.7')).toBe(false);
  });

  it('panics below half of the candidates healthy by default', async () => {
    const { client } = scriptedClient(
      [
        {
          kind: 'list',
          entries: [ban('198.51.100.1', { until: T0 + 60_000 })],
        },
      ],
      valid,
    );
    await client.refresh();

    expect(client.decide(['198.51.100.1', '198.51.100.2']).panic).toBe(false);
    expect(
      client.decide(['198.51.100.1', '198.51.100.1', '198.51.100.2']).panic,
    ).toBe(true);
  });

  it('polls GET /v1/blocklist under a base URL given with a trailing slash', async () => {
    const { client, fetch } = scriptedClient([{ kind: 'list', entries: [] }], {
      ...valid,
      url: 'https://api.example.test/stage/',
    });

    await client.refresh();

    expect(fetch.requests[0]?.url).toBe(
      'https://api.example.test/stage/v1/blocklist',
    );
  });
});
