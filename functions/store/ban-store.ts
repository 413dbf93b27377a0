import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import type { Ban } from '../core/blocklist.js';
import { isBanActive } from '../core/blocklist.js';
import type { Logger } from '../log.js';
import {
  defaultStoreLog,
  ITEM_VERSION_1,
  parseItem,
  parseItemsSkippingBad,
} from './items.js';
import type { BanLift, BanStore } from './ports.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type BanStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Where a ban item left out of a list is reported (default: warn lines on stdout). */
  log?: Pick<Logger, 'warn'>;
};

/**
 * A ban item as stored (beside its key and TTL). `v` came with this schema:
 * items written before it read as version 1.
 */
export const banItemSchema = z.object({
  v: z._default(z.literal(ITEM_VERSION_1), ITEM_VERSION_1),
  ip: z.string(),
  reason: z.string(),
  since: z.number(),
  until: z.number(),
  manual: z.boolean(),
  failRatio: z.nullable(z.number()),
  samples: z.nullable(z.number()),
  offense: z.number(),
  rule: z.string(),
});

/** The ban list's version item: a counter every ban change raises. */
const versionItemSchema = z.object({ version: z.number() });

/** A ban is "in force" while until > now; TTL deletes it only eventually. */
const BAN_IN_FORCE = '#until > :now';
const NO_BAN_IN_FORCE = `attribute_not_exists(#pk) OR #until <= :now`;

function toItem(ban: Ban): Record<string, unknown> {
  return {
    ...ban,
    v: ITEM_VERSION_1,
    [TABLE.partitionKey]: keys.banPartition(),
    [TABLE.sortKey]: keys.ban(ban.ip),
    // TTL is the ban's end: DynamoDB removes the item after it, readers check `until` themselves.
    [TABLE.ttlAttribute]: Math.ceil(ban.until / 1000),
  };
}

/** The ban a stored item holds; StoredItemError when it does not read as one. */
export function banOfItem(item: Record<string, unknown>): Ban {
  const { v: _v, ...ban } = parseItem(banItemSchema, item);
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

/** Bans written in one transaction: with its offense, two items a ban, and the version bump (100 at most). */
const BANS_PER_TRANSACTION = 49;

/**
 * The bans of a cancelled batch whose ban condition failed, when that is the
 * only reason it was cancelled; undefined for any other failure.
 */
function refusedBans(
  error: unknown,
  batch: ReadonlyArray<{
    index: number;
    also?: readonly Record<string, unknown>[];
  }>,
): Set<number> | undefined {
  if (!(error instanceof TransactionCanceledException)) return undefined;
  const reasons = error.CancellationReasons ?? [];
  const refused = new Set<number>();
  let at = 0;
  for (const entry of batch) {
    const own = reasons.slice(at, at + 1 + (entry.also?.length ?? 0));
    at += 1 + (entry.also?.length ?? 0);
    if (own[0]?.Code === 'ConditionalCheckFailed') refused.add(entry.index);
    else if (own.some((reason) => reason.Code && reason.Code !== 'None'))
      return undefined;
  }
  const bump = reasons[at];
  if (bump?.Code && bump.Code !== 'None') return undefined;
  return refused.size ? refused : undefined;
}

/**
 * Ban items, one per IP, all under one partition so the blocklist is one
 * Query; beside them a version item that every ban change bumps in the same
 * transaction, so a poller can tell "unchanged" with one small read.
 */
export function createBanStore(options: BanStoreOptions): BanStore {
  const { client, tableName } = options;
  const log = options.log ?? defaultStoreLog;
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
  /** Writes the ban change and the version bump together, or neither. */
  const changeWithVersion = (change: Record<string, unknown>) =>
    client.send(
      new TransactWriteCommand({ TransactItems: [change, bumpVersion] }),
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
    // One damaged item must not empty the blocklist nor stop the aggregator:
    // it is left out (that one IP goes unbanned) and reported.
    return parseItemsSkippingBad(banItemSchema, items, log).map(
      ({ v: _v, ...ban }) => ban,
    );
  };
  const readBan = async (ip: string) => {
    const result = await client.send(
      new GetCommand({
        TableName: tableName,
        Key: key(ip),
        ConsistentRead: true,
      }),
    );
    return result.Item ? banOfItem(result.Item) : undefined;
  };

  return {
    async getBan(ip: string): Promise<Ban | undefined> {
      const result = await client.send(
        new GetCommand({ TableName: tableName, Key: key(ip) }),
      );
      return result.Item ? banOfItem(result.Item) : undefined;
    },

    /** Bans in force at `now` (expired-but-not-yet-deleted items are filtered out). */
    listBans: (now: number) => listBans(now, false),

    /**
     * Puts an automatic ban unless one is already in force: two overlapping
     * aggregation runs cannot ban (and escalate) the same IP twice.
     */
    async putBanIfNoneInForce(
      ban: Ban,
      now: number,
    ): Promise<{ applied: boolean }> {
      try {
        await changeWithVersion({
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
        });
        return { applied: true };
      } catch (error) {
        if (banConditionFailed(error)) return { applied: false };
        throw error;
      }
    },

    /**
     * putBanIfNoneInForce for many bans, in transactions of up to
     * BANS_PER_TRANSACTION bans (each with its `also` items) and one version
     * bump, one transaction at a time (they all bump the version item). A ban
     * whose condition fails (one is in force already) is left out and its
     * transaction written again without it. Answers, per ban, whether it was
     * applied.
     */
    async putBansIfNoneInForce(
      entries: ReadonlyArray<{
        ban: Ban;
        also?: readonly Record<string, unknown>[];
      }>,
      now: number,
    ): Promise<boolean[]> {
      const applied = entries.map(() => false);
      for (let from = 0; from < entries.length; from += BANS_PER_TRANSACTION) {
        let pending = entries
          .slice(from, from + BANS_PER_TRANSACTION)
          .map((entry, i) => ({ ...entry, index: from + i }));
        for (let attempt = 1; pending.length; attempt++) {
          const items = pending.flatMap(({ ban, also = [] }) => [
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
            ...also,
          ]);
          try {
            await client.send(
              new TransactWriteCommand({
                TransactItems: [...items, bumpVersion],
              }),
            );
            for (const { index } of pending) applied[index] = true;
            break;
          } catch (error) {
            const refused = refusedBans(error, pending);
            if (!refused || attempt >= MAX_RACE_ATTEMPTS) throw error;
            pending = pending.filter((entry) => !refused.has(entry.index));
          }
        }
      }
      return applied;
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
      { now, onlyIfUntil }: BanLift,
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
      return result.Item
        ? parseItem(versionItemSchema, result.Item).version
        : 0;
    },

    /** Bans in force at `now`, read strongly consistent (after a version change). */
    async listBansConsistent(now: number): Promise<Ban[]> {
      return listBans(now, true);
    },
  };
}
