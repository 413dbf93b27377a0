/**
 * npm run bench -- --fleet 1000,10000,100000: one minute of a realistic fleet,
 * then the aggregation as Lambda runs it. Prints figures, asserts nothing.
 *
 * The fleet: each machine reports once (its agent's periodic report) with
 * 10–100 relays over origins drawn from a pool of 200 hosts, a probe of each
 * of its origins and 3 canaries; 3 % of the machines cannot reach their
 * origins (80 % of their relays and all their probes fail). Up to
 * GATEWAY_MAX_MACHINES machines post through the local gateway (the real
 * ingest path); larger fleets are written through the heartbeat store directly
 * (tally + addTallies, 25 machines per BatchWriteItem), which the table says.
 *
 * The aggregation: the aggregate handler bundled as the CDK stack bundles it,
 * run in a Node 22 process whose V8 heap is capped as a 1,024 MB Lambda caps
 * it, against the metering proxy. As a function invoked every minute, the
 * process is warm: it ran the minute before the fleet's first (no rows) and
 * runs the first and the steady minute in turn; with --cold every minute runs
 * in a fresh process (a cold start: first connection, cold code). `floor` is
 * a bare read of the same rows (every shard of the minute, in parallel,
 * paginated, unmarshalled, nothing else), bundled and run the same way
 * (floor-entry.ts); `bench floor` is that read in the bench process on a
 * connected client. `write floor` is the bare cost of the minute's ban
 * writes: the aggregation's very transactions (the metering proxy records
 * them as sent), item for item, each item's partition key moved under a
 * prefix of the replay's own so that nothing the aggregation reads is
 * touched, inside as many change windows as the aggregation opened (an
 * update of a version item nothing reads before them, one after, shaped as
 * the ban store's of the ban list's version), sent one at a time by the
 * floor's process after the aggregation (0 when it wrote none). The ratios
 * say how far the aggregation is from reading its input (`ratio`) and from
 * reading it and writing its bans (`floors ratio`). `read ms` and `writes
 * ms` say where the aggregation's own time went (phasesOf): until its last
 * page of rows arrived, and from its first write to its last. `largest item` is the
 * largest item the run put (Put, BatchWrite, Transact). `DynamoDB busy s` is,
 * per operation, the time during which at least one call of it was in flight
 * (calls of different operations may overlap).
 *
 * Each size runs minutes of the same fleet: a healthy one (not measured),
 * then the first in which some machines fail, in which they are banned
 * (thousands of ban transactions and events at 10,000 IPs), then steady
 * ones in which their bans are in force, as every later minute is: one, or
 * with --steady N, N of them (`steady 1` … `steady N`), so the last is
 * decided by code as hot as a function's that has run for a while (V8
 * optimises what runs often; the first minutes run colder code); then a
 * late pass: a live pass 55 s into the minute after, with that minute
 * written whole (LATE_PASS_MS), the most rows a run's later passes hold.
 *
 * The policy bench: decideMinute alone on 100,000 IPs' rows in memory.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseConfig } from '../../functions/core/config.js';
import {
  minuteClosesAt,
  minuteRange,
  minuteStart,
} from '../../functions/core/minutes.js';
import { decideMinute } from '../../functions/core/policy.js';
import type { MinuteTally } from '../../functions/core/tally.js';
import { tallyHeartbeats } from '../../functions/core/tally.js';
import { schedules } from '../../functions/routes.js';
import { createDocumentClient } from '../../functions/store/client.js';
import { createHeartbeatStore } from '../../functions/store/heartbeat-store.js';
import { queryItems } from '../../functions/store/query.js';
import { keys, TABLE } from '../../functions/store/table.js';
import { ensureTable } from '../../infra/local/table.js';
import { machineReport } from '../helpers/fleet.js';
import type { Meter, MeteringProxy } from '../helpers/metering-proxy.js';
import { timelineOf, WRITE_OPS } from '../helpers/metering-proxy.js';
import {
  BENCH_VERSION_PARTITION,
  replayItems,
  WARM_UP_WRITES,
} from './ban-writes.js';
import { readMinutesBare } from './bare-read.js';

export const GATEWAY_MAX_MACHINES = 10_000;
/**
 * The heap flags Lambda's Node.js runtime starts node with for a function of
 * `memoryMb` (its bootstrap script, as published in AWS's nodejs14.x and
 * nodejs18.x base images; later runtimes are assumed to keep it, which is
 * unverified here): a tenth of the memory for the young
 * generation, half of that per semi-space, the rest for the old generation.
 * The young generation matters here: a pass allocates tens of MB of short-
 * lived objects per minute (pages, rows), and V8's default semi-space is far
 * smaller, so without it the bench would scavenge (and promote) more often
 * than the function does.
 */
