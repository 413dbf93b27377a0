/**
 * The bare read of minutes' rows that the floors time: every shard of every
 * minute in parallel, paginated, unmarshalled, nothing else. One piece for
 * the floor's own process (floor-entry.ts) and the bench's (fleet.ts), so
 * both floors read alike.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { bucketId } from '../../functions/core/minutes.js';
import { queryItems } from '../../functions/store/query.js';
import { keys, TABLE } from '../../functions/store/table.js';

export async function readMinutesBare(
  client: DynamoDBDocumentClient,
  table: { tableName: string; shards: number },
  minutes: readonly number[],
): Promise<Record<string, unknown>[]> {
  const pages = await Promise.all(
    minutes.flatMap((minute) =>
      Array.from({ length: table.shards }, (_, shard) =>
        queryItems(client, {
          TableName: table.tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: {
            ':pk': keys.heartbeatBucket(bucketId(minute), shard),
          },
        }),
      ),
    ),
  );
  return pages.flat();
}
