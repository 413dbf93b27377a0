import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { Ban } from '../core/blocklist.js';
import { isBanActive } from '../core/blocklist.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type BanStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
};

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

/** A changed ban raced with another writer between our read and our write: read again, this many times. */
const MAX_RACE_ATTEMPTS = 5;

/** True when the transaction failed only because the ban item's condition did not hold. */
function banConditionFailed(error: unknown): boolean {
  return (
    error instanceof TransactionCanceledException &&
    error.CancellationReasons?.[0]?.Code === 'ConditionalCheckFailed' &&
    error.CancellationReasons.slice(1).every(
      (reason) => !reason.Code || reason.Code === 'None',
    )
  );
}

/**
 * Ban items, one per IP, all under one partition so the blocklist is one
 * Query; beside them a version item that every ban change bumps in the same
 * transaction, so a poller can tell "unchanged" with one small read.
 */
export function createBanStore(options: BanStoreOptions) {
  const { client, tableName } = options;
  const key = (ip: string) => ({
    [TABLE.partitionKey]: keys.banPartition(),
    [TABLE.sortKey]: keys.ban(ip),
  });
  const versionKey = {
    [TABLE.partitionKey]: keys.banVersionPartition(),
    [TABLE.sortKey]: keys.banVersion(),
  };
  const bumpVersion = {
    Update: {
      TableName: tableName,
      Key: versionKey,
      UpdateExpression: 'ADD #version :one',
      ExpressionAttributeNames: { '#version': 'version' },
      ExpressionAttributeValues: { ':one': 1 },
    },
  };
  /** Writes the ban change and the version bump together (with `also`), or none of them. */
  const changeWithVersion = (
    change: Record<string, unknown>,
    also: readonly Record<string, unknown>[] = [],
  ) =>
    client.send(
      new TransactWriteCommand({
        TransactItems: [change, bumpVersion, ...also],
      }),
    );
  const listBans = async (now: number, consistent: boolean): Promise<Ban[]> => {
    const items = await queryItems(client, {
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk',
      FilterExpression: BAN_IN_FORCE,
      ExpressionAttributeNames: {
        '#pk': TABLE.partitionKey,
        '#until': 'until',
      },
      ExpressionAttributeValues: { ':pk': keys.banPartition(), ':now': now },
      ConsistentRead: consistent,
    });
    return items.map(fromItem);
  };
  const readBan = async (ip: string) => {
    const result = await client.send(
      new GetCommand({
        TableName: tableName,
        Key: key(ip),
        ConsistentRead: true,
      }),
    );
    return result.Item ? fromItem(result.Item) : undefined;
  };

  return {
    async getBan(ip: string): Promise<Ban | undefined> {
      const result = await client.send(
        new GetCommand({ TableName: tableName, Key: key(ip) }),
      );
      return result.Item ? fromItem(result.Item) : undefined;
    },

    /** Bans in force at `now` (expired-but-not-yet-deleted items are filtered out). */
    listBans: (now: number) => listBans(now, false),

    KeyConditionExpression: '#pk = :pk',
    FilterExpression: BAN_IN_FORCE,
    ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#until': 'until' },

    /**
     * Puts an automatic ban unless one is already in force: two overlapping
     * aggregation runs cannot ban (and escalate) the same IP twice. `also`:
     * transaction items written with the ban or not at all (its offense).
     */
    async putBanIfNoneInForce(
      ban: Ban,
      now: number,
      also: readonly Record<string, unknown>[] = [],
    ): Promise<{ applied: boolean }> {
      try {
        await changeWithVersion(
          {
            Put: {
              TableName: tableName,
              Item: toItem(ban),
              ConditionExpression: NO_BAN_IN_FORCE,
              ExpressionAttributeNames: {
                '#pk': TABLE.partitionKey,
                '#until': 'until',
              },
              ExpressionAttributeValues: { ':now': now },
            },
          },
          also,
        );
        return { applied: true };
      } catch (error) {
        if (banConditionFailed(error)) return { applied: false };
        throw error;
      }
    },

    /**
     * Puts a ban whatever was there; answers the ban it replaced, if one was in
     * force. The item is read first (a transaction cannot return the old one)
     * and written only if it is still what was read.
     */
    async putBan(
      ban: Ban,
      now: number,
    ): Promise<{ replaced: Ban | undefined }> {
      for (let attempt = 1; ; attempt++) {
        const old = await readBan(ban.ip);
        try {
          await changeWithVersion({
            Put: {
              TableName: tableName,
              Item: toItem(ban),
              ...(old
                ? {
                    ConditionExpression: '#until = :until AND #since = :since',
                    ExpressionAttributeNames: {
                      '#until': 'until',
                      '#since': 'since',
                    },
                    ExpressionAttributeValues: {
                      ':until': old.until,
                      ':since': old.since,
                    },
                  }
                : {
                    ConditionExpression: 'attribute_not_exists(#pk)',
                    ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
                  }),
            },
          });
          return { replaced: old && old.until > now ? old : undefined };
        } catch (error) {
          if (!banConditionFailed(error) || attempt >= MAX_RACE_ATTEMPTS)
            throw error;
        }
      }
    },

    /**
     * Lifts the ban on `ip` if one is in force, answering it; `undefined` when
     * there was none (an expired item TTL has not removed yet counts as none).
     * `onlyIfUntil` makes the delete apply only to the ban the caller saw, so
     * an early release never removes a newer ban.
     */
    async liftBan(
      ip: string,
      now: number,
      onlyIfUntil?: number,
    ): Promise<Ban | undefined> {
      for (let attempt = 1; ; attempt++) {
        const seen = await readBan(ip);
        if (
          !seen ||
          !isBanActive(seen, now) ||
          (onlyIfUntil !== undefined && seen.until !== onlyIfUntil)
        )
          return undefined;
        try {
          await changeWithVersion({
            Delete: {
              TableName: tableName,
              Key: key(ip),
              // Still in force and still the ban we read.
              ConditionExpression: `${BAN_IN_FORCE} AND #until = :seen AND #since = :since`,
              ExpressionAttributeNames: {
                '#until': 'until',
                '#since': 'since',
              },
              ExpressionAttributeValues: {
                ':now': now,
                ':seen': seen.until,
                ':since': seen.since,
              },
            },
          });
          return seen;
        } catch (error) {
          if (!banConditionFailed(error) || attempt >= MAX_RACE_ATTEMPTS)
            throw error;
        }
      }
    },

    /**
     * The ban list's version: a number every ban change raises. It does not
     * move when a ban runs out (readers check `until` themselves).
     */
    async getVersion(): Promise<number> {
      const result = await client.send(
        new GetCommand({ TableName: tableName, Key: versionKey }),
      );
      return typeof result.Item?.version === 'number' ? result.Item.version : 0;
    },

    /** Bans in force at `now`, read strongly consistent (after a version change). */
    async listBansConsistent(now: number): Promise<Ban[]> {
      return listBans(now, true);
    },
  };
}

export type BanStore = ReturnType<typeof createBanStore>;