export function lambdaHeapFlags(memoryMb: number): string[] {
  const youngMb = Math.floor(memoryMb / 10);
  return [
    `--max-semi-space-size=${Math.floor(youngMb / 2)}`,
    `--max-old-space-size=${memoryMb - youngMb}`,
  ];
}
/** The aggregate function's memory in the stack, MB: the heap the bench gives it unless asked otherwise. */
export const AGGREGATE_MEMORY_MB = schedules.aggregate.memoryMb;
const AGGREGATE_TIMEOUT_MS = 15 * 60_000;
const WRITE_CONCURRENCY = 8;

const progress = (text: string) => process.stdout.write(`… ${text}\n`);

async function pool<T>(
  items: number,
  concurrency: number,
  work: (index: number) => Promise<T>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items) await work(next++);
    }),
  );
}

export type FleetTarget = {
  /** The local status center's URL and reporter token (gateway path). */
  url: string;
  reporterToken: string;
  setClock: (ms: number) => void;
  dynamodbEndpoint: string;
  tableName: string;
  shards: number;
};

/** Writes one minute of `machines` machines; answers how it wrote them. */
export async function writeFleet(
  target: FleetTarget,
  machines: number,
  minute: number,
  options: { viaStore?: boolean; healthy?: boolean } = {},
): Promise<string> {
  const report = (n: number) =>
    machineReport(n, minute, { healthy: options.healthy ?? false });
  target.setClock(minuteStart(minute) + 55_000);
  const step = Math.max(1, Math.floor(machines / 10));
  if (machines <= GATEWAY_MAX_MACHINES && !options.viaStore) {
    await pool(machines, WRITE_CONCURRENCY, async (n) => {
      if (n % step === 0)
        progress(`  posting machine ${n + 1}/${machines} through the gateway`);
      const response = await fetch(`${target.url}/v1/heartbeats`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${target.reporterToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          heartbeats: report(n),
          batchId: `bench-${minute}-${n}`,
        }),
      });
      const answer = await response.text();
      if (response.status !== 202)
        throw new Error(
          `ingest answered ${response.status}: ${answer.slice(0, 300)}`,
        );
    });
    return 'gateway';
  }
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: target.dynamodbEndpoint,
  });
  const store = createHeartbeatStore({
    client,
    tableName: target.tableName,
    shards: target.shards,
    bucketTtlHours: 48,
  });
  const now = minuteStart(minute) + 55_000;
  const groups = Math.ceil(machines / 25);
  await pool(groups, WRITE_CONCURRENCY, async (g) => {
    if ((g * 25) % step < 25)
      progress(`  writing machine ${g * 25 + 1}/${machines} through the store`);
    const tallies: MinuteTally[] = [];
    for (let n = g * 25; n < Math.min(machines, (g + 1) * 25); n++) {
      tallies.push(
        ...tallyHeartbeats(report(n), { now, graceMs: 10_000 }).tallies,
      );
    }
    await store.addTallies(tallies, { writeId: `b:bench-${minute}-${g}` });
  });
  client.destroy();
  return 'store';
}

