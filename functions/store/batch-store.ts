import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import * as z from 'zod/mini';
import { ITEM_VERSION_1, parseItem } from './items.js';
import type { BatchClaim, BatchClaimResult, BatchStore } from './ports.js';
import { keys, TABLE } from './table.js';

export type BatchStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  ttlHours: number;
};

export type { BatchClaim, BatchClaimResult };

/**
 * A batch marker as stored (beside its key and TTL). `v` came with this
 * schema: markers written before it read as version 1.
 */
const batchMarkerSchema = z.object({
  v: z._default(z.literal(ITEM_VERSION_1), ITEM_VERSION_1),
  digest: z.string(),
  receivedAt: z.number(),
});

/**
 * Batch markers: one item per (reporter scope, batchId), written before the
 * batch's rows and kept as long as they are. A repeat of the same content
 * learns the first arrival's time, so heartbeats without `ts` land in the same
 * minute (and the same row keys) as the first time, even when the retry comes
 * a minute later; other content under a used batchId is a conflict. Kept apart
 * from the heartbeat rows, whose encoding it does not touch.
 */
export function createBatchStore(options: BatchStoreOptions): BatchStore {
  const { client, tableName } = options;
  return {
    async claim(batch: BatchClaim): Promise<BatchClaimResult> {
      try {
        await client.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              [TABLE.partitionKey]: keys.batchMarker(
                batch.scope,
                batch.batchId,
              ),
              [TABLE.sortKey]: keys.batchMarkerSort(),
              v: ITEM_VERSION_1,
              digest: batch.digest,
              receivedAt: batch.receivedAt,
              [TABLE.ttlAttribute]:
                Math.floor(batch.receivedAt / 1000) + options.ttlHours * 3600,
            },
            // Only the first arrival writes; later ones read what it recorded (one round trip).
            ConditionExpression: 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
        );
        return { status: 'first', receivedAt: batch.receivedAt };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        if (!error.Item) return { status: 'conflict' };
        // A damaged marker fails the request (StoredItemError, a 500 the
        // reporter retries): calling it a conflict would tell the reporter
        // its batchId was reused, and its heartbeats would be dropped.
        const old = parseItem(
          batchMarkerSchema,
          unmarshall(error.Item as Record<string, AttributeValue>),
        );
        if (old.digest !== batch.digest) return { status: 'conflict' };
        return { status: 'repeat', receivedAt: old.receivedAt };
      }
    },
  };
}
