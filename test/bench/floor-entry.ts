/**
 * The floors as a handler: bundled and run in a process of its own exactly as
 * the aggregate handler is (fleet.ts), so the floors and the aggregation are
 * timed the same way: after the module is loaded, the client created at load
 * (in a fresh process, the first connection inside the timing). Two events:
 * `{ minute }` is the bare read of that minute's rows, `{ writes, tag }` the
 * bare writes of a minute's bans, inside its change windows if it has any
 * (writeFloorCalls).
 */
import { TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { bucketId } from '../../functions/core/minutes.js';
import { createDocumentClient } from '../../functions/store/client.js';
import { queryItems } from '../../functions/store/query.js';
import { keys, TABLE } from '../../functions/store/table.js';
import type { WriteFloorEvent } from './ban-writes.js';
import { writeFloorCalls } from './ban-writes.js';

const client = createDocumentClient({
  region: process.env.AWS_REGION ?? 'us-east-1',
  endpoint: process.env.DYNAMODB_ENDPOINT,
});

export type FloorEvent = { minute: number } | WriteFloorEvent;

export async function handler(
  event: FloorEvent,
): Promise<{ rows: number } | { transactions: number }> {
  const tableName = process.env.TABLE_NAME as string;
  if ('writes' in event) {
    // One at a time, as the ban store sends them to DynamoDB Local, which runs
    // transactions one after another anyway; a window's condition failing
    // fails the floor rather than leave a write out.
    for (const call of writeFloorCalls(tableName, event, Date.now()))
      if ('update' in call) await client.send(new UpdateCommand(call.update));
      else await client.send(new TransactWriteCommand(call.transact));
    return { transactions: event.writes.length };
  }
  // Every shard of the minute in parallel, paginated, unmarshalled, nothing else.
  const shards = Number(process.env.RELAYWATCH_SHARDS);
  const pages = await Promise.all(
    Array.from({ length: shards }, (_, shard) =>
      queryItems(client, {
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: {
          ':pk': keys.heartbeatBucket(bucketId(event.minute), shard),
        },
      }),
    ),
  );
  return { rows: pages.reduce((sum, page) => sum + page.length, 0) };
}
