/**
 * The dispatcher's view of the status center: a cached blocklist refreshed by
 * ETag polling, which degrades instead of failing. Unreachable center → keep
 * the last good list (fail-static); list older than maxStaleMs → block
 * nothing (fail-open); too few healthy candidates → use them all (panic).
 */
import type { BlocklistEntry, BlocklistResponse } from '#contract/blocklist';
import { blocklistResponseSchema } from '#contract/blocklist';
import { parseWith } from '#contract/validation';
import type { CachedList } from './cached-list.js';
import { activeBanOf, buildCachedList, countActive } from './cached-list.js';
import type { BlocklistClientOptions, ResolvedOptions } from './options.js';
import { resolveOptions } from './options.js';
import type { Assessment, Candidate } from './selection.js';
import { assessCandidates } from './selection.js';
import type { BlocklistSnapshot } from './snapshot.js';

/**
 * - `fresh`: the last poll succeeded and is recent.
 * - `stale`: the last poll failed, or none has succeeded for refreshMs × 1.1 + timeoutMs;
 *   the last good list is used (fail-static).
 * - `failed-open`: no list yet, or the last good one is older than maxStaleMs; nothing is blocked.
 */
export type BlocklistStatus = 'fresh' | 'stale' | 'failed-open';

export type RefreshErrorKind =
  | 'network'
  | 'timeout'
  | 'auth'
  | 'http'
  | 'invalid';

export type RefreshError = {
  kind: RefreshErrorKind;
  message: string;
  /** HTTP status, when the status center answered. */
  status: number | null;
  /** Epoch ms. */
  at: number;
};

export type BlocklistClientState = {
  status: BlocklistStatus;
  /** Epoch ms of the last 200 or 304 (or the snapshot's fetchedAt); null before any. */
  lastSuccessAt: number | null;
  lastAttemptAt: number | null;
  /** now − lastSuccessAt; null before any success. */
  ageMs: number | null;
  /** The most recent failure; it stays set after a success, so compare `at` with lastSuccessAt. */
  lastError: RefreshError | null;
  /** Failed polls since the last success. */
  consecutiveFailures: number;
  etag: string | null;
  /** `generatedAt` of the list in use. */
  generatedAt: string | null;
  /** Entries of the list in use whose `until` is still ahead. */
  activeEntries: number;
  /** Whether the last filterHealthy / pick / decide call was in panic. */
  panic: boolean;
  /** Whether start() is polling. */
  polling: boolean;
};

export type RefreshResult = {
  outcome: 'updated' | 'not-modified' | 'failed';
  error: RefreshError | null;
  state: BlocklistClientState;
};

export type Decision<T> = Assessment<T> & {
  /** The candidate chosen at random among `usable`; undefined when none is usable. */
  choice: T | undefined;
  status: BlocklistStatus;
};

export type BlocklistClient = {
  /** Whether a ban on `ip` is in force now (false while failed-open). Ignores panic. */
  isBlocked(ip: string): boolean;
  /** The entry blocking `ip` now, if any. */
  banOf(ip: string): BlocklistEntry | undefined;
  /** The candidates that may get work: the healthy ones, or all of them in panic. */
  filterHealthy<T extends Candidate>(candidates: readonly T[]): T[];
  /** One usable candidate, at random; undefined only for an empty pool (or all blocked with panic off). */
  pick<T extends Candidate>(candidates: readonly T[]): T | undefined;
  /** pick() with its reasons: what was blocked and by which ban, panic, list status. */
  decide<T extends Candidate>(candidates: readonly T[]): Decision<T>;
  state(): BlocklistClientState;
  /** Polls once now; concurrent calls share one request. Never rejects. */
  refresh(): Promise<RefreshResult>;
  /** Polls now and then every refreshMs (±10 % jitter) until stop(). */
  start(): void;
  /** Stops polling and aborts a poll in flight; the cached list stays usable. */
  stop(): Promise<void>;
  /**
   * Resolves once the first poll has settled (polling once if nothing has
   * started one), or after `timeoutMs` (default: the poll timeout + 1 s). Never
   * rejects: check `status` in the returned state.
   */
  ready(options?: { timeoutMs?: number }): Promise<BlocklistClientState>;
  /** The list in use, to save and hand back as the `snapshot` option; null before any. */
  snapshot(): BlocklistSnapshot | null;
};

