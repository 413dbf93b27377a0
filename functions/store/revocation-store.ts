import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type RevocationStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
};

/** A machine's reporter tokens issued at or before `before` (epoch ms) are refused. */
export type Revocation = { ip: string; before: number; actor: string };

/**
 * Revoked per-machine reporter tokens: the only per-machine credential state,
 * written for revoked machines only. One partition, read whole and cached by
 * the functions that verify machine tokens.
 */
export function createRevocationStore(options: RevocationStoreOptions) {
  const { client, tableName } = options;
  return {
    async revoke(revocation: Revocation): Promise<void> {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            [TABLE.partitionKey]: keys.revocationPartition(),
            [TABLE.sortKey]: keys.revocation(revocation.ip),
            ...revocation,
          },
        }),
      );
    },

    /** Every revocation, by IP. */
    async listRevocations(): Promise<Map<string, number>> {
      const items = await queryItems(client, {
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: { ':pk': keys.revocationPartition() },
      });
      return new Map(
        items.map((item) => [item.ip as string, item.before as number]),
      );
    },
  };
}

export type RevocationStore = ReturnType<typeof createRevocationStore>;