/** The bare read of one minute's rows: every shard in parallel, nothing but Query; answers how many rows it read. */
export async function floorRead(
  target: FleetTarget,
  minutes: readonly number[],
): Promise<{ ms: number; rows: number }> {
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: target.dynamodbEndpoint,
  });
  // One small query first, so the floor does not include opening the connection.
  await queryItems(client, {
    TableName: target.tableName,
    KeyConditionExpression: '#pk = :pk',
    ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
    ExpressionAttributeValues: { ':pk': 'WARMUP' },
  });
  const started = performance.now();
  const items = await readMinutesBare(client, target, minutes);
  const ms = performance.now() - started;
  client.destroy();
  // The minute's shard-count markers are read with its rows, but are not rows.
  const rows = items.filter(
    (item) => keys.shardCountOf(String(item[TABLE.sortKey])) === undefined,
  );
  return { ms, rows: rows.length };
}

export type AggregateRun = {
  ok: boolean;
  ms: number;
  maxRssMb: number;
  minutes: number;
  decisions: string;
  /** Rows read (the floor's handler). */
  rows?: number;
  error?: string;
};

/**
 * DynamoDB Local is a JVM and keeps per-table state: its first transactions on
 * a table run slowly (100 writes: ~700 ms on the first, ~60 ms after 30 on the
 * same table, ~180 ms on a second table right after), which DynamoDB never
 * shows. Warm, the floors' process first writes this many transactions of 25
 * made-up bans (a conditional put, an ADD update and two puts each, as the
 * aggregator writes a ban: benchBanWrites) into partitions of the measured
 * table that nothing reads: before the fleet is written there is no
 * transaction of the aggregation's to replay.
 */
const WARM_UP_TRANSACTIONS = 40;

/** A bundled handler in a process of its own, called as Lambda calls a function. */
export type BundledProcess = {
  /** One call, timed from the event to the answer (not the module load). */
  call(event: unknown): Promise<AggregateRun>;
  stop(): Promise<void>;
};

let drivers = 0;

/** Marks the driver's answer lines among whatever the handler prints. */
const ANSWER = '@@bench-answer ';

/**
 * Starts a bundled handler in a fresh process capped like a 1,024 MB Lambda:
 * the module is loaded once (the client created at load), then every call()
 * runs the handler on one event, as one Lambda execution environment runs
 * invocation after invocation. The first call makes the first connection and
 * runs on cold code, as a cold start does; later calls find both warm.
 * `maxRssMb` is the process's peak so far.
 */
