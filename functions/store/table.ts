/**
 * The one table's design: attribute names, TTL, indexes and every key builder.
 * Nothing outside functions/store builds a key. See KEYS.md for the entity
 * table and access patterns.
 */

export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Epoch seconds; DynamoDB's TTL deletes the item some time after it. */
  ttlAttribute: 'expiresAt',
  /**
   * No secondary indexes: DynamoDB Local never TTL-deletes items of a table
   * that has a GSI (checked with 3.3), and the local runtime must behave like
   * AWS. Events are written under a second key per IP instead (KEYS.md).
   */
  indexes: {} as Readonly<
    Record<string, { name: string; partitionKey: string; sortKey: string }>
  >,
} as const;

/** Shard of an IP: a calculated suffix keeps one IP's rows in one shard. */
export function shardOf(ip: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++)
    hash = Math.imul(hash ^ ip.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % shards;
}

/** Sort-key prefix of a minute's shard-count markers (keys.shardCount). */
const SHARD_COUNT = '!SHARDS#';
/** Partition-key prefix of the minutes' heartbeat rows (keys.heartbeatBucket). */
const HEARTBEAT_BUCKET = 'HB#';

export const keys = {
  /** One minute's heartbeat rows, write-sharded: HB#202611241403#2 */
  heartbeatBucket: (bucketId: string, shard: number) =>
    `${HEARTBEAT_BUCKET}${bucketId}#${shard}`,
  /** Whether a partition key (or its start) is a heartbeatBucket's. */
  isHeartbeatBucket: (partitionKey: string) =>
    partitionKey.startsWith(HEARTBEAT_BUCKET),
  /**
   * One request's counts for one IP in that minute: <ip>#<writeId>. A tally too
   * big for one item continues in parts <ip>#p<n>:<writeId> (n ≥ 1); writeIds
   * start with "b:" or "r:", so a part never collides with another write's row.
   */
  heartbeatRow: (ip: string, writeId: string, part = 0) =>
    part === 0 ? `${ip}#${writeId}` : `${ip}#p${part}:${writeId}`,
  heartbeatRowPrefix: (ip: string) => `${ip}#`,
  /**
   * In a minute's shard 0, beside its rows: rows of this minute were written
   * with `shards` write shards. "!" sorts before every IP, so the markers
   * come first.
   */
  shardCount: (shards: number) => `${SHARD_COUNT}${shards}`,
  shardCountPrefix: () => SHARD_COUNT,
  /** The count a shardCount key names (NaN if it names none); undefined for any other key (a row's). */
  shardCountOf: (sortKey: string): number | undefined =>
    sortKey.startsWith(SHARD_COUNT)
      ? Number(sortKey.slice(SHARD_COUNT.length))
      : undefined,
  banPartition: () => 'BAN',
  /** The ban list's version item, apart from the bans so listing them never reads it. */
  banVersionPartition: () => 'BANVERSION',
  banVersion: () => 'BANVERSION',
  ban: (ip: string) => `IP#${ip}`,
  offensesPartition: (ip: string) => `OFFENSES#${ip}`,
  offenses: () => 'OFFENSES',
  statePartition: () => 'STATE',
  aggregatorState: () => 'AGGREGATOR',
  /** The aggregator state's pieces as of one minute and pass (epoch ms, 0 for a closing): STATE#202611241403#0 */
  statePieces: (bucketId: string, passAt: number) =>
    `STATE#${bucketId}#${passAt}`,
  /** One page of one kind (R reporting, S last seen, O outages, C capped): R#00012 */
  statePiece: (kind: string, page: number) =>
    `${kind}#${String(page).padStart(5, '0')}`,
  statePiecePrefix: (kind: string) => `${kind}#`,
  eventDay: (day: string) => `EVT#${day}`,
  event: (isoTime: string, ip: string, type: string) =>
    `${isoTime}#${ip}#${type}`,
  eventsOfIp: (ip: string) => `EVTIP#${ip}`,
  /** Revoked per-machine reporter tokens, one partition: the ingest function reads it whole. */
  revocationPartition: () => 'REVOKED',
  revocation: (ip: string) => `IP#${ip}`,
  /** A posted batch's identity (content digest, first receive time): BATCH#<reporter scope>#<batchId> */
  batchMarker: (scope: string, batchId: string) => `BATCH#${scope}#${batchId}`,
  batchMarkerSort: () => 'BATCH',
} as const;

/**
 * Partition-key patterns (IAM `dynamodb:LeadingKeys`, StringLike) of the
 * items each writer owns: the CDK stack confines each function's writes to them.
 */
export const KEY_SCOPES = {
  heartbeats: ['HB#*', 'BATCH#*'],
  /** The ban partition and any item kept beside it under a BAN prefix (a list version, say). */
  bans: ['BAN*'],
  events: ['EVT#*', 'EVTIP#*'],
  revocations: ['REVOKED'],
} as const;
export type KeyScope = keyof typeof KEY_SCOPES;
