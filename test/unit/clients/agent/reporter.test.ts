import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createReporter } from '../../../../clients/agent/reporter.js';
import type { Heartbeat } from '../../../../functions/core/heartbeat.js';
import { createLogger } from '../../../../functions/log.js';

type Answer =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | 'network-error'
  | 'hang';
type Posted = {
  url: string;
  authorization: string;
  batchId: string;
  ip?: string;
  reportIntervalSeconds?: number;
  heartbeats: Heartbeat[];
};

/** A fetch that records every request and answers from a script (the last answer repeats). */
function scriptedStatusCenter(...answers: Answer[]) {
  const posted: Posted[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body)) as Omit<
      Posted,
      'url' | 'authorization'
    >;
    posted.push({
      url,
      authorization: new Headers(init.headers).get('authorization') ?? '',
      ...body,
    });
    const answer = answers.length > 1 ? answers.shift() : answers[0];
    if (answer === 'network-error')
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    if (answer === 'hang' || answer === undefined)
      return new Promise<Response>(() => {});
    return new Response(
      JSON.stringify(answer.body ?? { accepted: body.heartbeats.length }),
      {
        status: answer.status,
        headers: answer.headers ?? {},
      },
    );
  }) as unknown as typeof globalThis.fetch;
  return { fetch, posted };
}

const heartbeat = (process: string): Heartbeat => ({
  ip: '192.0.2.7',
  process,
  status: 'ok',
  kind: 'relay',
  origin: 'rtmp://origin.example:1935',
  ts: 1_700_000_000_000,
});
const heartbeats = (count: number, prefix = 'relay') =>
  Array.from({ length: count }, (_, i) => heartbeat(`${prefix}-${i}`));

function setup(
  center: ReturnType<typeof scriptedStatusCenter>,
  options: {
    maxBufferedHeartbeats?: number;
    reportIntervalMs?: number;
    ip?: string;
  } = {},
) {
  const logged: Record<string, unknown>[] = [];
  const reporter = createReporter({
    statusUrl: 'http://127.0.0.1:1/prod',
    token: 'reporter-token',
    maxBufferedHeartbeats: options.maxBufferedHeartbeats ?? 20_000,
    requestTimeoutMs: 5_000,
    retryMaxMs: 8_000,
    reportIntervalMs: options.reportIntervalMs ?? 60_000,
    ...(options.ip ? { ip: options.ip } : {}),
    log: createLogger({
      level: 'debug',
      write: (line) => logged.push(JSON.parse(line)),
    }),
    random: () => 0,
    fetch: center.fetch,
  });
  return { reporter, logged };
}

