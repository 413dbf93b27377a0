/**
 * How long a healthy relay's progress pauses: the figure behind the agent's
 * --stall-check default. Prints a table and asserts nothing; never part of
 * npm test. Run it on an idle machine and again under load, e.g. while
 * `stress-ng --cpu 2` runs:
 *
 *   npx tsx test/bench/progress-gaps.ts [seconds]      (default 60)
 *
 * What runs: the agent's exact ffmpeg command line (progress every second, as
 * by default) for relays from a paced HTTP test origin and from nginx-rtmp fed
 * by a looping publisher, all on loopback, pushing into a test sink. For each
 * relay it prints the number of progress blocks that advanced and the gaps
 * between two advances (median, p99, max). A gap longer than --stall-check
 * makes the agent check the origin; a connect that succeeds ends the check
 * without a report, so such a gap costs one TCP connect, never a false status.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  buildFfmpegArgs,
  PROGRESS_FD,
} from '../../clients/agent/ffmpeg-args.js';
import { createProgressParser } from '../../clients/agent/progress.js';
import {
  createTestFlv,
  startOrigin,
  startSink,
} from '../../clients/test-stream/media.js';
import { startRtmpOrigin } from '../helpers/nginx-rtmp.js';

const RELAYS_PER_KIND = 2;
const PUBLISHER_WARMUP_MS = 1_500;

async function relayGaps(
  source: string,
  target: string,
  durationMs: number,
): Promise<number[]> {
  const args = buildFfmpegArgs({
    source,
    target,
    timeouts: { ioTimeoutMs: 10_000, progressPeriodMs: 1_000 },
  });
  const child = spawn('ffmpeg', args, {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  const advances: number[] = [];
  let last: { frame: number; outTimeUs: number } | undefined;
  const parser = createProgressParser((block) => {
    const advanced =
      last === undefined
        ? block.frame > 0
        : block.frame > last.frame || block.outTimeUs > last.outTimeUs;
    last = block;
    if (advanced) advances.push(performance.now());
  });
  (child.stdio[PROGRESS_FD] as Readable)
    .setEncoding('utf8')
    .on('data', (chunk: string) => parser.push(chunk));
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('close', resolve));
  // The first gap includes the connect and the first keyframe: that is the start, not a stall.
  return advances.slice(1).map((at, i) => at - (advances[i] ?? at));
}

function quantile(sorted: number[], q: number): number {
  return (
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ??
    Number.NaN
  );
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 60);
  const dir = await mkdtemp(join(tmpdir(), 'relaywatch-gaps-'));
  const flvPath = await createTestFlv({ dir });
  const origin = await startOrigin({ flvPath });
  const sink = await startSink();
  const rtmp = await startRtmpOrigin({ dir });
  try {
    rtmp.publish('bench', flvPath);
    await new Promise((resolve) => setTimeout(resolve, PUBLISHER_WARMUP_MS));
    const relays = [
      ...Array.from({ length: RELAYS_PER_KIND }, (_, i) => ({
        kind: 'http',
        source: origin.url('/live.flv'),
        i,
      })),
      ...Array.from({ length: RELAYS_PER_KIND }, (_, i) => ({
        kind: 'rtmp',
        source: rtmp.url('bench'),
        i,
      })),
    ];
    const results = await Promise.all(
      relays.map(async (relay) => ({
        relay: `${relay.kind}-${relay.i}`,
        gaps: await relayGaps(
          relay.source,
          sink.url(`/bench/${relay.kind}-${relay.i}.flv`),
          seconds * 1000,
        ),
      })),
    );
    console.log(
      `progress gaps of healthy relays over ${seconds} s (progress period 1 s)`,
    );
    console.log('relay     advances  median ms  p99 ms  max ms');
    for (const { relay, gaps } of results) {
      const sorted = [...gaps].sort((a, b) => a - b);
      const cells = [
        quantile(sorted, 0.5),
        quantile(sorted, 0.99),
        sorted.at(-1) ?? Number.NaN,
      ].map((ms) => String(Math.round(ms)).padStart(8));
      console.log(
        `${relay.padEnd(9)} ${String(gaps.length + 1).padStart(8)} ${cells.join(' ')}`,
      );
    }
  } finally {
    await rtmp.stop();
    await Promise.all([origin.stop(), sink.stop()]);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
