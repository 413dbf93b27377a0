/**
 * One relay job: runs its ffmpeg, watches progress and stderr, classifies
 * every run, and restarts a failed run with backoff until the job is stopped.
 * When the relay starts, stalls or loses its input, a bounded TCP connect to
 * the origin's host:port tells a broken path (connect_failed) and a refusing
 * origin (origin_error) apart at once, where ffmpeg would only say `error`.
 */

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { backoffDelay } from '#contract/backoff';
import type { Logger } from '#contract/log';
import type { Classification, RunEnding } from './classify.js';
import {
  classifyRelay,
  mayBeTheOrigin,
  originCheckVerdict,
} from './classify.js';
import type { AgentConfig } from './config.js';
import { buildFfmpegArgs, PROGRESS_FD } from './ffmpeg-args.js';
import type { RelayJob } from './job.js';
import { redactUrl } from './job.js';
import type { ProbeResult } from './probes.js';
import { originTarget, probeTcp } from './probes.js';
import type { ProgressBlock } from './progress.js';
import {
  createLineSplitter,
  createLineTail,
  createProgressParser,
} from './progress.js';

/** stderr lines kept per run: the deciding lines are the last ones. */
const STDERR_TAIL_LINES = 100;
/** After SIGKILL, stop waiting for "close" (a zombie must not hang DELETE). */
const KILL_WAIT_MS = 2_000;

/** The settings one relay runs with: a slice of the agent's configuration. */
export type RelaySettings = Pick<
  AgentConfig,
  | 'ffmpegPath'
  | 'ioTimeoutMs'
  | 'progressPeriodMs'
  | 'stallCheckMs'
  | 'stallTimeoutMs'
  | 'startupTimeoutMs'
  | 'retryMinMs'
  | 'retryMaxMs'
  | 'stopGraceMs'
  | 'originCheckTimeoutMs'
>;

export type RelayStatus = Classification & { since: number };

/** `starting` until the first frame or failure; then `flowing` while the status is ok, `failing` otherwise. */
export type RelayState = 'starting' | 'flowing' | 'failing';

/** How a relay's life began: frames, a failure before any frame, or a stop before either. */
export type FirstOutcome =
  | { kind: 'flowing' }
  | { kind: 'failed'; status: RelayStatus }
  | { kind: 'stopped' };

export type RelayView = {
  id: string;
  source: string;
  target: string;
  state: RelayState;
  status: RelayStatus['status'] | 'starting';
  cause?: string;
  detail?: string;
  since?: string;
  runs: number;
  pid?: number;
};

export type Relay = {
  job: RelayJob;
  /** The latest classification; undefined until the first run shows a frame or fails. */
  current(): RelayStatus | undefined;
  view(): RelayView;
  /** Settles once with the first outcome; later failures and recoveries do not change it. */
  firstOutcome: Promise<FirstOutcome>;
  /** Stops ffmpeg (SIGTERM, then SIGKILL after the grace) and never restarts it. */
  stop(): Promise<void>;
};