export function startBundled(options: {
  bundle: string;
  node: string;
  dir: string;
  env: Record<string, string>;
  /** Extra Node flags for the process (e.g. --cpu-prof). */
  nodeFlags?: readonly string[];
  /** The Lambda memory whose heap the process gets (default the stack's). */
  memoryMb?: number;
}): BundledProcess {
  const memoryMb = options.memoryMb ?? AGGREGATE_MEMORY_MB;
  // One driver per process: two processes may be starting at once.
  const driver = join(options.dir, `bench-driver-${++drivers}.mjs`);
  writeFileSync(
    driver,
    `import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
// As Lambda loads a CommonJS handler.
const { handler } = createRequire(import.meta.url)(${JSON.stringify(options.bundle)});
for await (const line of createInterface({ input: process.stdin })) {
  const event = JSON.parse(line);
  const started = performance.now();
  let result = { ok: true };
  try {
    const answer = await handler(event, { awsRequestId: 'bench' });
    if (Array.isArray(answer.decisions)) {
      const counts = {};
      for (const d of answer.decisions) counts[d.type] = (counts[d.type] ?? 0) + 1;
      result = { ok: true, minutes: answer.minutes.length, decisions: Object.entries(counts).map(([t, n]) => t + ' ' + n).join(', ') || 'none' };
    } else result = { ok: true, minutes: 0, decisions: '', rows: answer.rows };
  } catch (error) {
    result = { ok: false, minutes: 0, decisions: '', error: String(error?.name) + ': ' + String(error?.message).slice(0, 120) };
  }
  result.ms = performance.now() - started;
  result.maxRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write('\\n${ANSWER}' + JSON.stringify(result) + '\\n');
}
// The SDK's keep-alive sockets would hold the process open.
process.exit(0);
`,
  );
  // Asynchronous: the metering proxy the child talks to runs in this process's event loop.
  const child = spawn(
    options.node,
    [...lambdaHeapFlags(memoryMb), ...(options.nodeFlags ?? []), driver],
    {
      env: { PATH: process.env.PATH, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4_000)));
  const answers: string[] = [];
  let pending = '';
  let wake = () => {};
  child.stdout.on('data', (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines)
      if (line.startsWith(ANSWER)) answers.push(line.slice(ANSWER.length));
    wake();
  });
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  let exit: [number | null, string | null] | undefined;
  void exited.then((result) => {
    exit = result;
    wake();
  });
  const failed = (): AggregateRun => {
    const [code, signal] = exit ?? [null, 'SIGKILL'];
    const why = /heap out of memory|Allocation failed/i.test(stderr)
      ? `out of memory (heap capped as a ${memoryMb} MB Lambda's)`
      : `exit ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ').slice(0, 200)}`;
    return {
      ok: false,
      ms: Number.NaN,
      maxRssMb: Number.NaN,
      minutes: 0,
      decisions: '',
      error: why,
    };
  };
  return {
    async call(event) {
      if (exit) return failed();
      child.stdin.write(`${JSON.stringify(event)}\n`);
      const timer = setTimeout(
        () => child.kill('SIGKILL'),
        AGGREGATE_TIMEOUT_MS,
      );
      try {
        while (!answers.length && !exit)
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
      } finally {
        clearTimeout(timer);
      }
      const answer = answers.shift();
      return answer === undefined
        ? failed()
        : (JSON.parse(answer) as AggregateRun);
    },
    async stop() {
      if (!exit) {
        child.stdin.end();
        await exited;
      }
    },
  };
}

/**
 * The same calls, each in a fresh process of its own (a cold start):
 * startBundled, call, stop.
 */
function coldBundled(
  options: Parameters<typeof startBundled>[0],
): BundledProcess {
  return {
    async call(event) {
      const bundled = startBundled(options);
      try {
        return await bundled.call(event);
      } finally {
        await bundled.stop();
      }
    },
    stop: async () => undefined,
  };
}

/**
 * The write floor of a minute: the aggregation's ban transactions (`used`:
 * the meter's count of the aggregation, which recorded them as sent) sent
 * again by the floors' process, item for item, each item's partition key
 * prefixed with the replay's own (replayItems, `tag` unique per replay),
 * one at a time, as the ban store sends them to DynamoDB Local, inside as
 * many change windows as the aggregation opened on the ban list's version
 * item, each opened and closed by an update of a version item of the
 * bench's shaped as the store's (writeFloorCalls). 0 without a call when the
 * aggregation wrote none; the replay's meter with the time, for its
 * timeline. A floor that fails, or that sent anything but the transactions
 * it was given, fails the bench.
 */
