/**
 * Delivers heartbeats to the status center without ever holding up a relay:
 * batches go into a bounded in-memory queue and one sender drains it, in
 * order, retrying with backoff while the status center is slow or down. Each
 * batch keeps its batchId across retries, so the status center counts a
 * batch once even when an answer was lost after it was stored. Every request
 * declares the agent's report interval (its lease), so the status center can
 * tell a machine gone silent from one that reports rarely.
 */
import { randomBytes } from 'node:crypto';
import { backoffDelay } from '#contract/backoff';
import type { Heartbeat } from '#contract/heartbeat';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';
import type { Logger } from '#contract/log';

/** First retry delay; it doubles up to the configured maximum. */
const RETRY_MIN_MS = 1_000;
/** Bytes of a refusal's body kept for the log. */
const LOGGED_BODY_CHARS = 500;

export type ReporterStats = {
  queuedBatches: number;
  queuedHeartbeats: number;
  sentBatches: number;
  sentHeartbeats: number;
  /** As the status center answered: `stale` heartbeats arrived after their minute closed. */
  acceptedHeartbeats: number;
  staleHeartbeats: number;
  /** Dropped because the buffer was full (oldest first). */
  droppedBatches: number;
  droppedHeartbeats: number;
  /** Refused by the status center with a 4xx other than 408/429; never retried. */
  rejectedBatches: number;
  rejectedHeartbeats: number;
  failedAttempts: number;
  lastError?: string;
  lastDeliveredAt?: string;
};

export type Reporter = {
  /** Queues heartbeats for delivery (split into batches of at most maxBatch); never waits. */
  enqueue(heartbeats: readonly Heartbeat[]): void;
  /**
   * Renews the lease of an agent with nothing to report (no relay, no probe),
   * so its quiet is not taken for a cut. Skipped while reports are queued:
   * they renew it when delivered, and renewals must not pile up in an outage.
   */
  renew(): void;
  stats(): ReporterStats;
  /** Resolves when the queue is empty or after `timeoutMs`, whichever comes first. */
  flush(timeoutMs: number): Promise<void>;
  stop(): void;
};

type Batch = {
  batchId: string;
  heartbeats: readonly Heartbeat[];
  attempts: number;
};

type Delivery =
  | { kind: 'delivered'; accepted: number; stale: number }
  | { kind: 'rejected'; status: number; body: string }
  | { kind: 'retry'; reason: string; retryAfterMs?: number };