export function startRelay(options: {
  job: RelayJob;
  settings: RelaySettings;
  log: Logger;
  /** Called when the status (not just the detail) changes. */
  onStatusChange: (relay: Relay) => void;
  /** Called with the status of every origin check (for the agent's metrics). */
  onOriginCheck?: (status: string) => void;
  random?: () => number;
  now?: () => number;
}): Relay {
  const { job, settings, log } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const logFields = {
    relay: job.id,
    source: redactUrl(job.source),
    target: redactUrl(job.target),
  };

  let current: RelayStatus | undefined;
  let child: ChildProcess | undefined;
  let stopping = false;
  let runs = 0;
  let failuresInARow = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: Promise<void> | undefined;
  let settleFirst: (outcome: FirstOutcome) => void = () => undefined;
  const firstOutcome = new Promise<FirstOutcome>((resolve) => {
    settleFirst = resolve;
  });
  const origin = originTarget(job.source);
  const checkOrigin = async (): Promise<ProbeResult | undefined> =>
    origin === undefined
      ? undefined
      : probeTcp(origin, {
          timeoutMs: settings.originCheckTimeoutMs,
          now,
        }).then((check) => {
          options.onOriginCheck?.(check.status);
          return check;
        });

  const relay: Relay = {
    job,
    current: () => current,
    view: () => ({
      id: job.id,
      source: job.source,
      target: job.target,
      state:
        current === undefined
          ? 'starting'
          : current.status === 'ok'
            ? 'flowing'
            : 'failing',
      status: current?.status ?? 'starting',
      ...(current
        ? {
            cause: current.cause,
            detail: current.detail,
            since: new Date(current.since).toISOString(),
          }
        : {}),
      runs,
      ...(child?.pid !== undefined && child.exitCode === null
        ? { pid: child.pid }
        : {}),
    }),
    firstOutcome,
    stop: () => {
      stopped ??= stop();
      return stopped;
    },
  };

  function setStatus(classification: Classification): void {
    const first = current === undefined;
    const changed = current?.status !== classification.status;
    current = {
      ...classification,
      since: changed || current === undefined ? now() : current.since,
    };
    if (first)
      settleFirst(
        classification.status === 'ok'
          ? { kind: 'flowing' }
          : { kind: 'failed', status: current },
      );
    if (changed) {
      log.info('relay status', {
        ...logFields,
        status: classification.status,
        cause: classification.cause,
        detail: classification.detail,
      });
      options.onStatusChange(relay);
    }
  }

  function run(): void {
    restartTimer = undefined;
    if (stopping) return;
    runs++;
    const startedAt = now();
    const tail = createLineTail(STDERR_TAIL_LINES);
    let progressed = false;
    let lastAdvanceAt = startedAt;
    let lastBlock: ProgressBlock | undefined;
    let watchdogEnding: RunEnding | undefined;
    let spawnError: string | undefined;
    /**
     * The origin check made since progress last stopped; cleared when progress
     * resumes. Until then it tells why this run is failing.
     */
    let stallCheck: Promise<ProbeResult | undefined> | undefined;

    const args = buildFfmpegArgs({
      source: job.source,
      target: job.target,
      timeouts: settings,
    });
    const ffmpeg = spawn(settings.ffmpegPath, args, {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    child = ffmpeg;
    log.debug('relay run', { ...logFields, run: runs, pid: ffmpeg.pid });

    const stderr = createLineSplitter((line) => tail.add(line));
    ffmpeg.stderr
      ?.setEncoding('utf8')
      .on('data', (chunk: string) => stderr.push(chunk));
    const progress = createProgressParser((block) => {
      const advanced =
        lastBlock === undefined
          ? block.frame > 0 || block.outTimeUs > 0
          : block.frame > lastBlock.frame ||
            block.outTimeUs > lastBlock.outTimeUs;
      lastBlock = block;
      if (!advanced || block.end) return;
      progressed = true;
      lastAdvanceAt = now();
      stallCheck = undefined;
      setStatus(
        classifyRelay({
          source: job.source,
          target: job.target,
          lines: [],
          progressed,
          ending: {
            kind: 'streaming',
            frame: block.frame,
            outTimeUs: block.outTimeUs,
            speed: block.speed,
          },
        }),
      );
    });
    (ffmpeg.stdio[PROGRESS_FD] as Readable | null)
      ?.setEncoding('utf8')
      .on('data', (chunk: string) => progress.push(chunk));

    // ffmpeg waits forever on some failures; only an outside clock ends them.
    const watchdog = setInterval(
      () => {
        if (watchdogEnding !== undefined || stopping) return;
        const at = now();
        if (
          progressed &&
          stallCheck === undefined &&
          at - lastAdvanceAt > settings.stallCheckMs
        ) {
          stallCheck = checkOrigin();
          void checkStall(lastAdvanceAt, stallCheck);
        }
        if (progressed && at - lastAdvanceAt > settings.stallTimeoutMs) {
          watchdogEnding = { kind: 'stalled', silentMs: at - lastAdvanceAt };
        } else if (!progressed && at - startedAt > settings.startupTimeoutMs) {
          watchdogEnding = { kind: 'no_start', waitedMs: at - startedAt };
        }
        if (watchdogEnding !== undefined) ffmpeg.kill('SIGKILL');
      },
      Math.min(1_000, settings.progressPeriodMs),
    );

    /**
     * Progress stopped before the stall timeout: ask the origin now. Only a
     * failed connect is reported (a slow or bursty input still connects), and
     * ffmpeg keeps running, so progress that resumes reports ok again.
     */
    async function checkStall(
      since: number,
      pending: Promise<ProbeResult | undefined>,
    ): Promise<void> {
      const check = await pending;
      // Progress resumed, or the run ended: the answer no longer describes this stall.
      if (
        check === undefined ||
        stopping ||
        child !== ffmpeg ||
        lastAdvanceAt !== since
      )
        return;
      const stalled = {
        status: 'error' as const,
        cause: 'stalled',
        detail: `no progress for ${((now() - since) / 1000).toFixed(1)} s`,
      };
      const verdict = originCheckVerdict(check, stalled);
      if (verdict !== undefined) setStatus(verdict);
      else
        log.debug('relay stalled; origin check passed', {
          ...logFields,
          run: runs,
          check: check.status,
          detail: stalled.detail,
        });
    }

    ffmpeg.on('error', (error) => {
      spawnError = error.message;
    });
    ffmpeg.on('close', (code, signal) => {
      clearInterval(watchdog);
      stderr.end();
      progress.end();
      child = undefined;
      if (stopping) return;
      const ending: RunEnding =
        spawnError !== undefined
          ? { kind: 'spawn_failed', message: spawnError }
          : (watchdogEnding ?? { kind: 'exited', code, signal });
      const said = classifyRelay({
        source: job.source,
        target: job.target,
        lines: tail.lines(),
        progressed,
        ending,
      });
      if (!mayBeTheOrigin(said)) {
        ended(said);
        return;
      }
      // ffmpeg cannot tell a broken path from an origin that went away: the
      // restart waits for the check. When the path came back meanwhile, this
      // check connects and proves nothing; the check made during the stall
      // that ended the run (even one still under way) then still explains it.
      void Promise.all([checkOrigin(), stallCheck]).then(([check, earlier]) =>
        ended(
          (check && originCheckVerdict(check, said)) ??
            (earlier && originCheckVerdict(earlier, said)) ??
            said,
        ),
      );
    });

    function ended(classification: Classification): void {
      if (stopping) return;
      log.warn('relay run ended', {
        ...logFields,
        run: runs,
        exitCode: ffmpeg.exitCode,
        signal: ffmpeg.signalCode,
        ranMs: now() - startedAt,
        status: classification.status,
        cause: classification.cause,
        detail: classification.detail,
      });
      setStatus(classification);
      // A run that streamed was healthy: start the backoff over.
      failuresInARow = progressed ? 0 : failuresInARow + 1;
      const delay = backoffDelay({
        attempt: Math.max(0, failuresInARow - 1),
        minMs: settings.retryMinMs,
        maxMs: settings.retryMaxMs,
        random,
      });
      restartTimer = setTimeout(run, delay);
    }
  }

  async function stop(): Promise<void> {
    stopping = true;
    settleFirst({ kind: 'stopped' });
    if (restartTimer) clearTimeout(restartTimer);
    const running = child;
    if (
      running === undefined ||
      running.exitCode !== null ||
      running.signalCode !== null
    )
      return;
    await new Promise<void>((resolve) => {
      let killTimer: NodeJS.Timeout | undefined;
      let giveUpTimer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(killTimer);
        clearTimeout(giveUpTimer);
        resolve();
      };
      running.once('close', done);
      killTimer = setTimeout(() => {
        log.warn('relay ignored SIGTERM; killing', {
          ...logFields,
          pid: running.pid,
        });
        running.kill('SIGKILL');
        giveUpTimer = setTimeout(done, KILL_WAIT_MS);
      }, settings.stopGraceMs);
      running.kill('SIGTERM');
    });
    log.info('relay stopped', logFields);
  }

  run();
  // Alongside the first run: an origin this machine cannot reach is known in
  // seconds, whatever ffmpeg's own connect timeout for the protocol is.
  void checkOrigin().then((check) => {
    if (check === undefined || stopping || current !== undefined) return;
    const verdict = originCheckVerdict(check);
    if (verdict !== undefined) setStatus(verdict);
  });
  return relay;
}
