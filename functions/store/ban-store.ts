import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { Ban } from '../core/blocklist.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type BanStoreOptions = { client: DynamoDBDocumentClient; tableName: string };

type BanItem = Ban & { pk: string; sk: string; expiresAt: number };

/** A ban is "in force" while until > now; TTL deletes it only eventually. */
const BAN_IN_FORCE = '#until > :now';
const NO_BAN_IN_FORCE = `attribute_not_exists(#pk) OR #until <= :now`;

function toItem(ban: Ban): BanItem {
  return {
    ...ban,
    pk: keys.banPartition(),
    sk: keys.ban(ban.ip),
    // TTL is the ban's end: DynamoDB removes the item after it, readers check `until` themselves.
    [TABLE.ttlAttribute]: Math.ceil(ban.until / 1000),
  } as BanItem;
}

function fromItem(item: Record<string, unknown>): Ban {
  const { pk: _pk, sk: _sk, expiresAt: _ttl, ...ban } = item as BanItem;
  return ban;
}

/** Ban items, one per IP, all under one partition so the blocklist is one Query. */
export function createBanStore(options: BanStoreOptions) {
  const { client, tableName } = options;
  const key = (ip: string) => ({ [TABLE.partitionKey]: keys.banPartition(), [TABLE.sortKey]: keys.ban(ip) });

  return {
    async getBan(ip: string): Promise<Ban | undefined> {
      const result = await client.send(new GetCommand({ TableName: tableName, Key: key(ip) }));
      return result.Item ? fromItem(result.Item) : undefined;
    },

    /** Bans in force at `now` (expired-but-not-yet-deleted items are filtered out). */
    async listBans(now: number): Promise<Ban[]> {
      const items = await queryItems(client, {
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        FilterExpression: BAN_IN_FORCE,
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#until': 'until' },
        ExpressionAttributeValues: { ':pk': keys.banPartition(), ':now': now },
      });
      return items.map(fromItem);
    },

    /**
     * Puts an automatic ban unless one is already in force: two overlapping
     * aggregation runs cannot ban (and escalate) the same IP twice.
     */
    async putBanIfNoneInForce(ban: Ban, now: number): Promise<{ applied: boolean }> {
      try {
        await client.send(
          new PutCommand({
            TableName: tableName,
            Item: toItem(ban),
            ConditionExpression: NO_BAN_IN_FORCE,
            ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#until': 'until' },
            ExpressionAttributeValues: { ':now': now },
          }),
        );
        return { applied: true };
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return { applied: false };
        throw error;
      }
    },

    /** Puts a ban whatever was there; answers the ban it replaced, if one was in force. */
    async putBan(ban: Ban, now: number): Promise<{ replaced: Ban | undefined }> {
      const result = await client.send(
        new PutCommand({ TableName: tableName, Item: toItem(ban), ReturnValues: 'ALL_OLD' }),
      );
      const old = result.Attributes ? fromItem(result.Attributes) : undefined;
      return { replaced: old && old.until > now ? old : undefined };
    },

    /**
     * Lifts the ban on `ip` if one is in force, answering it; `undefined` when
     * there was none (an expired item TTL has not removed yet counts as none).
     * `onlyIfUntil` makes the delete apply only to the ban the caller saw, so
     * an early release never removes a newer ban.
     */
    async liftBan(ip: string, now: number, onlyIfUntil?: number): Promise<Ban | undefined> {
      try {
        const result = await client.send(
          new DeleteCommand({
            TableName: tableName,
            Key: key(ip),
            ConditionExpression: onlyIfUntil === undefined ? BAN_IN_FORCE : `${BAN_IN_FORCE} AND #until = :seen`,
            ExpressionAttributeNames: { '#until': 'until' },
            ExpressionAttributeValues:
              onlyIfUntil === undefined ? { ':now': now } : { ':now': now, ':seen': onlyIfUntil },
            ReturnValues: 'ALL_OLD',
          }),
        );
        return result.Attributes ? fromItem(result.Attributes) : undefined;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return undefined;
        throw error;
      }
    },
  };
}

export type BanStore = ReturnType<typeof createBanStore>;