async function writeFloorOf(
  floors: BundledProcess,
  meter: MeteringProxy,
  used: Meter,
  tag: string,
): Promise<{ ms: number; replayed?: Meter }> {
  const windows = changeWindowsOf(used);
  if (!used.transactions.length && !windows) return { ms: 0 };
  meter.reset();
  const run = await floors.call({
    transactions: used.transactions,
    tag,
    windows,
  });
  const replayed = meter.reset();
  if (!run.ok) throw new Error(`the write floor failed: ${run.error}`);
  // Item for item the aggregation's, but for the partition key: the same
  // writes, and each put item as heavy plus its key's prefix.
  if (
    !isDeepStrictEqual(
      replayed.transactions,
      used.transactions.map((items) => replayItems(items, tag)),
    )
  )
    throw new Error(
      "the write floor's transactions differ from the aggregation's beyond their partition keys",
    );
  const windowUpdates = replayed.updatesOf[BENCH_VERSION_PARTITION] ?? 0;
  if (
    windowUpdates !== 2 * windows ||
    (replayed.calls.UpdateItem ?? 0) !== windowUpdates
  )
    throw new Error(
      `the write floor made ${replayed.calls.UpdateItem ?? 0} updates, ${windowUpdates} of them to its version item, instead of opening and closing ${windows} change windows`,
    );
  return { ms: run.ms, replayed };
}

/**
 * The change windows an aggregation opened: the ban store opens one per batch
 * of ban changes and closes it, each an update of the ban list's version item
 * that succeeds (or, its condition failing, a bare bump in its place).
 */
const changeWindowsOf = (used: Meter) =>
  Math.ceil((used.updatesOf[keys.banVersionPartition()] ?? 0) / 2);

/** The policy alone on `machines` IPs' rows held in memory. */
export function benchPolicy(machines: number): (string | number)[] {
  const minute = Math.floor(Date.parse('2026-11-24T14:03:00Z') / 60_000);
  const now = minuteClosesAt(minute, { graceMs: 10_000 });
  progress(`policy: building ${machines} IPs' rows in memory`);
  const rows: MinuteTally[] = [];
  for (let n = 0; n < machines; n++)
    rows.push(
      ...tallyHeartbeats(machineReport(n, minute), {
        now: minuteStart(minute) + 55_000,
        graceMs: 10_000,
      }).tallies,
    );
  const knobs = parseConfig({});
  const heapBefore = process.memoryUsage().heapUsed;
  progress(`policy: deciding ${machines} IPs`);
  const started = performance.now();
  const result = decideMinute(
    {
      minute,
      now,
      window: rows,
      recent: rows,
      bans: [],
      offenses: {},
      previous: { outages: [], fleetWide: false },
    },
    knobs,
  );
  const ms = performance.now() - started;
  const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1048576;
  const bans = result.decisions.filter((d) => d.type === 'ban').length;
  return [
    machines,
    rows.length,
    ms,
    Math.max(0, heapMb),
    result.reporting.length,
    bans,
  ];
}

export type FleetRow = (string | number)[];

/**
 * Where an aggregation's time went, from its calls as the metering proxy saw
 * them: `readMs` from its first call to the end of the last read of
 * heartbeat rows (to hold against the bare read), `writesMs` from the start
 * of its first write to the end of its last (against the write floor); what
 * is left of its time is computing (and the calls between). 0 for a phase
 * with no call.
 */
export function phasesOf(spans: Meter['spans']): {
  readMs: number;
  writesMs: number;
} {
  const first = Math.min(...spans.map((span) => span.start));
  const rowReads = spans.filter(
    (span) =>
      span.op === 'Query' &&
      span.partition !== undefined &&
      keys.isHeartbeatBucket(span.partition),
  );
  const writes = spans.filter((span) => WRITE_OPS.has(span.op));
  return {
    readMs: rowReads.length
      ? Math.max(...rowReads.map((span) => span.end)) - first
      : 0,
    writesMs: writes.length
      ? Math.max(...writes.map((span) => span.end)) -
        Math.min(...writes.map((span) => span.start))
      : 0,
  };
}

/** "Query 1.2, TransactWriteItems 3.1": seconds with a call of each kind in flight, the longest first. */
function busyOf(busyMs: Record<string, number>): string {
  return Object.entries(busyMs)
    .filter(([, ms]) => ms >= 50)
    .sort((a, b) => b[1] - a[1])
    .map(([op, ms]) => `${op} ${(ms / 1000).toFixed(1)}`)
    .join(', ');
}

