/**
 * npm run bench -- --in-memory 100000: one aggregation of N machines' minute
 * with the real stores and aggregator over an in-memory table (a fake
 * document client answering Query, BatchWrite, TransactWrite and the rest),
 * so the aggregation's own CPU and memory are measured without DynamoDB
 * Local (which takes many minutes to take 100,000 rows on a loaded machine).
 * Run it in a process whose heap is capped as Lambda caps it. Prints one JSON
 * line; asserts nothing.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createAggregator } from '../../functions/aggregator.js';
import { parseConfig } from '../../functions/core/config.js';
import {
  minuteClosesAt,
  minuteOf,
  minuteStart,
} from '../../functions/core/minutes.js';
import type { MinuteTally } from '../../functions/core/tally.js';
import { tallyHeartbeats } from '../../functions/core/tally.js';
import { createLogger } from '../../functions/log.js';
import { createBanStore } from '../../functions/store/ban-store.js';
import { createEventStore } from '../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../functions/store/heartbeat-store.js';
import { createStateStore } from '../../functions/store/state-store.js';
import { keys } from '../../functions/store/table.js';
import { machineReport } from '../helpers/fleet.js';

/** Rows a fake Query page holds (~1 MB of packed rows). */
const PAGE_ROWS = 2_000;

type Command = { constructor: { name: string }; input: Record<string, never> };

/** A document client over an in-memory heartbeat table; every other call succeeds and keeps nothing. */
function fakeClient() {
  const partitions = new Map<string, Record<string, unknown>[]>();
  const calls: Record<string, number> = {};
  // A real document client (the SDK's paginators check the class) whose
  // requests never leave the process.
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
  );
  Object.assign(client, {
    async send(command: Command) {
      const name = command.constructor.name;
      calls[name] = (calls[name] ?? 0) + 1;
      const input = command.input as Record<string, unknown>;
      if (name === 'BatchWriteCommand') {
        const requests = Object.values(
          input.RequestItems as Record<string, Array<Record<string, unknown>>>,
        ).flat();
        for (const request of requests) {
          const item = (
            request.PutRequest as { Item?: Record<string, unknown> }
          )?.Item;
          if (!item || !keys.isHeartbeatBucket(String(item.pk))) continue;
          const list = partitions.get(String(item.pk)) ?? [];
          list.push(item);
          partitions.set(String(item.pk), list);
        }
        return {};
      }
      if (name === 'QueryCommand') {
        const values = input.ExpressionAttributeValues as Record<
          string,
          string
        >;
        const all = partitions.get(values[':pk'] as string) ?? [];
        const start = Number(
          (input.ExclusiveStartKey as { n?: number } | undefined)?.n ?? 0,
        );
        const end = Math.min(all.length, start + PAGE_ROWS);
        return {
          Items: all.slice(start, end),
          ...(end < all.length ? { LastEvaluatedKey: { n: end } } : {}),
        };
      }
      if (name === 'BatchGetCommand') return { Responses: {} };
      return {};
    },
  });
  return { client, calls };
}

export async function benchInMemory(machines: number) {
  const { client, calls } = fakeClient();
  const tableName = 'relaywatch-in-memory';
  const config = parseConfig({
    TABLE_NAME: tableName,
    RELAYWATCH_SHARDS: '4',
    RELAYWATCH_AGGREGATE_WAITS: 'false',
    LOG_LEVEL: 'error',
  });
  const store = { client, tableName, shards: 4, bucketTtlHours: 48 };
  const writer = createHeartbeatStore(store);
  const minute = minuteOf(Date.now()) - 3;
  for (let from = 0; from < machines; from += 25) {
    const tallies: MinuteTally[] = [];
    for (let n = from; n < Math.min(machines, from + 25); n++)
      tallies.push(
        ...tallyHeartbeats(machineReport(n, minute), {
          now: minuteStart(minute) + 55_000,
          graceMs: 10_000,
        }).tallies,
      );
    await writer.addTallies(tallies, { writeId: `b:bench-${from}` });
  }
  for (const name of Object.keys(calls)) delete calls[name];
  const aggregator = createAggregator({
    config,
    heartbeats: createHeartbeatStore(store),
    bans: createBanStore({ client, tableName }),
    events: createEventStore({ client, tableName, eventTtlDays: 30 }),
    state: createStateStore({ client, tableName }),
    log: createLogger({ level: 'error', write: () => undefined }),
  });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const summary = await aggregator.run(
    minuteClosesAt(minute, { graceMs: 10_000 }) + 1_000,
  );
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const decisions: Record<string, number> = {};
  for (const { type } of summary.decisions)
    decisions[type] = (decisions[type] ?? 0) + 1;
  return {
    machines,
    ms: Math.round(ms),
    cpuMs: Math.round((used.user + used.system) / 1000),
    // The whole process: the fake table's rows included.
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    decisions,
    calls,
  };
}
