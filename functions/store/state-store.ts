import { gunzipSync, gzipSync } from 'node:zlib';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import * as z from 'zod/mini';
import { bucketId } from '../core/minutes.js';
import type { IpEvidence } from '../core/policy.js';
import { putAll } from './batch.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type StateStoreOptions = { client: DynamoDBDocumentClient; tableName: string };

/**
 * What the aggregator knows after its last minute: its progress, what it
 * found (so conditions are reported when they begin and end), and the fleet as
 * of that minute, which GET /v1/fleet serves.
 */
export type AggregatorState = {
  /** The last minute done (epoch minute): decided, or given up on after an error. */
  lastMinute: number;
  reporting: IpEvidence[];
  /** Last minute each IP reported in, kept for a day, to tell "silent" IPs. */
  lastSeen: Record<string, number>;
  outages: string[];
  fleetWide: boolean;
  capInForce: boolean;
  capped: string[];
};

/** What the aggregator itself needs of the last state: everything but the fleet's evidence. */
export type AggregatorMemory = Omit<AggregatorState, 'reporting' | 'capped'>;

const OFFENSE_MEMORY_SECONDS = 86_400;

/**
 * The state is a small progress item plus pieces: pages of the fleet's
 * evidence, of last-seen minutes, of outages and of capped IPs, each page at
 * most PAGE_MAX_JSON_BYTES of JSON (gzip only shrinks it), so no item grows
 * with the fleet. Pieces live under the minute they describe and are all
 * written before the progress item names that minute: a crash in between
 * leaves the previous state whole, and the rerun rewrites the same keys.
 */
const PAGE_MAX_JSON_BYTES = 60_000;
/** Pieces outlive a day of minutes given up on (the progress item then still names older pieces). */
const PIECE_TTL_SECONDS = 2 * 86_400;
const PROGRESS_FORMAT = 2;
/** BatchWriteItem calls in flight while writing the pages. */
const WRITE_CONCURRENCY = 4;
const PIECE_FORMAT = 1;

const PIECE_KINDS = { reporting: 'R', lastSeen: 'S', outages: 'O', capped: 'C' } as const;
type PieceKind = keyof typeof PIECE_KINDS;

const ipEvidenceSchema = z.object({
  ip: z.string(),
  samples: z.number(),
  ok: z.number(),
  connectFailed: z.number(),
  failRatio: z.number(),
  excusedFailures: z.number(),
  uncorroboratedFailures: z.number(),
  originErrors: z.number(),
  errors: z.number(),
  origins: z.number(),
});
const pieceSchemas = {
  reporting: z.array(ipEvidenceSchema),
  lastSeen: z.array(z.tuple([z.string(), z.number()])),
  outages: z.array(z.string()),
  capped: z.array(z.string()),
} as const;

const pageCountsSchema = z.object({ reporting: z.number(), lastSeen: z.number(), outages: z.number(), capped: z.number() });
const progressSchema = z.object({
  v: z.literal(PROGRESS_FORMAT),
  lastMinute: z.number(),
  /** The minute whose pieces are the state (older than lastMinute after a minute given up on). */
  piecesMinute: z.nullable(z.number()),
  pages: pageCountsSchema,
  fleetWide: z.boolean(),
  capInForce: z.boolean(),
});
type Progress = z.infer<typeof progressSchema>;

/** The single item of format v1 (before the split), read once when upgrading. */
const stateV1Schema = z.object({
  lastMinute: z.number(),
  state: z.object({
    lastMinute: z.number(),
    reporting: z.array(ipEvidenceSchema),
    lastSeen: z.record(z.string(), z.number()),
    outages: z.array(z.string()),
    fleetWide: z.boolean(),
    capInForce: z.boolean(),
    capped: z.array(z.string()),
  }),
});

export class StateFormatError extends Error {
  override name = 'StateFormatError';
}

/** Cuts `values` into pages of at most PAGE_MAX_JSON_BYTES of JSON each (at least one page). */
function paginate<T>(values: readonly T[]): T[][] {
  const pages: T[][] = [[]];
  let bytes = 2;
  for (const value of values) {
    const size = Buffer.byteLength(JSON.stringify(value)) + 1;
    const page = pages[pages.length - 1] as T[];
    if (page.length > 0 && bytes + size > PAGE_MAX_JSON_BYTES) {
      pages.push([value]);
      bytes = 2 + size;
    } else {
      page.push(value);
      bytes += size;
    }
  }
  return pages;
}