export function createReporter(options: {
  statusUrl: string;
  token: string;
  maxBufferedHeartbeats: number;
  requestTimeoutMs: number;
  retryMaxMs: number;
  /** The periodic report interval, declared in every request as `reportIntervalSeconds`. */
  reportIntervalMs: number;
  /** This machine's IP, sent with every request (a lease renewal names no heartbeat's IP). */
  ip?: string;
  log: Logger;
  random?: () => number;
  fetch?: typeof fetch;
}): Reporter {
  const { log } = options;
  const post = options.fetch ?? fetch;
  const random = options.random ?? Math.random;
  const endpoint = `${options.statusUrl}/v1/heartbeats`;
  // Whole seconds, rounded up: a lease may overstate the interval, never understate it.
  const reportIntervalSeconds = Math.max(
    1,
    Math.ceil(options.reportIntervalMs / 1000),
  );
  // Unique per agent process, so batchIds never repeat across restarts.
  const instance = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  let sequence = 0;
  const queue: Batch[] = [];
  let sending = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let failuresInARow = 0;
  let stopped = false;
  const waiters = new Set<() => void>();
  const stats: ReporterStats = {
    queuedBatches: 0,
    queuedHeartbeats: 0,
    sentBatches: 0,
    sentHeartbeats: 0,
    acceptedHeartbeats: 0,
    staleHeartbeats: 0,
    droppedBatches: 0,
    droppedHeartbeats: 0,
    rejectedBatches: 0,
    rejectedHeartbeats: 0,
    failedAttempts: 0,
  };

  const queuedHeartbeats = () =>
    queue.reduce((sum, batch) => sum + batch.heartbeats.length, 0);

  function settleWaiters(): void {
    if (queue.length > 0) return;
    for (const wake of waiters) wake();
    waiters.clear();
  }

  function makeRoom(): void {
    let dropped = 0;
    let droppedBatches = 0;
    // The head may be in flight; it is resolved by its answer, never dropped here.
    while (
      queuedHeartbeats() > options.maxBufferedHeartbeats &&
      queue.length > 1
    ) {
      const [oldest] = queue.splice(sending ? 1 : 0, 1);
      dropped += oldest?.heartbeats.length ?? 0;
      droppedBatches++;
    }
    if (droppedBatches === 0) return;
    stats.droppedBatches += droppedBatches;
    stats.droppedHeartbeats += dropped;
    log.warn('report buffer full; dropped oldest heartbeats', {
      dropped,
      droppedTotal: stats.droppedHeartbeats,
      buffered: queuedHeartbeats(),
      limit: options.maxBufferedHeartbeats,
    });
  }

  async function deliver(batch: Batch): Promise<Delivery> {
    let response: Response;
    try {
      response = await post(endpoint, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${options.token}`,
          'content-type': 'application/json',
          'user-agent': 'relaywatch-agent',
        },
        body: JSON.stringify({
          batchId: batch.batchId,
          ...(options.ip === undefined ? {} : { ip: options.ip }),
          reportIntervalSeconds,
          heartbeats: batch.heartbeats,
        }),
        signal: AbortSignal.timeout(options.requestTimeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return {
        kind: 'retry',
        reason: cause ?? (error as Error).name ?? 'network error',
      };
    }
    const body = await response.text().catch(() => '');
    if (response.ok) {
      let answer: { accepted?: unknown; stale?: unknown } = {};
      try {
        answer = JSON.parse(body) as typeof answer;
      } catch {
        // A 2xx without a JSON body still means the batch is stored.
      }
      const accepted =
        typeof answer.accepted === 'number'
          ? answer.accepted
          : batch.heartbeats.length;
      const stale = typeof answer.stale === 'number' ? answer.stale : 0;
      return { kind: 'delivered', accepted, stale };
    }
    if (
      response.status === 408 ||
      response.status === 429 ||
      response.status >= 500
    ) {
      const retryAfter = Number(response.headers.get('retry-after'));
      return {
        kind: 'retry',
        reason: `HTTP ${response.status}`,
        ...(Number.isFinite(retryAfter) && retryAfter > 0
          ? { retryAfterMs: retryAfter * 1000 }
          : {}),
      };
    }
    return {
      kind: 'rejected',
      status: response.status,
      body: body.slice(0, LOGGED_BODY_CHARS),
    };
  }

  async function pump(): Promise<void> {
    if (sending || retryTimer !== undefined || stopped) return;
    sending = true;
    try {
      for (
        let batch = queue[0];
        batch !== undefined && !stopped;
        batch = queue[0]
      ) {
        batch.attempts++;
        const result = await deliver(batch);
        if (result.kind === 'retry') {
          failuresInARow++;
          stats.failedAttempts++;
          stats.lastError = result.reason;
          const delay = backoffDelay({
            attempt: failuresInARow - 1,
            minMs: RETRY_MIN_MS,
            maxMs: options.retryMaxMs,
            random,
            ...(result.retryAfterMs === undefined
              ? {}
              : { notBeforeMs: result.retryAfterMs }),
          });
          log.warn('report failed; will retry', {
            batchId: batch.batchId,
            attempt: batch.attempts,
            reason: result.reason,
            retryInMs: delay,
            buffered: queuedHeartbeats(),
          });
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            void pump();
          }, delay);
          return;
        }
        queue.shift();
        failuresInARow = 0;
        if (result.kind === 'delivered') {
          stats.sentBatches++;
          stats.sentHeartbeats += batch.heartbeats.length;
          stats.acceptedHeartbeats += result.accepted;
          stats.staleHeartbeats += result.stale;
          stats.lastDeliveredAt = new Date().toISOString();
          if (batch.attempts > 1) {
            log.info('report delivered after retries', {
              batchId: batch.batchId,
              attempts: batch.attempts,
              stale: result.stale,
            });
          }
        } else {
          stats.rejectedBatches++;
          stats.rejectedHeartbeats += batch.heartbeats.length;
          stats.lastError = `HTTP ${result.status}`;
          log.error('status center refused a report; dropped', {
            batchId: batch.batchId,
            status: result.status,
            heartbeats: batch.heartbeats.length,
            rejectedTotal: stats.rejectedHeartbeats,
            response: result.body,
          });
        }
      }
    } finally {
      sending = false;
      settleWaiters();
    }
  }

  return {
    enqueue(heartbeats) {
      if (stopped) return;
      for (
        let start = 0;
        start < heartbeats.length;
        start += HEARTBEAT_LIMITS.maxBatch
      ) {
        sequence++;
        queue.push({
          batchId: `${instance}-${sequence}`,
          heartbeats: heartbeats.slice(
            start,
            start + HEARTBEAT_LIMITS.maxBatch,
          ),
          attempts: 0,
        });
      }
      makeRoom();
      void pump();
    },
    renew() {
      if (stopped || options.ip === undefined || queue.length > 0) return;
      sequence++;
      queue.push({
        batchId: `${instance}-${sequence}`,
        heartbeats: [],
        attempts: 0,
      });
      void pump();
    },
    stats: () => ({
      ...stats,
      queuedBatches: queue.length,
      queuedHeartbeats: queuedHeartbeats(),
    }),
    flush(timeoutMs) {
      if (queue.length === 0) return Promise.resolve();
      // Whoever flushes (a shutdown) should not sit out a long backoff.
      if (retryTimer !== undefined) {
        clearTimeout(retryTimer);
        retryTimer = undefined;
        void pump();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters.delete(wake);
          resolve();
        }, timeoutMs);
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(wake);
      });
    },
    stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      for (const wake of waiters) wake();
      waiters.clear();
    },
  };
}
