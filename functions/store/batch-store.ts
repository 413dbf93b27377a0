import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { keys, TABLE } from './table.js';

export type BatchStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  ttlHours: number;
};

/** What a batchId stands for: its content, and when it first arrived. */
export type BatchClaim = {
  scope: string;
  batchId: string;
  digest: string;
  receivedAt: number;
};

export type BatchClaimResult =
  | { status: 'first' | 'repeat'; receivedAt: number }
  | { status: 'conflict' };

/**
 * Batch markers: one item per (reporter scope, batchId), written before the
 * batch's rows and kept as long as they are. A repeat of the same content
 * learns the first arrival's time, so heartbeats without `ts` land in the same
 * minute (and the same row keys) as the first time, even when the retry comes
 * a minute later; other content under a used batchId is a conflict. Kept apart
 * from the heartbeat rows, whose encoding it does not touch.
 */
export function createBatchStore(options: BatchStoreOptions) {
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
        const old = error.Item
          ? unmarshall(error.Item as Record<string, AttributeValue>)
          : undefined;
        if (!old || old.digest !== batch.digest) return { status: 'conflict' };
        return { status: 'repeat', receivedAt: old.receivedAt as number };
      }
    },
  };
}

export type BatchStore = ReturnType<typeof createBatchStore>;
