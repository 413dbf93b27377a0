/**
 * The floors as a handler: bundled and run in a process of its own exactly as
 * the aggregate handler is (fleet.ts), so the floors and the aggregation are
 * timed the same way: after the module is loaded, the client created at load
 * (in a fresh process, the first connection inside the timing). Three events:
 * `{ minutes }` is the bare read of those minutes' rows (every shard of
 * each, all in parallel); `{ transactions, tag }`
 * the bare writes of a minute's bans: the aggregation's own transactions,
 * item for item, moved to partitions of the replay's own, inside its change
 * windows if it has any (writeFloorCalls); `{ warmUp }` that many
 * transactions of WARM_UP_WRITES made-up ban writes (benchBanWrites), which
 * warm DynamoDB Local's transactions up before any was recorded.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../../functions/store/client.js';
import type { WriteFloorEvent } from './ban-writes.js';
import {
  benchBanWrites,
  sendWriteFloor,
  WARM_UP_WRITES,
  writeFloorCalls,
} from './ban-writes.js';
import { readMinutesBare } from './bare-read.js';

const client = createDocumentClient({
  region: process.env.AWS_REGION ?? 'us-east-1',
  endpoint: process.env.DYNAMODB_ENDPOINT,
});

export type FloorEvent =
  | { minutes: readonly number[] }
  | WriteFloorEvent
  | { warmUp: number };

export async function handler(
  event: FloorEvent,
): Promise<{ rows: number } | { transactions: number }> {
  const tableName = process.env.TABLE_NAME as string;
  if ('transactions' in event) {
    await sendWriteFloor(client, writeFloorCalls(tableName, event, Date.now()));
    return { transactions: event.transactions.length };
  }
  if ('warmUp' in event) {
    for (let t = 0; t < event.warmUp; t++)
      await client.send(
        new TransactWriteCommand({
          TransactItems: benchBanWrites(tableName, `warm#${t}`, WARM_UP_WRITES),
        }),
      );
    return { transactions: event.warmUp };
  }
  const items = await readMinutesBare(
    client,
    { tableName, shards: Number(process.env.RELAYWATCH_SHARDS) },
    event.minutes,
  );
  return { rows: items.length };
}
