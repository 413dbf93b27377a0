/**
 * npm run bench: relaywatch's cost and speed figures on this machine. It
 * prints tables and asserts nothing; it is never part of npm test.
 *
 * What runs: DynamoDB Local on a free port, a metering proxy in front of it
 * that adds ReturnConsumedCapacity=TOTAL to every data-plane call and adds up
 * what DynamoDB reports, and the real local status center (gateway → middy
 * chain → handlers) pointed at the proxy. Everything is stopped at the end.
 *
 * How to read the output:
 *
 *  (a) Ingest. One row per batch shape: `requests` POSTs sent one after the
 *      other through the local gateway. `median`/`p95` are client-side request
 *      times in ms (HTTP + validation + tally + BatchWriteItem on DynamoDB
 *      Local, which is slower than DynamoDB itself; compare rows, not absolute
 *      numbers). `rows/req` is the heartbeat rows written per request, one per
 *      distinct (minute, ip): pre-combination makes it independent of the
 *      number of heartbeats. `WRU/req` is the write units DynamoDB reported per
 *      request (on-demand write request units; 1 per row under 1 KB), and
 *      `WRU/1k hb` the same per thousand heartbeats: the cost per heartbeat
 *      falls as batches grow, because cost follows requests and IPs, not
 *      heartbeats. A design storing one item per heartbeat would show 1000.
 *
 *  (b) Aggregation. Each run decides one complete minute in which `ips`
 *      machines reported (a few of them failing, so bans are written). `ms` is
 *      the run's wall time, `queries`/`gets`/`RRU` the reads (every shard of
 *      the minutes it reads, bans, offenses, state), `WRU` the writes (bans,
 *      events, offenses, aggregator state, fleet snapshot), `decisions` what it
 *      decided. The first run bans the failing machines; later runs find them
 *      banned already, so they show the steady cost of a quiet minute.
 *
 *  (c) Bundles. Each handler bundled the way the CDK stack ships it (esbuild,
 *      ESM, minified, node22, SDK bundled). `KB` is the bundle, `gzip KB`
 *      roughly what the zip adds, `import ms` the median time a fresh Node 22
 *      process takes to import() it: the module part of a Lambda cold start
 *      (the runtime is built at import; no network call is made).
 */
import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { getOrInsert } from '../../functions/core/maps.js';
import {
  minuteClosesAt,
  minuteOf,
  minuteStart,
} from '../../functions/core/minutes.js';
import { createLogger } from '../../functions/log.js';
import { createDocumentClient } from '../../functions/store/client.js';
import type { DynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import type { LocalStatusCenter } from '../../infra/local/status-center.js';
import { startLocalStatusCenter } from '../../infra/local/status-center.js';
import { ensureTable } from '../../infra/local/table.js';
import type { MeteringProxy } from '../helpers/metering-proxy.js';
import { startMeteringProxy } from '../helpers/metering-proxy.js';
import {
  BAN_WRITE_HEADERS,
  BAN_WRITE_PATHS,
  benchBanWritePaths,
} from './ban-write-paths.js';
import type { FleetRunOptions, FleetTarget } from './fleet.js';
import {
  AGGREGATE_MEMORY_MB,
  benchFleet,
  benchPolicy,
  FLEET_HEADERS,
  POLICY_HEADERS,
} from './fleet.js';
import { benchInMemory } from './in-memory.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE22 = join(ROOT, 'node_modules/.bin/node');

/** Requests per ingest shape; bounded so the whole run stays well under two minutes. */
const INGEST_SHAPES = [
  { label: '1 hb, 1 ip', heartbeats: 1, ips: 1, requests: 150 },
  { label: '100 hb, 1 ip', heartbeats: 100, ips: 1, requests: 100 },
  { label: '500 hb, 1 ip', heartbeats: 500, ips: 1, requests: 60 },
  { label: '500 hb, 50 ips', heartbeats: 500, ips: 50, requests: 30 },
  // An agent's periodic report at its defaults: 100 relays over 100 origin hosts, each origin probed, 3 canaries.
  {
    label: 'report 100 relays/100 origins',
    heartbeats: 203,
    ips: 1,
    requests: 60,
    report: true,
  },
] as const;
const WARMUP_REQUESTS = 20;
const AGGREGATION = { ips: 200, heartbeatsPerIp: 20, failingIps: 6, runs: 5 };
const IMPORTS_PER_HANDLER = 5;
const GRACE_SECONDS = 10;

const progress = (text: string) => process.stdout.write(`… ${text}\n`);

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[
      Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
    ] ?? Number.NaN
  );
}
const median = (values: readonly number[]) => quantile(values, 0.5);

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [
    headers,
    ...rows.map((row) =>
      row.map((cell) => (typeof cell === 'number' ? format(cell) : cell)),
    ),
  ];
  const widths = headers.map((_, i) =>
    Math.max(...cells.map((row) => String(row[i]).length)),
  );
  const line = (row: (string | number)[]) =>
    row
      .map((cell, i) =>
        i === 0
          ? String(cell).padEnd(widths[i] ?? 0)
          : String(cell).padStart(widths[i] ?? 0),
      )
      .join('  ');
  return [
    line(cells[0] as string[]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.slice(1).map(line),
  ].join('\n');
}
const format = (n: number) =>
  Number.isInteger(n)
    ? String(n)
    : n >= 100
      ? n.toFixed(0)
      : n >= 10
        ? n.toFixed(1)
        : n.toFixed(2);

