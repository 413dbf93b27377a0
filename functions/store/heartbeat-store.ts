import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { HEARTBEAT_KINDS } from '../core/heartbeat.js';
import { bucketId, minuteEnd } from '../core/minutes.js';
import type { MinuteTally, OriginTally } from '../core/tally.js';
import { putAll } from './batch.js';
import type { HeartbeatStore } from './ports.js';
import type { QueryInput } from './query.js';
import { forEachQueryPage, queryItems } from './query.js';
import {
  anyCount,
  decodeOrigins,
  encodeOrigins,
  OriginNameBook,
  RowFormatError,
  visitOrigins,
} from './row-codec.js';
import { keys, shardOf, TABLE } from './table.js';

export type HeartbeatStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  shards: number;
  bucketTtlHours: number;
};

/** The current row format: origins packed by row-codec.ts. */
const ROW_FORMAT = 2;

/** v1 rows (before the packed format), readable until their TTL removes them. */
const originRowV1 = z.object({
  o: z.string(),
  k: z.enum(HEARTBEAT_KINDS),
  c: z.tuple([z.number(), z.number(), z.number(), z.number()]),
});
/** Received at, observed at (epoch ms) and the declared lease (s): see MinuteTally. */
const rowTimes = {
  r: z.optional(z.number()),
  t: z.optional(z.number()),
  l: z.optional(z.number()),
};
const heartbeatItemSchema = z.union([
  z.object({
    v: z.literal(ROW_FORMAT),
    ip: z.string(),
    minute: z.number(),
    d: z.instanceof(Uint8Array),
    ...rowTimes,
  }),
  z.object({
    v: z.optional(z.literal(1)),
    ip: z.string(),
    minute: z.number(),
    origins: z.array(originRowV1),
    ...rowTimes,
  }),
]);

/**
 * DynamoDB refuses items over 400 KB. A request may carry up to 500 distinct
 * origins of up to 1 KB for one IP, so a tally's origins are cut into parts of
 * at most this many bytes.
 */
const MAX_ORIGIN_BYTES_PER_ROW = 300_000;

/** A row's attributes besides its key and TTL; kept apart from how keys and batch identity are made. */
const rowBody = (tally: MinuteTally, data: Uint8Array) => ({
  v: ROW_FORMAT,
  ip: tally.ip,
  minute: tally.minute,
  d: data,
  ...(tally.receivedAt === undefined ? {} : { r: tally.receivedAt }),
  ...(tally.observedAt === undefined ? {} : { t: tally.observedAt }),
  ...(tally.leaseSeconds === undefined ? {} : { l: tally.leaseSeconds }),
});

/** The row's times as MinuteTally names them. */
const timesOf = (item: {
  r?: number | undefined;
  t?: number | undefined;
  l?: number | undefined;
}) => ({
  ...(item.r === undefined ? {} : { receivedAt: item.r }),
  ...(item.t === undefined ? {} : { observedAt: item.t }),
  ...(item.l === undefined ? {} : { leaseSeconds: item.l }),
});

type PackedRow = {
  v: typeof ROW_FORMAT;
  ip: string;
  minute: number;
  d: Uint8Array;
  r?: number;
  t?: number;
  l?: number;
};
const optionalNumber = (value: unknown) =>
  value === undefined || typeof value === 'number';
/**
 * The current format checked by hand, as the schema checks it: the schema
 * takes a few microseconds a row, and a minute of the fleet is 100,000 rows.
 */
const isPackedRow = (raw: Record<string, unknown>): raw is PackedRow =>
  raw.v === ROW_FORMAT &&
  typeof raw.ip === 'string' &&
  typeof raw.minute === 'number' &&
  raw.d instanceof Uint8Array &&
  optionalNumber(raw.r) &&
  optionalNumber(raw.t) &&
  optionalNumber(raw.l);

function parseItem(raw: Record<string, unknown>) {
  const parsed = heartbeatItemSchema.safeParse(raw);
  if (!parsed.success)
    throw new RowFormatError(
      `unreadable heartbeat row ${String(raw[TABLE.sortKey])}`,
    );
  return parsed.data;
}

/**
 * A row as read. Packed rows (v2) keep their blob and decode it each time
 * `origins` is read: a minute of 100,000 machines is ~50 MB of blobs but
 * ~1 GB as objects, and the aggregator walks the origins only a few times.
 * Names are learned into `book` here, so by the time a caller reads
 * `origins` every name of the rows read so far is known.
 */
