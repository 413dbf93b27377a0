/**
 * The aggregator state's fixed cost, store alone, on DynamoDB Local:
 *
 *   node --import tsx test/bench/state-store.ts [--sizes 1000,10000,100000] [--repeat 3]
 *
 * Prints figures, asserts nothing, is never part of npm test. It starts its
 * own DynamoDB Local (in memory, on a free port) and stops it at the end.
 *
 * Per size (IPs in the fleet view and in the last-seen minutes, 10 % of them
 * leased), one state is written, then each repetition does what a steady
 * aggregation run does with its state, through a fresh store (a cold start):
 *
 *   read     the aggregator's read of its state (consistent, no fleet view)
 *   close    the closing minute's write: a new fleet view, new last-seen
 *            minutes, the same outages and capped IPs
 *   live     the live pass's write: new leases, the rest as read or written
 *   fleet    GET /v1/fleet's read (eventual, with the fleet view)
 *
 * Each figure is the median of the repetitions: `ms` wall time, `cpu` the
 * milliseconds of CPU this process spent meanwhile (user + system: parsing,
 * serialising, gzip, the SDK; DynamoDB Local is another process).
 */
import { randomBytes } from 'node:crypto';
import { bucketId } from '../../functions/core/minutes.js';
import type { IpEvidence } from '../../functions/core/policy.js';
import { emptyEvidence } from '../../functions/core/rules/evidence.js';
import { createDocumentClient } from '../../functions/store/client.js';
import type { AggregatorState } from '../../functions/store/state-store.js';
import { createStateStore } from '../../functions/store/state-store.js';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { ensureTable } from '../../infra/local/table.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}
const sizes = option('--sizes', '1000,10000,100000')
  .split(',')
  .map((size) => Number(size.replaceAll('_', '')));
const repeat = Number(option('--repeat', '3'));
if (
  sizes.some((size) => !Number.isInteger(size) || size < 1) ||
  !Number.isInteger(repeat) ||
  repeat < 1
)
  throw new Error('--sizes takes IP counts (1000,10000), --repeat a count');

const ipOf = (n: number) =>
  `2001:db8:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`;

/** A closing minute's state of `ips` IPs; `salt` changes the evidence as another minute would. */
function stateOf(ips: number, minute: number, salt: number): AggregatorState {
  const reporting: IpEvidence[] = Array.from({ length: ips }, (_, n) => ({
    ...emptyEvidence(ipOf(n)),
    samples: 120 + ((n + salt) % 7),
    ok: 118,
    connectFailed: 2,
    failRatio: 2 / 120,
    originErrors: (n + salt) % 3,
    origins: 57,
  }));
  return {
    lastMinute: minute,
    reporting,
    lastSeen: Object.fromEntries(
      reporting.map((e, n) => [e.ip, minute - ((n + salt) % 30)]),
    ),
    leases: Object.fromEntries(
      reporting
        .slice(0, Math.ceil(ips / 10))
        .map((e, n) => [e.ip, [minute * 60_000 - n * 10, 60, 1]]),
    ),
    fleetSilent: false,
    outages: ['rtmp://origin-z.example.net'],
    fleetWide: false,
    capInForce: false,
    capped: [],
  };
}

async function timed<T>(
  work: () => Promise<T>,
): Promise<{ value: T; ms: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = await work();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { value, ms, cpu: (used.user + used.system) / 1000 };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

const dynamodb = await startDynamoDbLocal({
  port: 0,
  startTimeoutMs: 60_000,
});
const client = createDocumentClient({
  region: 'us-east-1',
  endpoint: dynamodb.endpoint,
});
const STEPS = ['read', 'close', 'live', 'fleet'] as const;
const rows: string[] = [];
try {
  for (const ips of sizes) {
    const tableName = `relaywatch-statecost-${randomBytes(4).toString('hex')}`;
    await ensureTable({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      tableName,
    });
    // Near now: pieces of a minute long past would be TTL-deleted.
    const first = Math.floor(Date.now() / 60_000) - repeat - 1;
    await createStateStore({ client, tableName }).advanceAggregatorState(
      stateOf(ips, first, 0),
    );
    const figures = Object.fromEntries(
      STEPS.map((step) => [step, { ms: [] as number[], cpu: [] as number[] }]),
    );
    const record = (
      step: (typeof STEPS)[number],
      figure: { ms: number; cpu: number },
    ) => {
      figures[step]?.ms.push(figure.ms);
      figures[step]?.cpu.push(figure.cpu);
    };
    for (let run = 1; run <= repeat; run++) {
      const minute = first + run;
      const store = createStateStore({ client, tableName });
      const read = await timed(() =>
        store.getAggregatorState({ consistent: true, fleetView: false }),
      );
      record('read', read);
      if (!read.value) throw new Error('no state read');
      const closing = stateOf(ips, minute, run);
      const close = await timed(() => store.advanceAggregatorState(closing));
      record('close', close);
      const leases = { ...closing.leases };
      leases[ipOf(0)] = [minute * 60_000 + 20_000, 60, 1];
      const live = await timed(() =>
        store.advanceAggregatorState({
          ...closing,
          lastPassAt: minute * 60_000 + 20_000,
          leases,
        }),
      );
      record('live', live);
      if (!close.value.applied || !live.value.applied)
        throw new Error('a write did not apply');
      record(
        'fleet',
        await timed(() =>
          createStateStore({ client, tableName }).getAggregatorState({
            consistent: false,
          }),
        ),
      );
    }
    rows.push(
      [
        String(ips).padStart(7),
        ...STEPS.flatMap((step) => [
          median(figures[step]?.ms ?? [])
            .toFixed(0)
            .padStart(7),
          median(figures[step]?.cpu ?? [])
            .toFixed(0)
            .padStart(7),
        ]),
      ].join(' '),
    );
    process.stdout.write(`… ${ips} IPs done (${bucketId(first)})\n`);
  }
} finally {
  client.destroy();
  await dynamodb.stop();
}
process.stdout.write(
  `\naggregator state, store alone (medians of ${repeat})\n${[
    '    IPs',
    ...STEPS.flatMap((step) => [`${step} ms`.padStart(7), 'cpu'.padStart(7)]),
  ].join(' ')}\n${rows.join('\n')}\n`,
);
