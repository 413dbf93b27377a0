/**
 * The bare read of one minute's rows as a handler: bundled and run in a
 * fresh process exactly as the aggregate handler is (fleet.ts), so the
 * floor and the aggregation are timed the same way: after the module is
 * loaded, the client created at load, the first connection inside the timing.
 */
import { bucketId } from '../../functions/core/minutes.js';
import { createDocumentClient } from '../../functions/store/client.js';
import { queryItems } from '../../functions/store/query.js';
import { keys, TABLE } from '../../functions/store/table.js';

const client = createDocumentClient({
  region: process.env.AWS_REGION ?? 'us-east-1',
  endpoint: process.env.DYNAMODB_ENDPOINT,
});

/** Every shard of the minute in parallel, paginated, unmarshalled, nothing else. */
export async function handler(event: {
  minute: number;
}): Promise<{ rows: number }> {
  const tableName = process.env.TABLE_NAME as string;
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