// ---------------------------------------------------------------------------

function manualClock(start: number) {
  let now = start;
  return { now: () => now, set: (ms: number) => (now = ms) };
}

let ipCounter = 0;
/** A fresh IPv4 address per call: 10.x.y.z. */
function nextIp(): string {
  ipCounter++;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

/** One machine's periodic report: `relays` relays over as many origin hosts, a probe of each, 3 canaries. */
function periodicReport(
  ip: string,
  relays: number,
  options: { failing?: boolean; hostOf?: (i: number) => string } = {},
) {
  const hostOf =
    options.hostOf ??
    ((i: number) => `live-${i}.customer-${i * 7}.example.com`);
  const heartbeats: Array<Record<string, unknown>> = [];
  for (let i = 0; i < relays; i++) {
    const status = options.failing && i % 5 !== 0 ? 'connect_failed' : 'ok';
    heartbeats.push({
      ip,
      process: `ffmpeg-${i}`,
      status,
      origin: `rtmp://${hostOf(i)}:1935/live/s${i}`,
    });
    heartbeats.push({
      ip,
      process: `probe:${hostOf(i)}:1935`,
      kind: 'probe',
      status,
      origin: `rtmp://${hostOf(i)}:1935`,
    });
  }
  for (const canary of ['a', 'b', 'c']) {
    const status = options.failing ? 'connect_failed' : 'ok';
    heartbeats.push({
      ip,
      process: `probe:canary-${canary}.example.org:443`,
      kind: 'probe',
      status,
      origin: `tcp://canary-${canary}.example.org:443`,
    });
  }
  return heartbeats;
}

/** `total` heartbeats spread evenly over `ips`; a failing ip fails 4 in 5, the others 1 in 10. */
function heartbeatsFor(
  ips: readonly string[],
  total: number,
  failing = new Set<string>(),
) {
  return Array.from({ length: total }, (_, i) => {
    const ip = ips[i % ips.length] as string;
    const nth = Math.floor(i / ips.length);
    const failed = failing.has(ip) ? nth % 5 !== 0 : nth % 10 === 9;
    return {
      ip,
      process: `ffmpeg-${i}`,
      status: failed ? 'connect_failed' : 'ok',
      origin: `rtmp://origin-${i % 4}.example.net/live/s${i}`,
    };
  });
}

async function benchIngest(center: LocalStatusCenter, meter: MeteringProxy) {
  const post = async (body: unknown) => {
    const started = performance.now();
    const response = await fetch(`${center.url}/v1/heartbeats`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${center.tokens.reporter}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });
    await response.arrayBuffer();
    if (response.status !== 202)
      throw new Error(`ingest answered ${response.status}`);
    return performance.now() - started;
  };
  for (let i = 0; i < WARMUP_REQUESTS; i++)
    await post({ heartbeats: heartbeatsFor([nextIp()], 50) });
  const rows: (string | number)[][] = [];
  for (const shape of INGEST_SHAPES) {
    progress(`ingest: ${shape.requests} requests of ${shape.label}`);
    meter.reset();
    const times: number[] = [];
    for (let i = 0; i < shape.requests; i++) {
      const ips = Array.from({ length: shape.ips }, nextIp);
      const heartbeats =
        'report' in shape
          ? periodicReport(ips[0] as string, 100)
          : heartbeatsFor(ips, shape.heartbeats);
      times.push(await post({ heartbeats }));
    }
    const used = meter.reset();
    const wru = used.writeUnits / shape.requests;
    rows.push([
      shape.label,
      shape.requests,
      median(times),
      quantile(times, 0.95),
      used.putRequests / shape.requests,
      (used.calls.BatchWriteItem ?? 0) / shape.requests,
      wru,
      (wru / shape.heartbeats) * 1000,
    ]);
  }
  return table(
    [
      'batch',
      'requests',
      'median ms',
      'p95 ms',
      'rows/req',
      'BatchWrite/req',
      'WRU/req',
      'WRU/1k hb',
    ],
    rows,
  );
}