describe('delivering heartbeats to the status center', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('posts a batch with a batchId to <url>/v1/heartbeats with the reporter token', async () => {
    const center = scriptedStatusCenter({ status: 202 });
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(2));
    await vi.advanceTimersByTimeAsync(0);

    expect(center.posted).toHaveLength(1);
    expect(center.posted[0]).toMatchObject({
      url: 'http://127.0.0.1:1/prod/v1/heartbeats',
      authorization: 'Bearer reporter-token',
      heartbeats: heartbeats(2),
    });
    expect(center.posted[0]?.batchId).toMatch(/^[\x21-\x7e]{1,128}$/);
    expect(reporter.stats()).toMatchObject({
      sentBatches: 1,
      sentHeartbeats: 2,
      queuedBatches: 0,
    });
  });

  it('declares the report interval in whole seconds in every request, rounded up', async () => {
    const center = scriptedStatusCenter({ status: 503 }, { status: 202 });
    const { reporter } = setup(center, { reportIntervalMs: 2_500 });

    reporter.enqueue(heartbeats(1));
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(8_000);

    expect(center.posted).toHaveLength(2);
    expect(center.posted.map((post) => post.reportIntervalSeconds)).toEqual([
      3, 3,
    ]);
  });

  it('renews the lease of an idle agent with an empty report naming its IP, and never piles renewals up while reports wait', async () => {
    const center = scriptedStatusCenter(
      { status: 202, body: { accepted: 0 } },
      'network-error',
      { status: 202 },
    );
    const { reporter } = setup(center, {
      reportIntervalMs: 15_000,
      ip: '192.0.2.7',
    });

    reporter.renew();
    await vi.advanceTimersByTimeAsync(0);
    expect(center.posted).toHaveLength(1);
    expect(center.posted[0]).toMatchObject({
      ip: '192.0.2.7',
      reportIntervalSeconds: 15,
      heartbeats: [],
    });

    reporter.enqueue(heartbeats(1)); // meets the network error and waits for its retry
    await vi.advanceTimersByTimeAsync(0);
    reporter.renew();
    reporter.renew();
    expect(reporter.stats().queuedBatches).toBe(1);
    await vi.advanceTimersByTimeAsync(8_000);
    expect(center.posted.map((post) => post.heartbeats.length)).toEqual([
      0, 1, 1,
    ]);
  });

  it('sends no renewal when it does not know its IP', async () => {
    const center = scriptedStatusCenter({ status: 202 });
    const { reporter } = setup(center);
    reporter.renew();
    await vi.advanceTimersByTimeAsync(0);
    expect(center.posted).toEqual([]);
  });

  it('splits a report into requests of at most 500 heartbeats, each with its own batchId', async () => {
    const center = scriptedStatusCenter({ status: 202 });
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(1_201));
    await vi.advanceTimersByTimeAsync(0);

    expect(center.posted.map((post) => post.heartbeats.length)).toEqual([
      500, 500, 201,
    ]);
    expect(new Set(center.posted.map((post) => post.batchId)).size).toBe(3);
  });

  it('returns from enqueue at once while the status center hangs', () => {
    const center = scriptedStatusCenter('hang');
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(3));
    reporter.enqueue(heartbeats(3));

    expect(reporter.stats()).toMatchObject({
      queuedBatches: 2,
      queuedHeartbeats: 6,
    });
  });

  it('retries a batch refused with 503, 429 or 408, or lost to a network error, with the same batchId and body', async () => {
    const center = scriptedStatusCenter(
      { status: 503 },
      'network-error',
      { status: 429 },
      { status: 408 },
      { status: 202 },
    );
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(2));
    await vi.advanceTimersByTimeAsync(60_000);

    expect(center.posted).toHaveLength(5);
    expect(new Set(center.posted.map((post) => post.batchId)).size).toBe(1);
    expect(
      new Set(center.posted.map((post) => JSON.stringify(post.heartbeats)))
        .size,
    ).toBe(1);
    expect(reporter.stats()).toMatchObject({
      sentBatches: 1,
      failedAttempts: 4,
      queuedBatches: 0,
    });
  });

  it('delivers batches buffered during an outage in order once the status center is back', async () => {
    const center = scriptedStatusCenter(
      'network-error',
      'network-error',
      'network-error',
      { status: 202 },
    );
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(1, 'first'));
    reporter.enqueue(heartbeats(1, 'second'));
    reporter.enqueue(heartbeats(1, 'third'));
    await vi.advanceTimersByTimeAsync(60_000);

    const delivered = center.posted
      .slice(3)
      .map((post) => post.heartbeats[0]?.process);
    expect(delivered).toEqual(['first-0', 'second-0', 'third-0']);
    expect(reporter.stats()).toMatchObject({
      sentBatches: 3,
      queuedBatches: 0,
      droppedHeartbeats: 0,
    });
  });

  it('drops a batch refused with 400, counts it, logs the answer, and goes on with the next', async () => {
    const center = scriptedStatusCenter(
      {
        status: 400,
        body: { error: 'bad_request', issues: [{ path: 'heartbeats.0.ip' }] },
      },
      { status: 202 },
    );
    const { reporter, logged } = setup(center);

    reporter.enqueue(heartbeats(2, 'refused'));
    reporter.enqueue(heartbeats(1, 'next'));
    await vi.advanceTimersByTimeAsync(60_000);

    expect(center.posted.map((post) => post.heartbeats[0]?.process)).toEqual([
      'refused-0',
      'next-0',
    ]);
    expect(reporter.stats()).toMatchObject({
      rejectedBatches: 1,
      rejectedHeartbeats: 2,
      sentBatches: 1,
    });
    expect(
      logged.some(
        (entry) =>
          entry.level === 'error' &&
          String(entry.response).includes('heartbeats.0.ip'),
      ),
    ).toBe(true);
  });

  it('drops the oldest batches beyond the buffer limit and counts what it dropped', async () => {
    const center = scriptedStatusCenter('network-error');
    const { reporter, logged } = setup(center, {
      maxBufferedHeartbeats: 1_000,
    });

    reporter.enqueue(heartbeats(400, 'a'));
    await vi.advanceTimersByTimeAsync(0);
    reporter.enqueue(heartbeats(400, 'b'));
    reporter.enqueue(heartbeats(400, 'c'));

    expect(reporter.stats()).toMatchObject({
      droppedBatches: 1,
      droppedHeartbeats: 400,
      queuedHeartbeats: 800,
    });
    expect(
      logged.some(
        (entry) =>
          entry.message === 'report buffer full; dropped oldest heartbeats',
      ),
    ).toBe(true);
  });

  it('records what the status center accepted and what arrived too late for its minute', async () => {
    const center = scriptedStatusCenter({
      status: 202,
      body: { accepted: 3, stale: 2 },
    });
    const { reporter } = setup(center);

    reporter.enqueue(heartbeats(3));
    await vi.advanceTimersByTimeAsync(0);

    expect(reporter.stats()).toMatchObject({
      acceptedHeartbeats: 3,
      staleHeartbeats: 2,
    });
  });
});
