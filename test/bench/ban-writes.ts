import type {
  TransactWriteCommandInput,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
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
 * warms DynamoDB Local's transactions up with them, and the write floor
 * replays the aggregation's transactions with them (writeFloorCalls).
 */
export function benchBanWrites(
  tableName: string,
  tag: string,
  count: number,
  /** About this many bytes of items put in all (DynamoDB's item size): the event items are padded to reach it. */
  putBytes = 0,
): Record<string, unknown>[] {
  const { partitionKey: pk, sortKey: sk } = TABLE;
  const bans = Math.ceil(count / WRITES_PER_BAN);
  // Two event items per ban; a made-up ban or event item is ~50 bytes unpadded.
  const pad = 'x'.repeat(
    Math.max(0, Math.round((putBytes - bans * 50) / (2 * bans)) - 50),
  );
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
          Item: {
            [pk]: partition,
            [sk]: id,
            event: { type: 'ban' },
            ...(pad ? { pad } : {}),
          },
        },
      })),
    ];
  })
    .flat()
    .slice(0, count);
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
  /** Transactions of `writes[i]` writes each. */
  writes: number[];
  /** About `putBytes[i]` bytes of items put by transaction i. */
  putBytes?: number[];
  /** Names the made-up bans. */
  tag: string;
  /** Change windows the transactions are written in, as many as the aggregation opened (none by default). */
  windows?: number;
};

/** One call of a write floor: a transaction, or an update of the version item. */
export type WriteFloorCall =
  | { transact: TransactWriteCommandInput }
  | { update: UpdateCommandInput };

/**
 * A write floor's calls, in the order they are sent: each change window
 * opened (an update of the bench's version item, shaped as the ban store's
 * of the ban list's: changeWindowUpdate), its share of the transactions of
 * made-up bans, the window closed. The transactions are shared out among the
 * windows in order: the meter does not say which window held which, and what
 * a transaction costs does not depend on it. `now` times the windows, as the
 * store's clock does.
 */
export function writeFloorCalls(
  tableName: string,
  event: WriteFloorEvent,
  now: number,
): WriteFloorCall[] {
  const transactions = event.writes.map(
    (count, t): WriteFloorCall => ({
      transact: {
        TransactItems: benchBanWrites(
          tableName,
          `${event.tag}#${t}`,
          count,
          event.putBytes?.[t],
        ),
      },
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