/**
 * One measured aggregation: its row's label, the minute written for it, its
 * event, the minutes a bare read reads; `written` only: the minute is
 * written and left for the next aggregation to decide (a catch-up).
 */
type BenchedPass = {
  label: string;
  minute: number;
  event: { time: string };
  reads: readonly number[];
  writtenOnly?: boolean;
  /** Aggregated in a process of its own, so its peak is its own (a warm process's peak is its highest so far). */
  ownProcess?: boolean;
};
/**
 * The late pass's time in the open minute. The bench's machines report 50–54 s
 * into each minute, so at 55 s the closed minute's reports have left the
 * trailing window and the open minute's are all in it: a minute of rows,
 * as a run's last pass holds in a fleet whose reports spread over the minute
 * (the closed minute's last sixth, five sixths of the open one).
 */
const LATE_PASS_MS = 55_000;

/** How every size is run: what --store, --profile, --cold and --steady ask for. */
export type FleetRunOptions = {
  /** Write through the store whatever the size (the ingest path is not measured). */
  viaStore: boolean;
  /** Profile the aggregation: --cpu-prof into this directory. */
  profileDir?: string;
  /**
   * Warm processes and a warmed engine (see WARM_UP_TRANSACTIONS), as a function
   * invoked every minute against DynamoDB runs; false: every aggregation and
   * floor in a fresh process (a cold start) on a cold engine.
   */
  warm: boolean;
  /** Steady minutes after the first (1: one, labelled `steady`). */
  steadyMinutes: number;
  /** Minutes written after the steady ones and decided by one run (0: none). */
  catchUpMinutes: number;
  /** The Lambda memory whose heap the aggregation process gets (the stack's unless asked). */
  memoryMb: number;
  /** RELAYWATCH_WINDOW_MINUTES for the aggregation; the floors read as many minutes as it does. */
  windowMinutes: number;
  /** RELAYWATCH_RELEASE_MINUTES for the aggregation: a late pass keeps rows that far back (it reads no more minutes). */
  releaseMinutes: number;
  /**
   * Also a row `late run`: after the late pass, the minute after its own
   * written whole, then a run at the close of the late pass's minute, as
   * EventBridge may deliver it late, at the end of the minute it belongs to:
   * its pass (a run that late makes one) closes a minute and reads the open
   * one whole, two minutes of the fleet where an on-time first pass reads a
   * few seconds of the open one. In a process of its own.
   */
  lateRun: boolean;
};

/**
 * One fleet size end to end, minutes of the same fleet: a healthy one, then
 * the first in which some machines fail and are banned, and steady ones
 * after it, in which their bans are already in force (what every later
 * minute looks like). `meter` counts each aggregation's reads and writes.
 * A row per measured minute.
 */
