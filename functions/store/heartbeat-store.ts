import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { HeartbeatKind } from '../core/heartbeat.js';
import { bucketId, minuteEnd } from '../core/minutes.js';
import type { MinuteTally, OriginTally, StatusCounts } from '../core/tally.js';
import { putAll } from './batch.js';
import { queryItems } from './query.js';
import { keys, shardOf, TABLE } from './table.js';

export type HeartbeatStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  shards: number;
  bucketTtlHours: number;
};

/** Counts stored compactly: [ok, connect_failed, origin_error, error]. */
type CountsRow = [number, number, number, number];
type OriginRow = { o: string; k: HeartbeatKind; c: CountsRow };
type HeartbeatItem = {
  pk: string;
  sk: string;
  ip: string;
  minute: number;
  origins: OriginRow[];
  /** Received at, observed at (epoch ms) and the declared lease (s): see MinuteTally. */
  r?: number;
  t?: number;
  l?: number;
  expiresAt: number;
};

const toRow = (counts: StatusCounts): CountsRow => [
  counts.ok,
  counts.connect_failed,
  counts.origin_error,
  counts.error,
];
const fromRow = ([ok, connect_failed, origin_error, error]: CountsRow): StatusCounts => ({
  ok,
  connect_failed,
  origin_error,
  error,
});

/**
 * DynamoDB refuses items over 400 KB. A request may carry up to 500 distinct
 * origins of up to 1 KB for one IP, so a tally's origins are cut into parts of
 * at most this many bytes (JSON size, which exceeds DynamoDB's own count).
 */
const MAX_ORIGIN_BYTES_PER_ROW = 300_000;

function splitOrigins(origins: OriginRow[]): OriginRow[][] {
  const parts: OriginRow[][] = [[]];
  let bytes = 0;
  for (const origin of origins) {
    const size = Buffer.byteLength(JSON.stringify(origin));
    const part = parts[parts.length - 1] as OriginRow[];
    if (part.length > 0 && bytes + size > MAX_ORIGIN_BYTES_PER_ROW) {
      parts.push([origin]);
      bytes = size;
    } else {
      part.push(origin);
      bytes += size;
    }
  }
  return parts;
}

function fromItem(item: HeartbeatItem): MinuteTally {
  return {
    minute: item.minute,
    ip: item.ip,
    origins: item.origins.map(
      (row): OriginTally => ({ origin: row.o, kind: row.k, counts: fromRow(row.c) }),
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
export function createHeartbeatStore(options: HeartbeatStoreOptions) {
  const { client, tableName, shards } = options;

  const queryAll = async (pk: string, skPrefix?: string) =>
    (await queryItems(client, {
      TableName: tableName,
      KeyConditionExpression: skPrefix ? '#pk = :pk AND begins_with(#sk, :prefix)' : '#pk = :pk',
      ExpressionAttributeNames: skPrefix ? { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey } : { '#pk': TABLE.partitionKey },
      ExpressionAttributeValues: skPrefix ? { ':pk': pk, ':prefix': skPrefix } : { ':pk': pk },
    })) as HeartbeatItem[];

  return {
    /**
     * Stores a request's tallies. `writeId` is the request's batchId when it has
     * one, so a retried batch overwrites its own rows instead of adding to them.
     */
    async addTallies(tallies: readonly MinuteTally[], write: { writeId: string }): Promise<void> {
      // Readers sum every row of an IP's minute, so a tally split into parts counts the same.
      const items = tallies.flatMap((tally) =>
        splitOrigins(tally.origins.map((o) => ({ o: o.origin, k: o.kind, c: toRow(o.counts) }))).map(
          (origins, part): HeartbeatItem =>
            ({
              [TABLE.partitionKey]: keys.heartbeatBucket(bucketId(tally.minute), shardOf(tally.ip, shards)),
              [TABLE.sortKey]: keys.heartbeatRow(tally.ip, write.writeId, part),
              ip: tally.ip,
              minute: tally.minute,
              origins,
              ...(tally.receivedAt === undefined ? {} : { r: tally.receivedAt }),
              ...(tally.observedAt === undefined ? {} : { t: tally.observedAt }),
              ...(tally.leaseSeconds === undefined ? {} : { l: tally.leaseSeconds }),
              [TABLE.ttlAttribute]: Math.floor(minuteEnd(tally.minute) / 1000) + options.bucketTtlHours * 3600,
            }) as HeartbeatItem,
        ),
      );
      await putAll(client, tableName, items);
    },

    /** Every row of one minute, all shards read in parallel. */
    async readMinute(minute: number): Promise<MinuteTally[]> {
      const bucket = bucketId(minute);
      const pages = await Promise.all(
        Array.from({ length: shards }, (_, shard) => queryAll(keys.heartbeatBucket(bucket, shard))),
      );
      return pages.flat().map(fromItem);
    },

    /** One IP's rows of the given minutes (its shard only). */
    async readIpMinutes(ip: string, minutes: readonly number[]): Promise<MinuteTally[]> {
      const shard = shardOf(ip, shards);
      const pages = await Promise.all(
        minutes.map((minute) =>
          queryAll(keys.heartbeatBucket(bucketId(minute), shard), keys.heartbeatRowPrefix(ip)),
        ),
      );
      return pages.flat().map(fromItem);
    },
  };
}

export type HeartbeatStore = ReturnType<typeof createHeartbeatStore>;
