import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { MAX_SHARDS } from '../core/config.js';
import { HEARTBEAT_KINDS } from '../core/heartbeat.js';
import { mapBounded } from '../core/maps.js';
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

/** Queries of IPs' own rows in flight at once (readIpMinutes: early release reads hundreds of banned IPs). */
const IP_READ_CONCURRENCY = 16;

/** One query of readIpMinutes: an IP's rows of a minute under one shard. */
type IpShardRead = { ip: string; minute: number; shard: number };

/** Minutes a writer remembers having marked with its shard count: the open one and a few before it. */
const MARKED_MINUTES_KEPT = 8;

/** The shard count an item's key names when it is a marker (keys.shardCount); undefined for a row. */
const markedCountOf = (item: Record<string, unknown>) =>
  keys.shardCountOf(String(item[TABLE.sortKey]));

/** Whether a writer may have marked this count: a damaged marker is ignored, it must not stop reading. */
const isShardCount = (count: number | undefined): count is number =>
  count !== undefined &&
  Number.isInteger(count) &&
  count >= 1 &&
  count <= MAX_SHARDS;

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
  /** Minutes this writer has marked with its shard count, oldest first. */
  const marked = new Set<number>();
  const expiresAt = (minute: number) =>
    Math.floor(minuteEnd(minute) / 1000) + options.bucketTtlHours * 3600;

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
            [TABLE.ttlAttribute]: expiresAt(tally.minute),
          }),
        ),
      );
      // The first write of each minute also marks it with this writer's
      // shard count, in the same batch as the rows: readers configured with
      // another count (RELAYWATCH_SHARDS changing) learn which shards to read.
      const unmarked = [
        ...new Set(tallies.map((tally) => tally.minute)),
      ].filter((minute) => !marked.has(minute));
      const markers = unmarked.map((minute) => ({
        [TABLE.partitionKey]: keys.heartbeatBucket(bucketId(minute), 0),
        [TABLE.sortKey]: keys.shardCount(shards),
        v: 1,
        [TABLE.ttlAttribute]: expiresAt(minute),
      }));
      await putAll(client, tableName, [...markers, ...items]);
      for (const minute of unmarked) marked.add(minute);
      for (const minute of marked) {
        if (marked.size <= MARKED_MINUTES_KEPT) break;
        marked.delete(minute);
      }
    },

    /**
     * Every row of one minute: the configured shards, read in parallel, and
     * the shards of any other count the minute's writers marked in shard 0
     * (read as soon as its page names them), so rows are found while a
     * deployment changes RELAYWATCH_SHARDS to any count. `onRows` sees each
     * page's rows as it arrives (the very rows answered, which come in shard
     * order whatever order the pages arrived in). `keep` drops the rows the
     * caller has no use for as each page arrives, so they are never held.
     */
    async readMinute(
      minute: number,
      onRows?: (rows: readonly MinuteTally[]) => void,
      keep?: (row: MinuteTally) => boolean,
    ): Promise<MinuteTally[]> {
      const bucket = bucketId(minute);
      /** Shards 0 … reading - 1 are being read. */
      let reading = shards;
      const marked: Promise<MinuteTally[]>[] = [];
      const readShard = async (shard: number) => {
        const rows: MinuteTally[] = [];
        await forEachQueryPage(
          client,
          rowsQuery(keys.heartbeatBucket(bucket, shard)),
          (items) => {
            const page: MinuteTally[] = [];
            for (const item of items) {
              const count = markedCountOf(item);
              if (count === undefined) {
                const row = fromItem(item, book);
                if (!keep || keep(row)) page.push(row);
              } else if (isShardCount(count))
                while (reading < count) marked.push(readShard(reading++));
            }
            onRows?.(page);
            rows.push(...page);
          },
        );
        return rows;
      };
      const configured = await Promise.all(
        Array.from({ length: shards }, (_, shard) => readShard(shard)),
      );
      // Markers are in shard 0, read by now: `marked` is complete.
      return [...configured, ...(await Promise.all(marked))].flat();
    },

    /** Names to give origins that rows read later key by id only (e.g. outages of the last minute). */
    rememberOrigins(names: Iterable<string>): void {
      for (const name of names) book.learn(name);
    },

    /**
     * The rows of the given IPs in the given minutes: each IP's shard under
     * the configured count, read while each minute's shard-count markers
     * are (once per minute, whatever the number of IPs), then its shard under
     * any other count marked (RELAYWATCH_SHARDS changing). At most
     * IP_READ_CONCURRENCY queries of each kind are in flight.
     */
    async readIpMinutes(
      ips: readonly string[],
      minutes: readonly number[],
    ): Promise<MinuteTally[]> {
      const rowsIn = ({ ip, minute, shard }: IpShardRead) =>
        queryItems(
          client,
          rowsQuery(
            keys.heartbeatBucket(bucketId(minute), shard),
            keys.heartbeatRowPrefix(ip),
          ),
        );
      /** Per minute, the counts other than ours its writers marked. */
      const otherCountsOf = async (minute: number) => {
        const markers = await queryItems(
          client,
          rowsQuery(
            keys.heartbeatBucket(bucketId(minute), 0),
            keys.shardCountPrefix(),
          ),
        );
        const counts = markers.map(markedCountOf).filter(isShardCount);
        return [minute, counts.filter((count) => count !== shards)] as const;
      };
      const own = minutes.flatMap((minute) =>
        ips.map(
          (ip): IpShardRead => ({
            ip,
            minute,
            shard: shardOf(ip, shards),
          }),
        ),
      );
      const [ownPages, otherCounts] = await Promise.all([
        mapBounded(own, IP_READ_CONCURRENCY, rowsIn),
        Promise.all(minutes.map(otherCountsOf)).then((pairs) => new Map(pairs)),
      ]);
      // Each IP's shard under every other count marked, where that is not its own.
      const others = own.flatMap(({ ip, minute, shard }) =>
        [
          ...new Set(
            (otherCounts.get(minute) ?? []).map((count) => shardOf(ip, count)),
          ),
        ]
          .filter((other) => other !== shard)
          .map((other): IpShardRead => ({ ip, minute, shard: other })),
      );
      const otherPages = await mapBounded(others, IP_READ_CONCURRENCY, rowsIn);
      return [...ownPages, ...otherPages]
        .flat()
        .map((item) => fromItem(item, book));
    },
  };
}