function fromItem(
  raw: Record<string, unknown>,
  book: OriginNameBook,
): MinuteTally {
  const item = isPackedRow(raw) ? raw : parseItem(raw);
  if ('d' in item) {
    const data = item.d;
    book.learnFrom(data);
    return {
      minute: item.minute,
      ip: item.ip,
      ...timesOf(item),
      get origins() {
        return decodeOrigins(data, book);
      },
      eachOrigin: (visit) => visitOrigins(data, book, visit),
      anyCount: () => anyCount(data),
    };
  }
  for (const { o } of item.origins) book.learn(o);
  return {
    minute: item.minute,
    ip: item.ip,
    origins: item.origins.map(
      ({
        o,
        k,
        c: [ok, connect_failed, origin_error, error],
      }): OriginTally => ({
        origin: o,
        kind: k,
        counts: { ok, connect_failed, origin_error, error },
      }),
    ),
    ...(item.r === undefined ? {} : { receivedAt: item.r }),
    ...(item.t === undefined ? {} : { observedAt: item.t }),
    ...(item.l === undefined ? {} : { leaseSeconds: item.l }),
  };
}

/**
 * Heartbeat rows under per-minute, write-sharded bucket keys. One row per
 * (minute, ip, write): a request's heartbeats are pre-combined, so a row costs
 * one write unit whatever the number of heartbeats in it.
 */
export function createHeartbeatStore(
  options: HeartbeatStoreOptions,
): HeartbeatStore {
  const { client, tableName, shards } = options;
  const book = new OriginNameBook();

  /** The rows under `pk`, those whose key begins with `skPrefix` when given. */
  const rowsQuery = (pk: string, skPrefix?: string): QueryInput => ({
    TableName: tableName,
    KeyConditionExpression: skPrefix
      ? '#pk = :pk AND begins_with(#sk, :prefix)'
      : '#pk = :pk',
    ExpressionAttributeNames: skPrefix
      ? { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey }
      : { '#pk': TABLE.partitionKey },
    ExpressionAttributeValues: skPrefix
      ? { ':pk': pk, ':prefix': skPrefix }
      : { ':pk': pk },
  });

  return {
    /**
     * Stores a request's tallies. `writeId` is the request's batchId when it has
     * one, so a retried batch overwrites its own rows instead of adding to them.
     */
    async addTallies(
      tallies: readonly MinuteTally[],
      write: { writeId: string },
    ): Promise<void> {
      // Readers sum every row of an IP's minute, so a tally split into parts counts the same.
      const items = tallies.flatMap((tally) =>
        encodeOrigins(tally.origins, MAX_ORIGIN_BYTES_PER_ROW).map(
          (data, part) => ({
            [TABLE.partitionKey]: keys.heartbeatBucket(
              bucketId(tally.minute),
              shardOf(tally.ip, shards),
            ),
            [TABLE.sortKey]: keys.heartbeatRow(tally.ip, write.writeId, part),
            ...rowBody(tally, data),
            [TABLE.ttlAttribute]:
              Math.floor(minuteEnd(tally.minute) / 1000) +
              options.bucketTtlHours * 3600,
          }),
        ),
      );
      await putAll(client, tableName, items);
    },

    /**
     * Every row of one minute, all shards read in parallel. Twice the
     * configured shards are read, so rows written by instances that already
     * run with the count doubled (or still with it halved) are found while a
     * deployment changes RELAYWATCH_SHARDS; an empty shard costs 0.5 RRU.
     * `onRows` sees each page's rows as it arrives (the very rows answered,
     * which come in shard order whatever order the pages arrived in).
     */
    async readMinute(
      minute: number,
      onRows?: (rows: readonly MinuteTally[]) => void,
    ): Promise<MinuteTally[]> {
      const bucket = bucketId(minute);
      const shardRows = await Promise.all(
        Array.from({ length: shards * 2 }, async (_, shard) => {
          const rows: MinuteTally[] = [];
          await forEachQueryPage(
            client,
            rowsQuery(keys.heartbeatBucket(bucket, shard)),
            (items) => {
              const page = items.map((item) => fromItem(item, book));
              onRows?.(page);
              rows.push(...page);
            },
          );
          return rows;
        }),
      );
      return shardRows.flat();
    },

    /** Names to give origins that rows read later key by id only (e.g. outages of the last minute). */
    rememberOrigins(names: Iterable<string>): void {
      for (const name of names) book.learn(name);
    },

    /**
     * One IP's rows of the given minutes: its shard under the configured
     * count, and under half and twice that count (the minutes around a change
     * of RELAYWATCH_SHARDS by doubling or halving).
     */
    async readIpMinutes(
      ip: string,
      minutes: readonly number[],
    ): Promise<MinuteTally[]> {
      const counts = [
        shards,
        shards * 2,
        ...(shards % 2 === 0 ? [shards / 2] : []),
      ];
      const ipShards = [...new Set(counts.map((count) => shardOf(ip, count)))];
      const pages = await Promise.all(
        minutes.flatMap((minute) =>
          ipShards.map((shard) =>
            queryItems(
              client,
              rowsQuery(
                keys.heartbeatBucket(bucketId(minute), shard),
                keys.heartbeatRowPrefix(ip),
              ),
            ),
          ),
        ),
      );
      return pages.flat().map((item) => fromItem(item, book));
    },
  };
}