export async function benchFleet(options: {
  machines: number;
  minute: number;
  target: FleetTarget;
  meter: MeteringProxy;
  bundle: string;
  /** The floors (the bare read and the bare writes) bundled as a handler (floor-entry.ts). */
  floorBundle: string;
  node: string;
  dir: string;
  run: FleetRunOptions;
}): Promise<FleetRow[]> {
  const { machines, target, meter, run: how } = options;
  await ensureTable({
    endpoint: target.dynamodbEndpoint,
    region: 'us-east-1',
    tableName: target.tableName,
  });
  const env = {
    AWS_REGION: 'us-east-1',
    TABLE_NAME: target.tableName,
    DYNAMODB_ENDPOINT: meter.endpoint,
    RELAYWATCH_SHARDS: String(target.shards),
    RELAYWATCH_AGGREGATE_WAITS: 'false',
    LOG_LEVEL: 'error',
    RELAYWATCH_WINDOW_MINUTES: String(how.windowMinutes),
    RELAYWATCH_RELEASE_MINUTES: String(how.releaseMinutes),
  };
  const eventAt = (minute: number) => ({
    time: new Date(
      minuteClosesAt(minute, { graceMs: 10_000 }) + 1_000,
    ).toISOString(),
  });
  const aggregatorOptions = {
    bundle: options.bundle,
    node: options.node,
    dir: options.dir,
    nodeFlags: how.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${how.profileDir}`]
      : [],
    env,
    memoryMb: how.memoryMb,
  };
  const floorOptions = {
    bundle: options.floorBundle,
    node: options.node,
    dir: options.dir,
    env,
  };
  // Warm: one execution environment each for the aggregation and the floors,
  // as a function invoked every minute keeps.
  const processOf = how.warm ? startBundled : coldBundled;
  const aggregator = processOf(aggregatorOptions);
  const floors = processOf(floorOptions);
  try {
    if (how.warm) {
      progress(
        `fleet ${machines}: warming DynamoDB Local's transactions up (${WARM_UP_TRANSACTIONS} of ${WARM_UP_WRITES} made-up writes)`,
      );
      await floors.call({ warmUp: WARM_UP_TRANSACTIONS });
    }
    // The minute before the failures begin: the same fleet, every machine
    // healthy. A function invoked every minute has decided minutes like it
    // before a failure starts, so the first minute finds the fleet's state
    // and, warm, runs code V8 has already optimised for the fleet's rows.
    progress(`fleet ${machines}: the minute before, every machine healthy`);
    await writeFleet(target, machines, options.minute - 1, {
      viaStore: how.viaStore,
      healthy: true,
    });
    if (how.warm) await floors.call({ minutes: [options.minute - 1] });
    await aggregator.call(eventAt(options.minute - 1));
    const rows: FleetRow[] = [];
    // A closing decision reads its window's minutes; so does its floor.
    const windowOf = (minute: number) =>
      minuteRange(minute - how.windowMinutes + 1, minute);
    const closing = (label: string, minute: number): BenchedPass => ({
      label,
      minute,
      event: eventAt(minute),
      reads: windowOf(minute),
    });
    const steady = Array.from({ length: how.steadyMinutes }, (_, n) =>
      closing(
        how.steadyMinutes === 1 ? 'steady' : `steady ${n + 1}`,
        options.minute + 1 + n,
      ),
    );
    // After an outage a run decides every minute missed: the last of them measures that run.
    const missedFrom = options.minute + 1 + how.steadyMinutes;
    const missed = Array.from(
      { length: how.catchUpMinutes },
      (_, n) => missedFrom + n,
    );
    const catchUp = missed.map((minute, n) => ({
      ...closing(`catch-up ${how.catchUpMinutes}`, minute),
      // Its floor reads every minute the run decides, with their windows.
      reads: minuteRange(
        missedFrom - how.windowMinutes + 1,
        missed.at(-1) ?? 0,
      ),
      writtenOnly: n < missed.length - 1,
    }));
    const open = options.minute + 1 + how.steadyMinutes + how.catchUpMinutes;
    // The late pass's minute, closed, and the next one written whole.
    const lateRun: BenchedPass[] = how.lateRun
      ? [
          {
            label: 'late run',
            minute: open + 1,
            event: eventAt(open),
            reads: [open, open + 1],
            ownProcess: true,
          },
        ]
      : [];
    const passes: BenchedPass[] = [
      closing('first', options.minute),
      ...steady,
      ...catchUp,
      // A run's later passes decide live over the trailing window: what the
      // window still holds of the minute closed at the run's start and the
      // open minute, read afresh by each pass; here a run of one such pass
      // (it reads the closed minute again), with the whole open minute written.
      {
        label: 'late pass',
        minute: open,
        event: {
          time: new Date(minuteStart(open) + LATE_PASS_MS).toISOString(),
        },
        // Its trailing window reaches back into the minute before its first.
        reads: minuteRange(open - how.windowMinutes, open),
      },
      ...lateRun,
    ];
    for (const {
      label,
      minute,
      event,
      reads,
      writtenOnly,
      ownProcess,
    } of passes) {
      progress(`fleet ${machines}, ${label}: writing minute ${minute}`);
      const writeStarted = performance.now();
      const path = await writeFleet(target, machines, minute, {
        viaStore: how.viaStore,
      });
      const writeSeconds = (performance.now() - writeStarted) / 1000;
      if (writtenOnly) continue;
      progress(
        `fleet ${machines}, ${label}: bare reads of the ${reads.length === 1 ? 'minute' : `${reads.length} minutes it reads`}`,
      );
      const inBench = await floorRead(target, reads);
      meter.reset();
      const floor = await floors.call({ minutes: reads });
      meter.reset();
      progress(
        `fleet ${machines}, ${label}: aggregating (bundled handler, heap as a ${how.memoryMb} MB Lambda's)`,
      );
      const run = ownProcess
        ? await coldBundled(aggregatorOptions).call(event)
        : await aggregator.call(event);
      const used = meter.reset();
      const windows = changeWindowsOf(used);
      progress(
        `fleet ${machines}, ${label}: write floor: its ${used.transactionWrites.length} transactions replayed item for item under keys of the replay's own (${used.transactionWrites.reduce((sum, n) => sum + n, 0)} writes)${windows ? `, in its ${windows} change window${windows === 1 ? '' : 's'} (an update before, one after)` : ''}`,
      );
      // A fresh DynamoDB Local per run and a minute per replay: the tag is unique.
      const writeFloor = await writeFloorOf(
        floors,
        meter,
        used,
        `floor#${minute}`,
      );
      if (how.profileDir) {
        const name = `timeline-${machines}-${label.replace(' ', '-')}`;
        writeFileSync(
          join(how.profileDir, `${name}.txt`),
          `${timelineOf(used)}\n`,
        );
        if (writeFloor.replayed)
          writeFileSync(
            join(how.profileDir, `${name}-write-floor.txt`),
            `${timelineOf(writeFloor.replayed)}\n`,
          );
      }
      const phases = phasesOf(used.spans);
      rows.push([
        machines,
        label,
        `${path} ${writeSeconds.toFixed(0)} s`,
        inBench.rows,
        run.ok ? `ok (${run.minutes} min)` : `FAILED ${run.error ?? ''}`,
        run.ms,
        floor.ok ? floor.ms : Number.NaN,
        run.ms / floor.ms,
        writeFloor.ms,
        run.ms / (floor.ms + writeFloor.ms),
        phases.readMs,
        phases.writesMs,
        inBench.ms,
        run.ms / inBench.ms,
        run.maxRssMb,
        used.readUnits,
        used.writeUnits,
        used.largestItemBytes / 1024,
        run.decisions,
        busyOf(used.busyMs),
      ]);
    }
    return rows;
  } finally {
    await aggregator.stop();
    await floors.stop();
  }
}

/**
 * `floor ms` is the bare read timed as the aggregation is (in a warm process
 * of its own, or with --cold a fresh one, first connection included);
 * `write floor ms` the aggregation's ban transactions replayed item for item
 * under partition keys of the replay's own, and its change windows' updates
 * on a version item of the bench's, timed the same way in the same process;
 * `floors ratio` the aggregation over the two floors together; `bench floor
 * ms` the read in the bench process on a client already connected.
 */
export const FLEET_HEADERS = [
  'IPs',
  'minute',
  'written via',
  'rows',
  'aggregation',
  'ms',
  'floor ms',
  'ratio',
  'write floor ms',
  'floors ratio',
  'read ms',
  'writes ms',
  'bench floor ms',
  'bench ratio',
  'peak MB',
  'RRU',
  'WRU',
  'largest KB',
  'decisions',
  'DynamoDB busy s',
];
export const POLICY_HEADERS = [
  'IPs',
  'rows',
  'ms',
  'heap MB',
  'reporting',
  'bans',
];
