import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { ITEM_VERSION_1, parseItem } from './items.js';
import type { Revocation, RevocationStore } from './ports.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type RevocationStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
};

export type { Revocation };

/**
 * A revocation item as stored (beside its key). `v` came with this schema:
 * items written before it read as version 1.
 */
const revocationItemSchema = z.object({
  v: z._default(z.literal(ITEM_VERSION_1), ITEM_VERSION_1),
  ip: z.string(),
  before: z.number(),
  actor: z.string(),
});

/**
 * Revoked per-machine reporter tokens: the only per-machine credential state,
 * written for revoked machines only. One partition, read whole and cached by
 * the functions that verify machine tokens.
 */
export function createRevocationStore(
  options: RevocationStoreOptions,
): RevocationStore {
  const { client, tableName } = options;
  return {
    async revoke(revocation: Revocation): Promise<void> {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            [TABLE.partitionKey]: keys.revocationPartition(),
            [TABLE.sortKey]: keys.revocation(revocation.ip),
            v: ITEM_VERSION_1,
            ip: revocation.ip,
            before: revocation.before,
            actor: revocation.actor,
          },
        }),
      );
    },

    /**
     * Every revocation, by IP. A damaged item fails the read (StoredItemError)
     * rather than being left out: leaving it out would let a revoked machine's
     * tokens back in. The credential cache keeps the last list it read.
     */
    async listRevocations(): Promise<Map<string, number>> {
      const items = await queryItems(client, {
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: { ':pk': keys.revocationPartition() },
      });
      return new Map(
        items.map((item) => {
          const { ip, before } = parseItem(revocationItemSchema, item);
          return [ip, before];
        }),
      );
    },
  };
}