/** "ban 6, origin_outage 1": what a run decided, by type. */
function decisionCounts(decisions: readonly { type: string }[]): string {
  const counts = new Map<string, number>();
  for (const { type } of decisions)
    counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts.size
    ? [...counts].map(([type, n]) => `${type} ${n}`).join(', ')
    : 'none';
}

async function benchAggregation(
  center: LocalStatusCenter,
  meter: MeteringProxy,
  clock: ReturnType<typeof manualClock>,
  firstMinute: number,
) {
  const ips = Array.from({ length: AGGREGATION.ips }, nextIp);
  const failing = new Set(ips.slice(0, AGGREGATION.failingIps));
  const rows: (string | number)[][] = [];
  for (let run = 0; run < AGGREGATION.runs; run++) {
    const minute = firstMinute + run;
    progress(
      `aggregation run ${run + 1}/${AGGREGATION.runs}: ${AGGREGATION.ips} ips × 1 minute`,
    );
    clock.set(minuteStart(minute) + 5_000);
    // Each machine reports once, as its agent would; sent in envelopes of 500.
    const heartbeats = heartbeatsFor(
      ips,
      AGGREGATION.ips * AGGREGATION.heartbeatsPerIp,
      failing,
    );
    for (let start = 0; start < heartbeats.length; start += 500) {
      const response = await fetch(`${center.url}/v1/heartbeats`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${center.tokens.reporter}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          heartbeats: heartbeats.slice(start, start + 500),
        }),
      });
      await response.arrayBuffer();
    }
    const eventTime =
      minuteClosesAt(minute, { graceMs: GRACE_SECONDS * 1000 }) + 1_000;
    clock.set(eventTime);
    meter.reset();
    const started = performance.now();
    const summary = (await center.aggregate(
      new Date(eventTime).toISOString(),
    )) as { minutes: string[]; decisions: { type: string }[] };
    const ms = performance.now() - started;
    const used = meter.reset();
    if (summary.minutes.length !== 1)
      throw new Error(
        `run ${run + 1} aggregated ${summary.minutes.length} minutes`,
      );
    rows.push([
      `run ${run + 1}`,
      AGGREGATION.ips,
      ms,
      used.calls.Query ?? 0,
      used.calls.GetItem ?? 0,
      used.readUnits,
      used.writeUnits,
      decisionCounts(summary.decisions),
    ]);
  }
  const msColumn = rows.map((row) => row[2] as number);
  rows.push(['median', AGGREGATION.ips, median(msColumn), '', '', '', '', '']);
  return table(
    ['run', 'ips', 'ms', 'queries', 'gets', 'RRU', 'WRU', 'decisions'],
    rows,
  );
}

/**
 * Bundles a handler as the CDK stack ships it; answers the bundle's path.
 * `readable` keeps names and layout (for CPU profiles a person reads).
 */
