import type {
  AttributeValue,
  TransactWriteItem,
  TransactWriteItemsCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import type {
  DynamoDBDocumentClient,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  BAN_CHANGE_WINDOW_MS,
  changeWindowUpdate,
} from '../../functions/store/ban-store.js';
import { keys, TABLE } from '../../functions/store/table.js';

/** The writes the aggregator makes per ban: the ban, its offense, two event items. */
export const WRITES_PER_BAN = 4;

/**
 * `count` made-up ban writes shaped like the aggregator's (banChangeOf, as
 * the ban store sends them): per ban a conditional put of the ban, an ADD
 * update of its offenses and two event puts, into BENCH# partitions of the
 * table that nothing reads. Bans are named `${tag}#${n}`; a count that is
 * not a multiple of WRITES_PER_BAN ends with a ban cut short. The fleet bench
 * warms DynamoDB Local's transactions up with them before a fleet is written,
 * when the aggregation has sent none to replay.
 */
export function benchBanWrites(
  tableName: string,
  tag: string,
  count: number,
): Record<string, unknown>[] {
  const { partitionKey: pk, sortKey: sk } = TABLE;
  const bans = Math.ceil(count / WRITES_PER_BAN);
  return Array.from({ length: bans }, (_, b) => {
    const id = `${tag}#${b}`;
    return [
      {
        Put: {
          TableName: tableName,
          Item: { [pk]: 'BENCH#BAN', [sk]: id, until: 1 },
          ConditionExpression: 'attribute_not_exists(#pk) OR #until <= :now',
          ExpressionAttributeNames: { '#pk': pk, '#until': 'until' },
          ExpressionAttributeValues: { ':now': 2 },
        },
      },
      {
        Update: {
          TableName: tableName,
          Key: { [pk]: `BENCH#OFFENSES#${id}`, [sk]: 'OFFENSES' },
          UpdateExpression: 'ADD starts :start',
          ExpressionAttributeValues: { ':start': new Set([1]) },
        },
      },
      ...['BENCH#EVT', `BENCH#EVTIP#${id}`].map((partition) => ({
        Put: {
          TableName: tableName,
          Item: { [pk]: partition, [sk]: id, event: { type: 'ban' } },
        },
      })),
    ];
  })
    .flat()
    .slice(0, count);
}

/** Writes per warm-up transaction: 25 made-up bans, a full transaction as the aggregation's are. */
export const WARM_UP_WRITES = 25 * WRITES_PER_BAN;

/** What a replay prefixes every partition key it writes with: its own, unique per tag. */
export const replayPrefix = (tag: string) => `BENCH#${tag}#`;

/**
 * A recorded transaction's items moved to partitions of the replay's own: the
 * partition key of each (in a Put's Item, or the Key of an Update, Delete or
 * ConditionCheck) prefixed with replayPrefix(tag), everything else (sort
 * keys, attributes, expressions, values) as the aggregation sent it. The keys
 * are fresh, so nothing the aggregation or a later minute reads is touched,
 * and a condition on the item's absence (a ban's `attribute_not_exists(pk) OR
 * until <= :now`) holds as it held for the aggregation.
 */
export function replayItems(
  items: readonly TransactWriteItem[],
  tag: string,
): TransactWriteItem[] {
  const prefix = replayPrefix(tag);
  const moved = (
    key: Record<string, AttributeValue> | undefined,
  ): Record<string, AttributeValue> => {
    const partition = key?.[TABLE.partitionKey]?.S;
    if (partition === undefined)
      throw new Error(
        `a transaction item without a string partition key (${TABLE.partitionKey})`,
      );
    return { ...key, [TABLE.partitionKey]: { S: `${prefix}${partition}` } };
  };
  return items.map((item): TransactWriteItem => {
    if (item.Put) return { Put: { ...item.Put, Item: moved(item.Put.Item) } };
    if (item.Update)
      return { Update: { ...item.Update, Key: moved(item.Update.Key) } };
    if (item.Delete)
      return { Delete: { ...item.Delete, Key: moved(item.Delete.Key) } };
    if (item.ConditionCheck)
      return {
        ConditionCheck: {
          ...item.ConditionCheck,
          Key: moved(item.ConditionCheck.Key),
        },
      };
    throw new Error(
      `a transaction item of no known kind: ${Object.keys(item).join(', ')}`,
    );
  });
}

/**
 * The version item the write floor opens and closes its change windows on:
 * one of its own that nothing reads, as its bans are, never the ban list's
 * (the aggregation's next minute reads that one).
 */
export const BENCH_VERSION_PARTITION = 'BENCH#BANVERSION';
const BENCH_VERSION_KEY = {
  [TABLE.partitionKey]: BENCH_VERSION_PARTITION,
  [TABLE.sortKey]: keys.banVersion(),
};

/** A write floor: the bare writes of a minute's bans (floor-entry.ts). */
export type WriteFloorEvent = {
  /** The aggregation's transactions, each its TransactItems as the meter recorded them. */
  transactions: TransactWriteItem[][];
  /** Names the replay: the partitions it writes are replayPrefix(tag)…. */
  tag: string;
  /** Change windows the transactions are written in, as many as the aggregation opened (none by default). */
  windows?: number;
};

/** One call of a write floor: a transaction (wire format), or an update of the version item. */
export type WriteFloorCall =
  | { transact: TransactWriteItemsCommandInput }
  | { update: UpdateCommandInput };

/**
 * A write floor's calls, in the order they are sent: each change window
 * opened (an update of the bench's version item, shaped as the ban store's
 * of the ban list's: changeWindowUpdate), its share of the aggregation's
 * transactions moved to the replay's partitions (replayItems), the window
 * closed. The transactions are shared out among the windows in order: the
 * meter does not say which window held which, and what a transaction costs
 * does not depend on it. `now` times the windows, as the store's clock does.
 */
export function writeFloorCalls(
  tableName: string,
  event: WriteFloorEvent,
  now: number,
): WriteFloorCall[] {
  const transactions = event.transactions.map(
    (items): WriteFloorCall => ({
      transact: { TransactItems: replayItems(items, event.tag) },
    }),
  );
  const windows = event.windows ?? 0;
  if (!windows) return transactions;
  const until = now + BAN_CHANGE_WINDOW_MS;
  const update = (step: 'open' | 'close'): WriteFloorCall => ({
    update: {
      TableName: tableName,
      Key: BENCH_VERSION_KEY,
      ...changeWindowUpdate(step, until),
    },
  });
  const share = (w: number) => Math.floor((w * transactions.length) / windows);
  return Array.from({ length: windows }, (_, w) => [
    update('open'),
    ...transactions.slice(share(w), share(w + 1)),
    update('close'),
  ]).flat();
}

/**
 * Sends a write floor's calls one at a time, as the ban store sends its
 * transactions to DynamoDB Local (which runs them one after another anyway):
 * the transactions with the low-level command, as recorded, so nothing is
 * marshalled again. A transaction cancelled or a window's condition failing
 * fails the floor rather than leave a write out.
 */
export async function sendWriteFloor(
  client: DynamoDBDocumentClient,
  calls: readonly WriteFloorCall[],
): Promise<void> {
  const total = calls.filter((call) => 'transact' in call).length;
  let sent = 0;
  for (const call of calls) {
    if ('update' in call) {
      await client.send(new UpdateCommand(call.update));
      continue;
    }
    sent++;
    try {
      await client.send(new TransactWriteItemsCommand(call.transact));
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = (error.CancellationReasons ?? [])
        .map((reason, item) =>
          reason.Code && reason.Code !== 'None'
            ? `item ${item} ${reason.Code}`
            : '',
        )
        .filter(Boolean);
      throw new Error(
        `replayed transaction ${sent} of ${total} was cancelled: ${reasons.join(', ') || error.message}`,
      );
    }
  }
}