/** The aggregator's own items: its state and the IPs' ban history. */
export function createStateStore(options: StateStoreOptions) {
  const { client, tableName } = options;
  const stateKey = (sk: string) => ({ [TABLE.partitionKey]: keys.statePartition(), [TABLE.sortKey]: sk });
  const offensesKey = (ip: string) => ({ [TABLE.partitionKey]: keys.offensesPartition(ip), [TABLE.sortKey]: keys.offenses() });

  type Read = { progress: Progress } | { v1: z.infer<typeof stateV1Schema>['state'] } | undefined;

  async function readProgress(consistent: boolean): Promise<Read> {
    const result = await client.send(
      new GetCommand({ TableName: tableName, Key: stateKey(keys.aggregatorState()), ConsistentRead: consistent }),
    );
    if (!result.Item) return undefined;
    if (result.Item.v === undefined) {
      const v1 = stateV1Schema.safeParse(result.Item);
      if (!v1.success) throw new StateFormatError('aggregator state item (v1) is unreadable');
      return { v1: v1.data.state };
    }
    const parsed = progressSchema.safeParse(result.Item);
    if (!parsed.success) throw new StateFormatError(`aggregator progress item is unreadable: ${parsed.error.issues[0]?.message ?? ''}`);
    return { progress: parsed.data };
  }

  async function readPieces<K extends PieceKind>(
    minute: number,
    kind: K,
    expected: number,
    consistent: boolean,
  ): Promise<z.infer<(typeof pieceSchemas)[K]>> {
    const items = await queryItems(client, {
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: { '#pk': TABLE.partitionKey, '#sk': TABLE.sortKey },
      ExpressionAttributeValues: { ':pk': keys.statePieces(bucketId(minute)), ':prefix': keys.statePiecePrefix(PIECE_KINDS[kind]) },
      ConsistentRead: consistent,
    });
    if (items.length !== expected) {
      throw new StateFormatError(`state of ${bucketId(minute)} has ${items.length} ${kind} pages, progress says ${expected}`);
    }
    const values: unknown[] = [];
    for (const item of items) {
      if (item.v !== PIECE_FORMAT || !(item.d instanceof Uint8Array)) throw new StateFormatError(`state piece ${String(item.sk)} has an unknown format`);
      const parsed = pieceSchemas[kind].safeParse(JSON.parse(gunzipSync(item.d).toString('utf8')));
      if (!parsed.success) throw new StateFormatError(`state piece ${String(item.sk)} is unreadable`);
      values.push(...parsed.data);
    }
    return values as z.infer<(typeof pieceSchemas)[K]>;
  }

  async function putProgress(progress: Progress): Promise<{ applied: boolean }> {
    try {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...stateKey(keys.aggregatorState()), ...progress },
          // Only forward: of two overlapping runs, the one that finished an older minute does not undo the other's progress.
          ConditionExpression: 'attribute_not_exists(lastMinute) OR lastMinute < :minute',
          ExpressionAttributeValues: { ':minute': progress.lastMinute },
        }),
      );
      return { applied: true };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return { applied: false };
      throw error;
    }
  }

  return {
    /**
     * The state the aggregator continues from: progress, outages, flags and
     * last-seen minutes, read consistently (it must see its own last write).
     */
    async getAggregatorMemory(): Promise<AggregatorMemory | undefined> {
      const read = await readProgress(true);
      if (read === undefined) return undefined;
      if ('v1' in read) {
        const { reporting: _r, capped: _c, ...memory } = read.v1;
        return memory;
      }
      const { progress } = read;
      const at = progress.piecesMinute;
      if (at === null) return { lastMinute: progress.lastMinute, lastSeen: {}, outages: [], fleetWide: false, capInForce: false };
      const [seen, outages] = await Promise.all([
        readPieces(at, 'lastSeen', progress.pages.lastSeen, true),
        readPieces(at, 'outages', progress.pages.outages, true),
      ]);
      return {
        lastMinute: progress.lastMinute,
        lastSeen: Object.fromEntries(seen),
        outages,
        fleetWide: progress.fleetWide,
        capInForce: progress.capInForce,
      };
    },

    /** The whole state for GET /v1/fleet (eventually consistent reads). */
    async getAggregatorState(): Promise<AggregatorState | undefined> {
      const read = await readProgress(false);
      if (read === undefined) return undefined;
      if ('v1' in read) return read.v1;
      const { progress } = read;
      const at = progress.piecesMinute;
      if (at === null) {
        return { lastMinute: progress.lastMinute, reporting: [], lastSeen: {}, outages: [], fleetWide: false, capInForce: false, capped: [] };
      }
      const [reporting, seen, outages, capped] = await Promise.all([
        readPieces(at, 'reporting', progress.pages.reporting, false),
        readPieces(at, 'lastSeen', progress.pages.lastSeen, false),
        readPieces(at, 'outages', progress.pages.outages, false),
        readPieces(at, 'capped', progress.pages.capped, false),
      ]);
      return {
        lastMinute: progress.lastMinute,
        reporting,
        lastSeen: Object.fromEntries(seen),
        outages,
        fleetWide: progress.fleetWide,
        capInForce: progress.capInForce,
        capped,
      };
    },

    /**
     * Records that `state.lastMinute` is done: its pieces first, then the
     * progress item, only moving forward. Answers whether this write won.
     */
    async advanceAggregatorState(state: AggregatorState): Promise<{ applied: boolean }> {
      const bucket = bucketId(state.lastMinute);
      const expiresAt = Math.floor((state.lastMinute * 60_000) / 1000) + PIECE_TTL_SECONDS;
      const pages = {
        reporting: paginate(state.reporting),
        lastSeen: paginate(Object.entries(state.lastSeen)),
        outages: paginate(state.outages),
        capped: paginate(state.capped),
      };
      const items = (Object.keys(pages) as PieceKind[]).flatMap((kind) =>
        pages[kind].map((page: unknown[], n: number) => ({
          [TABLE.partitionKey]: keys.statePieces(bucket),
          [TABLE.sortKey]: keys.statePiece(PIECE_KINDS[kind], n),
          v: PIECE_FORMAT,
          d: gzipSync(JSON.stringify(page)),
          [TABLE.ttlAttribute]: expiresAt,
        })),
      );
      await putAll(client, tableName, items, { concurrency: WRITE_CONCURRENCY });
      return putProgress({
        v: PROGRESS_FORMAT,
        lastMinute: state.lastMinute,
        piecesMinute: state.lastMinute,
        pages: {
          reporting: pages.reporting.length,
          lastSeen: pages.lastSeen.length,
          outages: pages.outages.length,
          capped: pages.capped.length,
        },
        fleetWide: state.fleetWide,
        capInForce: state.capInForce,
      });
    },

    /**
     * Moves progress past a minute that could not be decided, keeping the
     * pieces of the last minute that was: the next minute is decided on time
     * from the state before the failed one.
     */
    async skipMinute(minute: number): Promise<{ applied: boolean }> {
      const read = await readProgress(true);
      if (read !== undefined && 'progress' in read) return putProgress({ ...read.progress, lastMinute: minute });
      // No state yet, or a v1 item: start over with no pieces (the v1 item is what failed to grow).
      return putProgress({
        v: PROGRESS_FORMAT,
        lastMinute: minute,
        piecesMinute: null,
        pages: { reporting: 0, lastSeen: 0, outages: 0, capped: 0 },
        fleetWide: read !== undefined && 'v1' in read ? read.v1.fleetWide : false,
        capInForce: false,
      });
    },

    /** Start times of each IP's automatic bans in the last 24 h. */
    async getOffenses(ips: readonly string[]): Promise<Record<string, number[]>> {
      const offenses: Record<string, number[]> = {};
      for (let start = 0; start < ips.length; start += 100) {
        let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = {
          [tableName]: { Keys: ips.slice(start, start + 100).map(offensesKey) },
        };
        for (let attempt = 0; request && Object.keys(request).length && attempt < 6; attempt++) {
          const result = await client.send(new BatchGetCommand({ RequestItems: request }));
          for (const item of result.Responses?.[tableName] ?? []) {
            offenses[item.ip as string] = [...((item.starts as Set<number> | undefined) ?? [])].sort((a, b) => a - b);
          }
          request = result.UnprocessedKeys as typeof request;
        }
      }
      return offenses;
    },

    /** Adds a ban start to the IP's history; a set, so a repeated run adds nothing. */
    async addOffense(ip: string, start: number): Promise<void> {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: offensesKey(ip),
          UpdateExpression: 'ADD starts :start SET ip = :ip, #ttl = :ttl',
          ExpressionAttributeNames: { '#ttl': TABLE.ttlAttribute },
          ExpressionAttributeValues: {
            ':start': new Set([start]),
            ':ip': ip,
            ':ttl': Math.floor(start / 1000) + OFFENSE_MEMORY_SECONDS,
          },
        }),
      );
    },
  };
}

export type StateStore = ReturnType<typeof createStateStore>;