async function bundleHandler(
  entry: string,
  dir: string,
  options: { readable?: boolean } = {},
): Promise<string> {
  const outfile = join(dir, `${basename(entry, '.ts')}.cjs`);
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    minify: !options.readable,
    mainFields: ['module', 'main'],
    logLevel: 'error',
  });
  return outfile;
}

async function benchBundles() {
  const dir = mkdtempSync(join(tmpdir(), 'relaywatch-bench-'));
  try {
    const handlersDir = join(ROOT, 'functions/handlers');
    const entries = readdirSync(handlersDir)
      .filter((file) => file.endsWith('.ts'))
      .sort();
    const rows: (string | number)[][] = [];
    for (const entry of entries) {
      progress(`bundle and import ${entry}`);
      const outfile = await bundleHandler(join(handlersDir, entry), dir);
      const bytes = statSync(outfile).size;
      const gzipBytes = gzipSync(readFileSync(outfile)).length;
      const times: number[] = [];
      for (let i = 0; i < IMPORTS_PER_HANDLER; i++)
        times.push(coldImportMs(outfile));
      rows.push([
        entry,
        bytes / 1024,
        gzipBytes / 1024,
        median(times),
        Math.min(...times),
      ]);
    }
    return table(['handler', 'KB', 'gzip KB', 'import ms', 'min ms'], rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A bundle loaded as Lambda loads a CommonJS handler (require) in a fresh Node 22 process, timed inside that process. */
function coldImportMs(file: string): number {
  const script = `const t = performance.now(); require(${JSON.stringify(file)}); process.stdout.write(String(performance.now() - t));`;
  const result = spawnSync(NODE22, ['-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
    env: {
      PATH: process.env.PATH,
      AWS_REGION: 'us-east-1',
      TABLE_NAME: 'relaywatch-bench',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:1',
      RELAYWATCH_REPORTER_TOKEN: 'bench-reporter',
      RELAYWATCH_READER_TOKEN: 'bench-reader',
      RELAYWATCH_ADMIN_TOKEN: 'bench-admin',
      LOG_LEVEL: 'error',
    },
  });
  const ms = Number(result.stdout);
  if (result.status !== 0 || !Number.isFinite(ms))
    throw new Error(
      `importing ${basename(file)} failed: ${result.stderr || result.error}`,
    );
  return ms;
}

/** The fleet table's columns the --repeat summary gives the median and range of. */
const REPEATED = [
  'ms',
  'floor ms',
  'ratio',
  'write floor ms',
  'floors ratio',
  'read ms',
  'writes ms',
] as const;
const REPEAT_HEADERS = ['IPs', 'minute', 'runs', ...REPEATED];

/** "1,316 (1,298–1,333)": the median of the figures, and their range. */
function medianAndRange(figures: readonly number[]): string {
  const least = Math.min(...figures);
  const most = Math.max(...figures);
  const digits = most < 10 ? 2 : 0;
  const show = (n: number) =>
    n.toLocaleString('en-US', {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  return `${show(median(figures))} (${show(least)}–${show(most)})`;
}

/** Per size and minute of the fleet rows: the aggregation's ms, the floors' and the ratios over the repetitions. */
function repeatSummary(rows: readonly (string | number)[][]): string[][] {
  const groups = new Map<string, (string | number)[][]>();
  for (const row of rows)
    getOrInsert(groups, `${row[0]} ${row[1]}`, () => []).push(row);
  const column = (group: (string | number)[][], header: string) => {
    const at = FLEET_HEADERS.indexOf(header);
    return group.map((row) => Number(row[at])).filter(Number.isFinite);
  };
  return [...groups.values()].map((group) => [
    String(group[0]?.[0]),
    String(group[0]?.[1]),
    String(group.length),
    ...REPEATED.map((header) => medianAndRange(column(group, header))),
  ]);
}

/** What --fleet and the options that go with it ask for (fleetArgs). */
type FleetArgs = FleetRunOptions & {
  sizes: number[];
  policySize: number;
  repeat: number;
};

/** npm run bench -- --fleet 1000,10000: the fleet bench (see fleet.ts), then the policy alone at 100,000 IPs. */
async function mainFleet(options: FleetArgs) {
  const { sizes, policySize } = options;
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'relaywatch-fleet-'));
  let dynamodb: DynamoDbLocal | undefined;
  let proxy: MeteringProxy | undefined;
  let center: LocalStatusCenter | undefined;
  const stopAll = async () => {
    await center?.stop();
    await proxy?.close();
    await dynamodb?.stop();
    rmSync(dir, { recursive: true, force: true });
    center = undefined;
    proxy = undefined;
    dynamodb = undefined;
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rows: (string | number)[][] = [];
  try {
    progress('bundling the aggregate handler');
    // A profiled run bundles unminified, so its profile names functions.
    const readable = options.profileDir !== undefined;
    if (options.profileDir) mkdirSync(options.profileDir, { recursive: true });
    const bundle = await bundleHandler(
      join(ROOT, 'functions/handlers/aggregate.ts'),
      dir,
      { readable },
    );
    const floorBundle = await bundleHandler(
      join(ROOT, 'test/bench/floor-entry.ts'),
      dir,
      { readable },
    );
    // Repetitions go round the sizes, so every size's runs see the machine at the same moments.
    const runs = Array.from({ length: options.repeat }, () => sizes).flat();
    for (const [index, machines] of runs.entries()) {
      if (options.repeat > 1)
        progress(
          `fleet ${machines}: repetition ${Math.floor(index / sizes.length) + 1} of ${options.repeat}`,
        );
      // A fresh DynamoDB Local for every run: one that holds the fleets of
      // earlier runs slows to a crawl (request timeouts, minutes per write).
      progress('starting DynamoDB Local');
      dynamodb = await startDynamoDbLocal({
        port: 0,
        startTimeoutMs: 60_000,
      });
      proxy = await startMeteringProxy(dynamodb.port);
      // A closed minute of the real clock: the bundled aggregator runs on the real clock.
      const minute = minuteOf(Date.now()) - 3;
      const clock = manualClock(minuteStart(minute) + 55_000);
      const tableName = `relaywatch-fleet-${machines}-${Date.now()}`;
      const shards = 4;
      center = await startLocalStatusCenter({
        port: 0,
        dynamodbEndpoint: proxy.endpoint,
        env: {
          TABLE_NAME: tableName,
          AWS_REGION: 'us-east-1',
          LOG_LEVEL: 'error',
          RELAYWATCH_SHARDS: String(shards),
        },
        schedule: false,
        streams: false,
        overrides: {
          now: clock.now,
          log: createLogger({ level: 'error', write: () => undefined }),
        },
      });
      const target: FleetTarget = {
        url: center.url,
        reporterToken: center.tokens.reporter,
        setClock: clock.set,
        dynamodbEndpoint: proxy.endpoint,
        tableName,
        shards,
      };
      rows.push(
        ...(await benchFleet({
          machines,
          minute,
          target,
          meter: proxy,
          bundle,
          floorBundle,
          node: NODE22,
          dir,
          run: options,
        })),
      );
      await center.stop();
      center = undefined;
      await proxy.close();
      proxy = undefined;
      await dynamodb.stop();
      dynamodb = undefined;
      process.stdout.write(`${table(FLEET_HEADERS, rows)}\n`);
    }
  } finally {
    progress('stopping DynamoDB Local');
    await stopAll();
  }
  const policy =
    policySize > 0
      ? table(POLICY_HEADERS, [benchPolicy(policySize)])
      : '(skipped)';
  const summary =
    options.repeat > 1
      ? `\n\n(r) over ${options.repeat} repetitions: median (min–max)\n${table(REPEAT_HEADERS, repeatSummary(rows))}`
      : '';
  process.stdout.write(
    `\n(f) fleet: a first minute of N machines (bans), a steady one (bans in force) and a late pass (55 s into the next minute, written whole), each aggregated by the bundled handler (heap sized as a ${options.memoryMb.toLocaleString('en-US')} MB Lambda's${options.windowMinutes === 1 ? '' : `, a window of ${options.windowMinutes} minutes`}${options.releaseMinutes === 1 ? '' : `, a release window of ${options.releaseMinutes} minutes`})\n${table(FLEET_HEADERS, rows)}${summary}\n\n(p) policy alone (decideMinute) in memory\n${policy}\n\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
}

/**
 * --fleet 1000,10000 [--policy 100000] [--store] [--profile DIR]; nothing
 * else runs the fleet bench. --store writes every fleet through the store
 * (faster to set up; the ingest path is then not exercised), --profile
 * writes a CPU profile of each aggregation into DIR (bundled unminified, so
 * it names functions) and the timelines of its DynamoDB calls and of its
 * write floor's.
 */
function fleetArgs(argv: readonly string[]): FleetArgs | undefined {
  const at = argv.indexOf('--fleet');
  if (at === -1) return undefined;
  const sizes = (argv[at + 1] ?? '').split(',').map(Number);
  if (
    !sizes.length ||
    sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 1_000_000)
  ) {
    throw new Error(
      '--fleet takes comma-separated machine counts from 1 to 1,000,000, e.g. --fleet 1000,10000,100000',
    );
  }
  /** The whole number given to `flag` (`fallback` without it); `what` says its range for the error. */
  const wholeNumber = (
    flag: string,
    fallback: number,
    [least, most]: [number, number],
    what: string,
  ) => {
    const at = argv.indexOf(flag);
    const value = at === -1 ? fallback : Number(argv[at + 1]);
    if (!Number.isInteger(value) || value < least || value > most)
      throw new Error(`${flag} takes ${what}`);
    return value;
  };
  const policySize = wholeNumber(
    '--policy',
    100_000,
    [0, 1_000_000],
    'a machine count from 0 to 1,000,000',
  );
  const profileAt = argv.indexOf('--profile');
  const profileDir = profileAt === -1 ? undefined : argv[profileAt + 1];
  if (profileAt !== -1 && !profileDir)
    throw new Error('--profile takes a directory');
  const repeat = wholeNumber(
    '--repeat',
    1,
    [1, 20],
    'a number of repetitions from 1 to 20',
  );
  const steadyMinutes = wholeNumber(
    '--steady',
    1,
    [1, 30],
    'a number of steady minutes from 1 to 30',
  );
  const catchUpMinutes = wholeNumber(
    '--catch-up',
    0,
    [0, 10],
    'a number of minutes from 0 to 10',
  );
  const memoryMb = wholeNumber(
    '--memory',
    AGGREGATE_MEMORY_MB,
    [128, 10_240],
    'a Lambda memory in MB from 128 to 10240',
  );
  const windowMinutes = wholeNumber(
    '--window',
    1,
    [1, 15],
    'a number of minutes from 1 to 15 (RELAYWATCH_WINDOW_MINUTES)',
  );
  const releaseMinutes = wholeNumber(
    '--release',
    1,
    [1, 60],
    'a number of minutes from 1 to 60 (RELAYWATCH_RELEASE_MINUTES)',
  );
  return {
    sizes,
    policySize,
    repeat,
    steadyMinutes,
    catchUpMinutes,
    memoryMb,
    windowMinutes,
    releaseMinutes,
    lateRun: argv.includes('--late-run'),
    viaStore: argv.includes('--store'),
    warm: !argv.includes('--cold'),
    ...(profileDir ? { profileDir } : {}),
  };
}

async function main() {
  const started = performance.now();
  const node = spawnSync(NODE22, ['--version'], {
    encoding: 'utf8',
  }).stdout.trim();
  process.stdout.write(
    `relaywatch bench: Node ${node} (imports), ${process.version} (driver), ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`,
  );

  let dynamodb: DynamoDbLocal | undefined;
  let proxy: MeteringProxy | undefined;
  let center: LocalStatusCenter | undefined;
  const stopAll = async () => {
    await center?.stop();
    await proxy?.close();
    await dynamodb?.stop();
    center = undefined;
    proxy = undefined;
    dynamodb = undefined;
  };
  const onSignal = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: string[] = [];
  try {
    progress('starting DynamoDB Local');
    dynamodb = await startDynamoDbLocal({
      port: 0,
      startTimeoutMs: 60_000,
    });
    proxy = await startMeteringProxy(dynamodb.port);
    const firstMinute = minuteOf(Date.now());
    const clock = manualClock(minuteStart(firstMinute) + 5_000);
    center = await startLocalStatusCenter({
      port: 0,
      dynamodbEndpoint: proxy.endpoint,
      env: {
        TABLE_NAME: 'relaywatch-bench',
        AWS_REGION: 'us-east-1',
        LOG_LEVEL: 'error',
        RELAYWATCH_GRACE_SECONDS: String(GRACE_SECONDS),
        RELAYWATCH_AGGREGATE_WAITS: 'false',
      },
      schedule: false,
      streams: false,
      overrides: {
        now: clock.now,
        log: createLogger({ level: 'error', write: () => undefined }),
      },
    });

    results.push(
      `(a) ingest through the local gateway on DynamoDB Local\n${await benchIngest(center, proxy)}`,
    );
    // Aggregate minutes after the one the ingest runs wrote into.
    results.push(
      `(b) aggregation, ${AGGREGATION.ips} ips × 1 minute (${AGGREGATION.failingIps} failing)\n${await benchAggregation(center, proxy, clock, firstMinute + 2)}`,
    );
  } finally {
    progress('stopping DynamoDB Local');
    await stopAll();
  }
  results.push(
    `(c) handler bundles (esbuild, CommonJS, minified, node22, SDK bundled) and cold load (require, as Lambda loads it) in a fresh process\n${await benchBundles()}`,
  );
  process.stdout.write(
    `\n${results.join('\n\n')}\n\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
}

/**
 * npm run bench -- --ban-writes N [--repeat R]: a minute's N bans written by
 * each path of ban-write-paths.ts on a DynamoDB Local of their own, R rounds
 * after one left out (DynamoDB Local's first transactions on a table run
 * slowly); prints every round and each path's median and range.
 */
async function mainBanWrites(bans: number, repeat: number) {
  const started = performance.now();
  progress('starting DynamoDB Local');
  const dynamodb = await startDynamoDbLocal({
    port: 0,
    startTimeoutMs: 60_000,
  });
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: dynamodb.endpoint,
  });
  try {
    const tableName = 'relaywatch-ban-writes';
    await ensureTable({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      tableName,
    });
    const rows = await benchBanWritePaths(
      client,
      tableName,
      bans,
      repeat + 1,
      progress,
    );
    const counted = rows.filter(({ round }) => round > 0).map(({ row }) => row);
    const msAt = BAN_WRITE_HEADERS.indexOf('ms');
    const summary = BAN_WRITE_PATHS.map(({ label }) => {
      const ms = counted
        .filter((row) => row[1] === label)
        .map((row) => Number(row[msAt]));
      return [label, medianAndRange(ms)];
    });
    process.stdout.write(
      `\n(w) a minute's ${bans.toLocaleString('en-US')} bans written (the ban, its offense, two event items each) on DynamoDB Local, by each path; round 1 left out\n${table(
        ['round', ...BAN_WRITE_HEADERS],
        counted.map((row, n) => [
          Math.floor(n / BAN_WRITE_PATHS.length) + 2,
          ...row,
        ]),
      )}\n\nover ${repeat} round${repeat === 1 ? '' : 's'}: ms, median (min–max)\n${table(['path', 'ms'], summary)}\n\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    client.destroy();
    progress('stopping DynamoDB Local');
    await dynamodb.stop();
  }
}

const USAGE = `npm run bench -- [options]

relaywatch's cost and speed figures on this machine (DynamoDB Local behind a
metering proxy); prints tables, asserts nothing. With no option: ingest,
aggregation and bundle tables.

Options:
  --fleet N[,N...]   the fleet bench: a first and a steady minute of N machines each, then a
                     late pass (the next minute whole, 55 s into it), aggregated by the bundled
                     handler (see README, Scale and cost)
  --store            with --fleet: write every fleet through the store (no gateway)
  --policy N         with --fleet: also time the policy alone on N IPs (default 100000; 0 skips)
  --profile DIR      with --fleet: a CPU profile of each aggregation process and a DynamoDB call
                     timeline of each aggregation and of its write floor
  --repeat N         with --fleet: run every size N times (1-20, default 1), going round the sizes, and
                     print the median and range of each figure (DynamoDB Local is noisy: compare medians)
  --steady N         with --fleet: N steady minutes after the first (1-30, default 1), shown as
                     steady 1 … steady N: the later ones run code as hot as a function's that has
                     run for a while
  --catch-up N       with --fleet: after the steady minutes, N minutes (1-10) written and then decided
                     by one run, as after an outage (row catch-up N; default 0: none)
  --memory MB        with --fleet: give the aggregation the heap a Lambda of MB memory gets
                     (128-10240, default the stack's); Lambda counts the whole process, so compare
                     the peak MB column with MB: a smaller function fits only where the peak stays under MB
  --window N         with --fleet: the aggregation's RELAYWATCH_WINDOW_MINUTES (1-15, default 1); a
                     closing decision then reads N minutes, and so does its floor
  --release N        with --fleet: the aggregation's RELAYWATCH_RELEASE_MINUTES (1-60, default 1): the
                     late pass keeps the rows it read that far back
  --late-run         with --fleet: also a row 'late run': the minute after the late pass's written
                     whole, then a run at the close of the late pass's minute delivered at the end
                     of its own (late, as EventBridge may): it closes a minute and reads the open
                     one whole, in a process of its own
  --cold             with --fleet: cold starts: every aggregation and floor in a fresh process,
                     and no warm-up of DynamoDB Local's transactions (README rows marked cold)
  --in-memory N      one aggregation of N machines over an in-memory table (no DynamoDB Local)
  --ban-writes N     a minute's N bans (1-20000) written on DynamoDB Local by the aggregation's
                     transactions and by a path without them; with --repeat R, R rounds (default 3)
  -h, --help         this text
  --version          the version
`;
const KNOWN = new Map([
  ['--fleet', true],
  ['--store', false],
  ['--policy', true],
  ['--profile', true],
  ['--repeat', true],
  ['--steady', true],
  ['--catch-up', true],
  ['--memory', true],
  ['--window', true],
  ['--release', true],
  ['--late-run', false],
  ['--cold', false],
  ['--in-memory', true],
  ['--ban-writes', true],
  ['--help', false],
  ['-h', false],
  ['--version', false],
]);
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const takesValue = KNOWN.get(argv[i] as string);
  if (takesValue === undefined) {
    process.stderr.write(`unknown option: ${argv[i]}\n\n${USAGE}`);
    process.exit(2);
  }
  if (takesValue) i++;
}
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (argv.includes('--version')) {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  process.stdout.write(`relaywatch bench ${pkg.version}\n`);
  process.exit(0);
}
const fleet = (() => {
  try {
    return fleetArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return process.exit(2);
  }
})();
const banWritesAt = argv.indexOf('--ban-writes');
const inMemoryAt = process.argv.indexOf('--in-memory');
if (banWritesAt !== -1) {
  const bans = Number(argv[banWritesAt + 1]);
  const repeatAt = argv.indexOf('--repeat');
  const repeat = repeatAt === -1 ? 3 : Number(argv[repeatAt + 1]);
  if (!Number.isInteger(bans) || bans < 1 || bans > 20_000) {
    process.stderr.write(
      `--ban-writes takes a number of bans from 1 to 20,000\n\n${USAGE}`,
    );
    process.exit(2);
  }
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) {
    process.stderr.write(
      `--repeat takes a number of repetitions from 1 to 20\n\n${USAGE}`,
    );
    process.exit(2);
  }
  await mainBanWrites(bans, repeat);
} else if (inMemoryAt !== -1) {
  const machines = Number(process.argv[inMemoryAt + 1]);
  if (!Number.isInteger(machines) || machines < 1 || machines > 1_000_000)
    throw new Error('--in-memory takes a machine count from 1 to 1,000,000');
  process.stdout.write(`${JSON.stringify(await benchInMemory(machines))}\n`);
} else if (fleet) await mainFleet(fleet);
else await main();