type PollFailure = Omit<RefreshError, 'at'>;

/** Polls are spread ±10 % around refreshMs. */
const POLL_JITTER = 0.1;

const failure = (
  kind: RefreshErrorKind,
  message: string,
  status: number | null = null,
): PollFailure => ({
  kind,
  message,
  status,
});

/**
 * Creates a blocklist client for a dispatcher. Every option is validated here
 * and a mistake throws BlocklistClientOptionsError naming it. Defaults:
 * refreshMs 10 s, maxStaleMs 10 min, timeoutMs 5 s, minHealthyShare 0.5.
 *
 * @example
 * const blocklist = createBlocklistClient({
 *   url: process.env.RELAYWATCH_URL,
 *   token: process.env.RELAYWATCH_READER_TOKEN,
 * });
 * blocklist.start();
 * await blocklist.ready();
 * const agent = blocklist.pick([
 *   { url: 'http://10.0.0.7:7001', ip: '203.0.113.7' },
 *   { url: 'http://10.0.0.8:7001', ip: '203.0.113.8' },
 * ]);
 */
export function createBlocklistClient(
  options: BlocklistClientOptions,
): BlocklistClient {
  const config: ResolvedOptions = resolveOptions(options);
  const { logger, now } = config;
  // The longest a healthy poller leaves a list unconfirmed: the jittered interval plus a slow answer.
  const overdueMs =
    Math.ceil(config.refreshMs * (1 + POLL_JITTER)) + config.timeoutMs;

  let list: CachedList | undefined;
  let etag: string | null = null;
  let lastSuccessAt: number | null = null;
  let lastAttemptAt: number | null = null;
  let lastAttemptFailed = false;
  let lastError: RefreshError | null = null;
  let consecutiveFailures = 0;
  let panic = false;
  let inFlight: Promise<RefreshResult> | undefined;
  let settledOnce = false;
  const settleWaiters: Array<() => void> = [];
  let polling = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopController = new AbortController();
  // The status last written to the log, so that transitions are logged once.
  let reportedStatus: BlocklistStatus | undefined;

  if (config.snapshot !== undefined) {
    const built = buildCachedList(config.snapshot.blocklist);
    if (built.ok) {
      list = built.list;
      etag = config.snapshot.etag;
      // A snapshot dated in the future (clock skew) must not stay fresh forever.
      lastSuccessAt = Math.min(Date.parse(config.snapshot.fetchedAt), now());
    } else {
      logger.warn('ignoring a saved blocklist that cannot be read', {
        problem: built.message,
      });
    }
  }

  function statusAt(at: number): BlocklistStatus {
    if (list === undefined || lastSuccessAt === null) return 'failed-open';
    const age = at - lastSuccessAt;
    if (age > config.maxStaleMs) return 'failed-open';
    // Overdue counts as stale too: a list nobody has confirmed lately is no longer fresh.
    if (lastAttemptFailed || age > overdueMs) return 'stale';
    return 'fresh';
  }

  /** Logs each change of status once; called wherever the status is read. */
  function noteStatus(at: number): BlocklistStatus {
    const status = statusAt(at);
    // Before the first attempt "failed-open" only means "not loaded yet"; nothing to report.
    if (
      status === reportedStatus ||
      (lastAttemptAt === null && reportedStatus === undefined)
    )
      return status;
    const fields = {
      status,
      previousStatus: reportedStatus ?? null,
      lastSuccessAt:
        lastSuccessAt === null ? null : new Date(lastSuccessAt).toISOString(),
      ageMs: lastSuccessAt === null ? null : at - lastSuccessAt,
      maxStaleMs: config.maxStaleMs,
      lastError: lastError && {
        kind: lastError.kind,
        status: lastError.status,
        message: lastError.message,
      },
    };
    reportedStatus = status;
    if (status === 'fresh') logger.info('blocklist is fresh', fields);
    else if (status === 'stale')
      logger.warn(
        'blocklist is stale: using the last good list (fail-static)',
        fields,
      );
    else
      logger.error(
        lastSuccessAt === null
          ? 'no blocklist loaded: failing open, nothing is treated as blocked'
          : 'blocklist older than maxStaleMs: failing open, nothing is treated as blocked',
        fields,
      );
    return status;
  }

  function banAt(ip: string, at: number): BlocklistEntry | undefined {
    if (list === undefined || noteStatus(at) === 'failed-open')
      return undefined;
    const ban = activeBanOf(list, ip, at);
    if (ban === undefined) return undefined;
    const { untilMs: _untilMs, ...entry } = ban;
    return entry;
  }

  function state(): BlocklistClientState {
    const at = now();
    return {
      status: noteStatus(at),
      lastSuccessAt,
      lastAttemptAt,
      ageMs: lastSuccessAt === null ? null : at - lastSuccessAt,
      lastError,
      consecutiveFailures,
      etag,
      generatedAt: list?.response.generatedAt ?? null,
      activeEntries: list === undefined ? 0 : countActive(list, at),
      panic,
      polling,
    };
  }

  function decide<T extends Candidate>(candidates: readonly T[]): Decision<T> {
    const at = now();
    const assessment = assessCandidates({
      candidates,
      banOf: (ip) => banAt(ip, at),
      minHealthyShare: config.minHealthyShare,
    });
    if (assessment.panic !== panic) {
      const fields = {
        candidates: candidates.length,
        healthy: assessment.healthy.length,
        blocked: assessment.blocked.map(({ ban }) => ban.ip),
        minHealthyShare: config.minHealthyShare,
      };
      if (assessment.panic)
        logger.warn(
          'panic: too few healthy candidates, using blocked ones too',
          fields,
        );
      else logger.info('panic over: using healthy candidates only', fields);
    }
    panic = assessment.panic;
    const { usable } = assessment;
    // min() guards a random() that returns exactly 1.
    const choice =
      usable.length === 0
        ? undefined
        : usable[
            Math.min(
              Math.floor(config.random() * usable.length),
              usable.length - 1,
            )
          ];
    return { ...assessment, choice, status: statusAt(at) };
  }

  async function poll(
    stopSignal: AbortSignal,
  ): Promise<
    { ok: true; updated: boolean } | { ok: false; failure: PollFailure }
  > {
    const headers: Record<string, string> = {
      authorization: `Bearer ${config.token}`,
      accept: 'application/json',
    };
    if (etag !== null && list !== undefined) headers['if-none-match'] = etag;
    const timeout = AbortSignal.timeout(config.timeoutMs);
    const signal = AbortSignal.any([timeout, stopSignal]);
    let response: Response;
    try {
      // A redirect is answered as an HTTP failure rather than followed with the token attached.
      response = await config.fetch(config.blocklistUrl, {
        method: 'GET',
        headers,
        signal,
        redirect: 'manual',
      });
    } catch (error) {
      if (timeout.aborted)
        return {
          ok: false,
          failure: failure(
            'timeout',
            `no answer within ${config.timeoutMs} ms`,
          ),
        };
      return { ok: false, failure: failure('network', errorMessage(error)) };
    }
    try {
      if (response.status === 304) {
        await response.body?.cancel();
        if (list === undefined)
          return {
            ok: false,
            failure: failure('invalid', '304 without a cached list', 304),
          };
        return { ok: true, updated: false };
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        const kind =
          response.status === 401 || response.status === 403 ? 'auth' : 'http';
        return {
          ok: false,
          failure: failure(kind, `HTTP ${response.status}`, response.status),
        };
      }
      const parsed = parseWith(
        blocklistResponseSchema,
        JSON.parse(await response.text()),
      );
      if (!parsed.ok) {
        const issue = parsed.issues[0];
        const where = issue?.path ?? '(body)';
        return {
          ok: false,
          failure: failure('invalid', `${where}: ${issue?.message}`, 200),
        };
      }
      const built = buildCachedList(parsed.value);
      if (!built.ok)
        return { ok: false, failure: failure('invalid', built.message, 200) };
      list = built.list;
      etag = response.headers.get('etag');
      return { ok: true, updated: true };
    } catch (error) {
      if (timeout.aborted)
        return {
          ok: false,
          failure: failure(
            'timeout',
            `body not read within ${config.timeoutMs} ms`,
          ),
        };
      if (error instanceof SyntaxError)
        return {
          ok: false,
          failure: failure('invalid', 'body is not JSON', 200),
        };
      return { ok: false, failure: failure('network', errorMessage(error)) };
    }
  }

  async function runRefresh(): Promise<RefreshResult> {
    const startedAt = now();
    const stopSignal = stopController.signal;
    const result = await poll(stopSignal);
    const at = now();
    lastAttemptAt = startedAt;
    if (stopSignal.aborted && !result.ok) {
      // Aborted by stop(): not an outage, so no failure is recorded.
      return settle({ outcome: 'failed', error: null, state: state() });
    }
    let error: RefreshError | null = null;
    if (result.ok) {
      lastSuccessAt = at;
      lastAttemptFailed = false;
      consecutiveFailures = 0;
    } else {
      error = { ...result.failure, at };
      lastError = error;
      lastAttemptFailed = true;
      consecutiveFailures++;
      const fields = {
        kind: error.kind,
        httpStatus: error.status,
        error: error.message,
        consecutiveFailures,
        lastSuccessAt:
          lastSuccessAt === null ? null : new Date(lastSuccessAt).toISOString(),
      };
      if (error.kind === 'auth') {
        // Loud on purpose: a revoked or mistyped token is an outage that a human must fix.
        logger.error(
          `status center refused the reader token (HTTP ${error.status}); treating it as an outage, not as an empty list`,
          fields,
        );
      } else {
        logger.warn(
          list === undefined
            ? 'blocklist refresh failed; no list loaded yet'
            : 'blocklist refresh failed; keeping the last good list',
          fields,
        );
      }
    }
    return settle({
      outcome: result.ok
        ? result.updated
          ? 'updated'
          : 'not-modified'
        : 'failed',
      error,
      state: state(),
    });
  }

  /** Wakes ready() callers once a poll has finished, whatever its outcome. */
  function settle(result: RefreshResult): RefreshResult {
    settledOnce = true;
    for (const wake of settleWaiters.splice(0)) wake();
    return result;
  }

  function refresh(): Promise<RefreshResult> {
    inFlight ??= runRefresh().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function schedule(): void {
    if (!polling) return;
    // Jitter keeps a fleet of dispatchers from polling in lockstep after an outage.
    const delay = Math.round(
      config.refreshMs * (1 - POLL_JITTER + 2 * POLL_JITTER * config.random()),
    );
    timer = setTimeout(() => {
      void refresh().then(schedule);
    }, delay);
    // A library timer must not keep the host process alive.
    timer.unref?.();
  }

  return {
    isBlocked: (ip) => banAt(ip, now()) !== undefined,
    banOf: (ip) => banAt(ip, now()),
    filterHealthy: (candidates) => decide(candidates).usable,
    pick: (candidates) => decide(candidates).choice,
    decide,
    state,
    refresh,
    start() {
      if (polling) return;
      polling = true;
      void refresh().then(schedule);
    },
    async stop() {
      polling = false;
      clearTimeout(timer);
      const stopping = stopController;
      // A fresh controller, so that a manual refresh() after stop() still works.
      stopController = new AbortController();
      stopping.abort();
      await inFlight;
    },
    async ready(readyOptions = {}) {
      // One second past the poll timeout, so a hanging first poll times out on its own first.
      const timeoutMs = readyOptions.timeoutMs ?? config.timeoutMs + 1_000;
      if (settledOnce) return state();
      if (inFlight === undefined) void refresh();
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(wait);
          resolve();
        };
        const wait = setTimeout(() => {
          const index = settleWaiters.indexOf(wake);
          if (index >= 0) settleWaiters.splice(index, 1);
          resolve();
        }, timeoutMs);
        settleWaiters.push(wake);
      });
      return state();
    },
    snapshot() {
      if (list === undefined || lastSuccessAt === null) return null;
      return {
        fetchedAt: new Date(lastSuccessAt).toISOString(),
        etag,
        blocklist: list.response,
      };
    },
  };
}

function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch wraps the useful part ("connect ECONNREFUSED 127.0.0.1:9") in `cause`.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

export type { BlocklistEntry, BlocklistResponse };
