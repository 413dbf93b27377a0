/**
 * One relay job: runs its ffmpeg, watches progress and stderr, classifies
 * every run, and restarts a failed run with backoff until the job is stopped.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { backoffDelay } from './backoff.js';
import { classifyRelay } from './classify.js';
import type { Classification, RunEnding } from './classify.js';
import { buildFfmpegArgs, PROGRESS_FD } from './ffmpeg-args.js';
import { redactUrl } from './job.js';
import type { RelayJob } from './job.js';
import type { Logger } from '../../functions/log.js';
import { createLineSplitter, createLineTail, createProgressParser } from './progress.js';
import type { ProgressBlock } from './progress.js';
import type { AgentConfig } from './config.js';

/** stderr lines kept per run: the deciding lines are the last ones. */
const STDERR_TAIL_LINES = 100;
/** After SIGKILL, stop waiting for "close" (a zombie must not hang DELETE). */
const KILL_WAIT_MS = 2_000;

/** The settings one relay runs with: a slice of the agent's configuration. */
export type RelaySettings = Pick<
  AgentConfig,
  'ffmpegPath' | 'ioTimeoutMs' | 'progressPeriodMs' | 'stallTimeoutMs' | 'startupTimeoutMs' | 'retryMinMs' | 'retryMaxMs' | 'stopGraceMs'
>;

export type RelayStatus = Classification & { since: number };

export type RelayView = {
  id: string;
  source: string;
  target: string;
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
  /** Stops ffmpeg (SIGTERM, then SIGKILL after the grace) and never restarts it. */
  stop(): Promise<void>;
};

export function startRelay(options: {
  job: RelayJob;
  settings: RelaySettings;
  log: Logger;
  /** Called when the status (not just the detail) changes. */
  onStatusChange: (relay: Relay) => void;
  random?: () => number;
  now?: () => number;
}): Relay {
  const { job, settings, log } = options;
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const logFields = { relay: job.id, source: redactUrl(job.source), target: redactUrl(job.target) };

  let current: RelayStatus | undefined;
  let child: ChildProcess | undefined;
  let stopping = false;
  let runs = 0;
  let failuresInARow = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopped: Promise<void> | undefined;

  const relay: Relay = {
    job,
    current: () => current,
    view: () => ({
      id: job.id,
      source: job.source,
      target: job.target,
      status: current?.status ?? 'starting',
      ...(current ? { cause: current.cause, detail: current.detail, since: new Date(current.since).toISOString() } : {}),
      runs,
      ...(child?.pid !== undefined && child.exitCode === null ? { pid: child.pid } : {}),
    }),
    stop: () => {
      stopped ??= stop();
      return stopped;
    },
  };

  function setStatus(classification: Classification): void {
    const changed = current?.status !== classification.status;
    current = { ...classification, since: changed || current === undefined ? now() : current.since };
    if (changed) {
      log.info('relay status', { ...logFields, status: classification.status, cause: classification.cause, detail: classification.detail });
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

    const args = buildFfmpegArgs({ source: job.source, target: job.target, timeouts: settings });
    const ffmpeg = spawn(settings.ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    child = ffmpeg;
    log.debug('relay run', { ...logFields, run: runs, pid: ffmpeg.pid });

    const stderr = createLineSplitter((line) => tail.add(line));
    ffmpeg.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
    const progress = createProgressParser((block) => {
      const advanced =
        lastBlock === undefined
          ? block.frame > 0 || block.outTimeUs > 0
          : block.frame > lastBlock.frame || block.outTimeUs > lastBlock.outTimeUs;
      lastBlock = block;
      if (!advanced || block.end) return;
      progressed = true;
      lastAdvanceAt = now();
      setStatus(classifyRelay({
        source: job.source,
        target: job.target,
        lines: [],
        progressed,
        ending: { kind: 'streaming', frame: block.frame, outTimeUs: block.outTimeUs, speed: block.speed },
      }));
    });
    (ffmpeg.stdio[PROGRESS_FD] as Readable | null)?.setEncoding('utf8').on('data', (chunk: string) => progress.push(chunk));

    // ffmpeg waits forever on some failures; only an outside clock ends them.
    const watchdog = setInterval(() => {
      if (watchdogEnding !== undefined || stopping) return;
      const at = now();
      if (progressed && at - lastAdvanceAt > settings.stallTimeoutMs) {
        watchdogEnding = { kind: 'stalled', silentMs: at - lastAdvanceAt };
      } else if (!progressed && at - startedAt > settings.startupTimeoutMs) {
        watchdogEnding = { kind: 'no_start', waitedMs: at - startedAt };
      }
      if (watchdogEnding !== undefined) ffmpeg.kill('SIGKILL');
    }, Math.min(1_000, settings.progressPeriodMs));

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
      const classification = classifyRelay({ source: job.source, target: job.target, lines: tail.lines(), progressed, ending });
      log.warn('relay run ended', {
        ...logFields,
        run: runs,
        exitCode: code,
        signal,
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
    });
  }

  async function stop(): Promise<void> {
    stopping = true;
    if (restartTimer) clearTimeout(restartTimer);
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return;
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
        log.warn('relay ignored SIGTERM; killing', { ...logFields, pid: running.pid });
        running.kill('SIGKILL');
        giveUpTimer = setTimeout(done, KILL_WAIT_MS);
      }, settings.stopGraceMs);
      running.kill('SIGTERM');
    });
    log.info('relay stopped', logFields);
  }

  run();
  return relay;
}
