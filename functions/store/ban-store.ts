import {
  ConditionalCheckFailedException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import type {
  DynamoDBDocumentClient,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import {
  GetCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { backoffDelay } from '#contract/backoff';
import type { Ban } from '../core/blocklist.js';
import { isBanActive } from '../core/blocklist.js';
import { mapBounded } from '../core/maps.js';
import type { Logger } from '../log.js';
import { isWriteConflict } from './errors.js';
import {
  defaultStoreLog,
  ITEM_VERSION_1,
  parseItem,
  parseItemsSkippingBad,
} from './items.js';
import type { BanChange, BanLift, BanListVersion, BanStore } from './ports.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type BanStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Where a ban item left out of a list is reported (default: warn lines on stdout). */
  log?: Pick<Logger, 'warn'>;
  /** Wall clock (epoch ms) that times change windows; Date.now unless a test moves time. */
  clock?: () => number;
  /**
   * Transactions of one batch of ban changes in flight at once (default
   * TRANSACTION_CONCURRENCY). DynamoDB runs them side by side; DynamoDB Local
   * runs one at a time, and more in flight only wait on each other there.
   */
  transactionConcurrency?: number;
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

/**
 * The ban list's version item: a counter every ban change raises, and while a
 * batch of changes is being written, the end of its change window.
 */
const versionItemSchema = z.object({
  version: z.number(),
  changingUntil: z.optional(z.number()),
});

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

/** A transaction holds at most this many writes (DynamoDB's limit). */
export const TRANSACTION_MAX_ITEMS = 100;
/** Transactions of one batch of ban changes in flight at once, against DynamoDB. */
const TRANSACTION_CONCURRENCY = 4;
/**
 * A batch of ban changes is written inside a change window: readers cache no
 * ban list until it closes or ends. Longer than any writer of a batch runs
 * (the aggregate function's 120 s timeout, asserted by a test), so a writer
 * that dies mid-batch cannot leave a cached list that misses its writes.
 */
export const BAN_CHANGE_WINDOW_MS = 5 * 60_000;

/**
 * The version item's update that opens or closes a change window ending at
 * `until` (table and key left out): a version bump that also sets the
 * window's mark if no later window is open, or removes it if it is still
 * this window's. Its condition failing is the caller's to handle.
 */
export function changeWindowUpdate(step: 'open' | 'close', until: number) {
  return {
    UpdateExpression:
      step === 'open'
        ? 'ADD #version :one SET #changing = :until'
        : 'ADD #version :one REMOVE #changing',
    ConditionExpression:
      step === 'open'
        ? 'attribute_not_exists(#changing) OR #changing < :until'
        : '#changing = :until',
    ExpressionAttributeNames: {
      '#version': 'version',
      '#changing': 'changingUntil',
    },
    ExpressionAttributeValues: { ':one': 1, ':until': until },
  };
}

/** A transaction cancelled only by a concurrent one on the same item is sent again, this many times at most. */
const MAX_CONFLICT_ATTEMPTS = 5;
const CONFLICT_RETRY_MS = 50;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The changes of a cancelled transaction whose ban condition failed, when that
 * (or a conflict with another writer) is the only reason it was cancelled;
 * undefined for any other failure.
 */
function refusedChanges(
  error: unknown,
  batch: ReadonlyArray<{ index: number; change: BanChange }>,
): Set<number> | undefined {
  if (!(error instanceof TransactionCanceledException)) return undefined;
  const reasons = error.CancellationReasons ?? [];
  const refused = new Set<number>();
  let at = 0;
  for (const { index, change } of batch) {
    const size = 1 + (change.also?.length ?? 0);
    const own = reasons.slice(at, at + size);
    at += size;
    if (own[0]?.Code === 'ConditionalCheckFailed') refused.add(index);
    else if (
      own.some(
        (reason) =>
          reason.Code &&
          reason.Code !== 'None' &&
          reason.Code !== 'TransactionConflict',
      )
    )
      return undefined;
  }
  return refused.size ? refused : undefined;
}

/** Cuts changes into transactions of at most TRANSACTION_MAX_ITEMS writes, each change whole in one. */
function transactionsOf(
  changes: readonly BanChange[],
): Array<Array<{ index: number; change: BanChange }>> {
  const batches: Array<Array<{ index: number; change: BanChange }>> = [];
  let batch: Array<{ index: number; change: BanChange }> = [];
  let items = 0;
  changes.forEach((change, index) => {
    const size = 1 + (change.also?.length ?? 0);
    if (size > TRANSACTION_MAX_ITEMS)
      throw new RangeError(
        `a ban change of ${size} writes does not fit in one transaction`,
      );
    if (items + size > TRANSACTION_MAX_ITEMS) {
      batches.push(batch);
      batch = [];
      items = 0;
    }
    batch.push({ index, change });
    items += size;
  });
  if (batch.length) batches.push(batch);
  return batches;
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
  const bumpOnly = {
    UpdateExpression: 'ADD #version :one',
    ExpressionAttributeNames: { '#version': 'version' },
    ExpressionAttributeValues: { ':one': 1 },
  };
  const bumpVersion = {
    Update: { TableName: tableName, Key: versionKey, ...bumpOnly },
  };
  /** Writes the ban change and the version bump together, or neither. */
  const changeWithVersion = (change: Record<string, unknown>) =>
    transact([change, bumpVersion]);
  const clock = options.clock ?? Date.now;
  const transactionConcurrency =
    options.transactionConcurrency ?? TRANSACTION_CONCURRENCY;

  /** Sends a write again while it fails only because a concurrent transaction held one of its items. */
  async function untilNoConflict<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        if (!isWriteConflict(error) || attempt >= MAX_CONFLICT_ATTEMPTS)
          throw error;
        await sleep(
          backoffDelay({
            attempt: attempt - 1,
            minMs: CONFLICT_RETRY_MS,
            maxMs: CONFLICT_RETRY_MS * 2 ** MAX_CONFLICT_ATTEMPTS,
            random: Math.random,
            jitter: 'full',
          }),
        );
      }
    }
  }

  const transact = (items: readonly Record<string, unknown>[]) =>
    untilNoConflict(() =>
      client.send(new TransactWriteCommand({ TransactItems: [...items] })),
    );

  /** The version item updated by itself. */
  const updateVersion = (update: Record<string, unknown>) =>
    untilNoConflict(() =>
      client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: versionKey,
          ...update,
        } as UpdateCommandInput),
      ),
    );

  /**
   * Bumps the version and marks or unmarks the window (changeWindowUpdate);
   * if its condition fails, only the bump (a later window is open: its own
   * close ends it).
   */
  async function bumpWithWindow(step: 'open' | 'close', until: number) {
    try {
      await updateVersion(changeWindowUpdate(step, until));
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      await updateVersion(bumpOnly);
    }
  }

  /** Opens a change window: a bump, and changes under way until its end (unless a later window is open). Answers its end. */
  async function openChangeWindow(): Promise<number> {
    const until = clock() + BAN_CHANGE_WINDOW_MS;
    await bumpWithWindow('open', until);
    return until;
  }

  /** Closes the window: a bump, and the mark removed if it is still this window's. */
  const closeChangeWindow = (until: number) => bumpWithWindow('close', until);

  /** The write a change makes to its ban item. */
  function banWrite(change: BanChange, now: number): Record<string, unknown> {
    if (change.type === 'ban')
      return {
        Put: {
          TableName: tableName,
          Item: toItem(change.ban),
          ConditionExpression: NO_BAN_IN_FORCE,
          ExpressionAttributeNames: {
            '#pk': TABLE.partitionKey,
            '#until': 'until',
          },
          ExpressionAttributeValues: { ':now': now },
        },
      };
    return {
      Delete: {
        TableName: tableName,
        Key: key(change.ip),
        // Still in force and still the ban the caller saw.
        ConditionExpression: `${BAN_IN_FORCE} AND #until = :seen`,
        ExpressionAttributeNames: { '#until': 'until' },
        ExpressionAttributeValues: { ':now': now, ':seen': change.until },
      },
    };
  }

  /** One transaction of changes, less the refused ones; answers the indexes written. */
  async function writeChanges(
    batch: ReadonlyArray<{ index: number; change: BanChange }>,
    now: number,
  ): Promise<number[]> {
    let pending = batch;
    for (let attempt = 1; pending.length; attempt++) {
      try {
        await transact(
          pending.flatMap(({ change }) => [
            banWrite(change, now),
            ...(change.also ?? []),
          ]),
        );
        return pending.map(({ index }) => index);
      } catch (error) {
        const refused = refusedChanges(error, pending);
        if (!refused || attempt >= MAX_RACE_ATTEMPTS) throw error;
        pending = pending.filter(({ index }) => !refused.has(index));
      }
    }
    return [];
  }

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
     * Changes many IPs' bans: each change in one transaction with its `also`
     * items, at most TRANSACTION_MAX_ITEMS writes a transaction, a few
     * transactions at once. They move no version each: the batch opens a
     * change window (a version bump, and readers cache no list until the
     * window ends) and closes it (another bump) when every transaction is
     * done, so a reader never keeps a list that misses one. A change whose
     * condition fails (a ban in force already; the ban to lift gone or
     * replaced) is left out and its transaction written again without it.
     * Answers, per change, whether it took effect.
     */
    async changeBans(
      changes: readonly BanChange[],
      now: number,
    ): Promise<boolean[]> {
      const applied = changes.map(() => false);
      if (!changes.length) return applied;
      const transactions = transactionsOf(changes);
      const window = await openChangeWindow();
      try {
        await mapBounded(
          transactions,
          transactionConcurrency,
          async (batch) => {
            for (const index of await writeChanges(batch, now))
              applied[index] = true;
          },
        );
      } finally {
        await closeChangeWindow(window);
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
     * An operator's unban; the aggregator's early releases go through
     * changeBans.
     */
    async liftBan(ip: string, { now }: BanLift): Promise<Ban | undefined> {
      for (let attempt = 1; ; attempt++) {
        const seen = await readBan(ip);
        if (!seen || !isBanActive(seen, now)) return undefined;
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
     * move when a ban runs out (readers check `until` themselves). While a
     * batch of changes is being written, `changingUntil` is the end of its
     * change window: until then the list may change without the version.
     */
    async getVersion(): Promise<BanListVersion> {
      const result = await client.send(
        new GetCommand({ TableName: tableName, Key: versionKey }),
      );
      if (!result.Item) return { version: 0 };
      const { version, changingUntil } = parseItem(
        versionItemSchema,
        result.Item,
      );
      return changingUntil === undefined
        ? { version }
        : { version, changingUntil };
    },

    /** Bans in force at `now`, read strongly consistent (after a version change). */
    async listBansConsistent(now: number): Promise<Ban[]> {
      return listBans(now, true);
    },
  };
}
