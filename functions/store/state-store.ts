import { gunzipSync, gzipSync } from 'node:zlib';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import type { Lease, Leases } from '../core/leases.js';
import { bucketId } from '../core/minutes.js';
import type { IpEvidence } from '../core/policy.js';
import { putAll } from './batch.js';
import type { StateStore } from './ports.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type StateStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
};

/**
 * What the aggregator knows after its last minute: its progress, what it
 * found (so conditions are reported when they begin and end), and the fleet as
 * of that minute, which GET /v1/fleet serves.
 */
export type AggregatorState = {
  /** The last minute done (epoch minute): decided, or given up on after an error. */
  lastMinute: number;
  /** When the last live pass decided (epoch ms). */
  lastPassAt?: number;
  reporting: IpEvidence[];
  /** Last minute each IP reported in, kept for a day, to tell "silent" IPs. */
  lastSeen: Record<string, number>;
  /** Per leased IP: last report time, declared interval, relaying or probing (core/leases.ts). Kept next to lastSeen. */
  leases?: Leases;
  /** A large share of the leased IPs is silent together (rule silent). */
  fleetSilent?: boolean;
  outages: string[];
  fleetWide: boolean;
  capInForce: boolean;
  capped: string[];
};

const OFFENSE_MEMORY_SECONDS = 86_400;

/**
 * The state is a small progress item plus pieces: pages of the fleet's
 * evidence, of last-seen minutes, of outages and of capped IPs, each page at
 * most PAGE_MAX_JSON_BYTES of JSON (gzip only shrinks it), so no item grows
 * with the fleet. Pieces live under the minute they describe and are all
 * written before the progress item names that minute: a crash in between
 * leaves the previous state whole, and the rerun rewrites the same keys.
 *
 * A kind whose pages are the same as in the state last read or written is
 * not written again: the progress item names, in `kept`, the partition its
 * pages still live in (a live pass changes the leases and the pass time, not
 * the fleet's evidence or last-seen minutes).
 */
const PAGE_MAX_JSON_BYTES = 60_000;
/**
 * Pieces outlive a day of minutes given up on (the progress item then still
 * names older pieces), counted from the last state that named them: a kind
 * is kept only while its pages have KEEP_MIN_SECONDS left.
 */
const PIECE_TTL_SECONDS = 3 * 86_400;
const KEEP_MIN_SECONDS = 2 * 86_400;
const PROGRESS_FORMAT = 2;
/** BatchGetItem calls in flight while reading offenses. */
const READ_CONCURRENCY = 8;
/** BatchWriteItem calls in flight while writing the pages. */
const WRITE_CONCURRENCY = 4;
const PIECE_FORMAT = 1;

const PIECE_KINDS = {
  reporting: 'R',
  lastSeen: 'S',
  leases: 'L',
  outages: 'O',
  capped: 'C',
} as const;
type PieceKind = keyof typeof PIECE_KINDS;

/**
 * The fields the fleet view and the rules rely on; the rest of the evidence
 * (the policy adds fields now and then) passes through as stored.
 */
const ipEvidenceSchema = z.pipe(
  z.looseObject({ ip: z.string(), samples: z.number(), failRatio: z.number() }),
  z.transform((evidence) => evidence as unknown as IpEvidence),
);
/** A lease as core/leases.ts keeps it: [seenAt, intervalSeconds, active, returnedAt?]. */
const leaseSchema = z.pipe(
  z.array(z.number()).check(z.minLength(3), z.maxLength(4)),
  z.transform((lease) => lease as unknown as Lease),
);
const pieceSchemas = {
  reporting: z.array(ipEvidenceSchema),
  lastSeen: z.array(z.tuple([z.string(), z.number()])),
  leases: z.array(z.tuple([z.string(), leaseSchema])),
  outages: z.array(z.string()),
  capped: z.array(z.string()),
} as const;

const pageCountsSchema = z.object({
  reporting: z.number(),
  lastSeen: z.number(),
  leases: z.number(),
  outages: z.number(),
  capped: z.number(),
});
const progressSchema = z.object({
  v: z.literal(PROGRESS_FORMAT),
  lastMinute: z.number(),
  lastPassAt: z.number(),
  /** Where the pieces of the state are (STATE#<minute>#<pass>), null before any; older than lastMinute after a minute given up on. */
  pieces: z.nullable(z.string()),
  /** Kinds not written with `pieces` (unchanged since an earlier state): the partition holding their pages. */
  kept: z.optional(
    z.object({
      reporting: z.optional(z.string()),
      lastSeen: z.optional(z.string()),
      leases: z.optional(z.string()),
      outages: z.optional(z.string()),
      capped: z.optional(z.string()),
    }),
  ),
  pages: pageCountsSchema,
  fleetWide: z.boolean(),
  fleetSilent: z.boolean(),
  capInForce: z.boolean(),
});
type Progress = z.infer<typeof progressSchema>;

/** The single item of format v1 (before the split), read once when upgrading. */
const stateV1Schema = z.object({
  lastMinute: z.number(),
  state: z.object({
    lastMinute: z.number(),
    lastPassAt: z.optional(z.number()),
    reporting: z.array(ipEvidenceSchema),
    lastSeen: z.record(z.string(), z.number()),
    leases: z.optional(z.record(z.string(), leaseSchema)),
    fleetSilent: z.optional(z.boolean()),
    outages: z.array(z.string()),
    fleetWide: z.boolean(),
    capInForce: z.boolean(),
    capped: z.array(z.string()),
  }),
});

export class StateFormatError extends Error {
  override name = 'StateFormatError';
}

/**
 * Cuts `values` into pages of at most PAGE_MAX_JSON_BYTES of JSON each (at
 * least one page), each page its JSON text: every value is serialised once.
 */
function paginate(values: readonly unknown[]): string[] {
  const pages: string[] = [];
  let page: string[] = [];
  let bytes = 2;
  for (const value of values) {
    const json = JSON.stringify(value);
    const size = Buffer.byteLength(json) + 1;
    if (page.length > 0 && bytes + size > PAGE_MAX_JSON_BYTES) {
      pages.push(`[${page.join(',')}]`);
      page = [];
      bytes = 2;
    }
    page.push(json);
    bytes += size;
  }
  pages.push(`[${page.join(',')}]`);
  return pages;
}

const samePages = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((page, n) => page === b[n]);

/** The aggregator's own items: its state and the IPs' ban history. */
export function createStateStore(options: StateStoreOptions): StateStore {
  const { client, tableName } = options;
  const stateKey = (sk: string) => ({
    [TABLE.partitionKey]: keys.statePartition(),
    [TABLE.sortKey]: sk,
  });
  const offensesKey = (ip: string) => ({
    [TABLE.partitionKey]: keys.offensesPartition(ip),
    [TABLE.sortKey]: keys.offenses(),
  });

  const offenseUpdate = (ip: string, start: number) => ({
    TableName: tableName,
    Key: offensesKey(ip),
    UpdateExpression: 'ADD starts :start SET ip = :ip, #ttl = :ttl',
    ExpressionAttributeNames: { '#ttl': TABLE.ttlAttribute },
    ExpressionAttributeValues: {
      ':start': new Set([start]),
      ':ip': ip,
      ':ttl': Math.floor(start / 1000) + OFFENSE_MEMORY_SECONDS,
    },
  });

  type Read =
    | { progress: Progress }
    | { v1: z.infer<typeof stateV1Schema>['state'] }
    | undefined;

  async function readProgress(consistent: boolean): Promise<Read> {
    const result = await client.send(
      new GetCommand({
        TableName: tableName,
        Key: stateKey(keys.aggregatorState()),
        ConsistentRead: consistent,
      }),
    );
    if (!result.Item) return undefined;
    if (result.Item.v === undefined) {
      const v1 = stateV1Schema.safeParse(result.Item);
      if (!v1.success)
        throw new StateFormatError('aggregator state item (v1) is unreadable');
      return { v1: v1.data.state };
    }
    const parsed = progressSchema.safeParse(result.Item);
    if (!parsed.success)
      throw new StateFormatError(
        `aggregator progress item is unreadable: ${parsed.error.issues[0]?.message ?? ''}`,
      );
    return { progress: parsed.data };
  }

  /**
   * Per kind, the pages of the state last read (consistently) or written by
   * this store, where they live and when they expire: a kind whose new pages
   * are the same is not written again. Forgotten when a write loses or fails.
   */
  type Known = Partial<
    Record<PieceKind, { at: string; pages: string[]; expiresAt: number }>
  >;
  let known: Known | undefined;

  async function readPieces<K extends PieceKind>(
    pieces: string,
    kind: K,
    expected: number,
    consistent: boolean,
    seen?: Known,
  ): Promise<z.infer<(typeof pieceSchemas)[K]>> {
    const items = await queryItems(client, {
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)',
      ExpressionAttributeNames: {
        '#pk': TABLE.partitionKey,
        '#sk': TABLE.sortKey,
      },
      ExpressionAttributeValues: {
        ':pk': pieces,
        ':prefix': keys.statePiecePrefix(PIECE_KINDS[kind]),
      },
      ConsistentRead: consistent,
    });
    if (items.length !== expected) {
      throw new StateFormatError(
        `state ${pieces} has ${items.length} ${kind} pages, progress says ${expected}`,
      );
    }
    const values: unknown[] = [];
    const pages: string[] = [];
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const item of items) {
      if (item.v !== PIECE_FORMAT || !(item.d instanceof Uint8Array))
        throw new StateFormatError(
          `state piece ${String(item.sk)} has an unknown format`,
        );
      const text = gunzipSync(item.d).toString('utf8');
      const parsed = pieceSchemas[kind].safeParse(JSON.parse(text));
      if (!parsed.success)
        throw new StateFormatError(
          `state piece ${String(item.sk)} is unreadable`,
        );
      values.push(...parsed.data);
      pages.push(text);
      const ttl = item[TABLE.ttlAttribute];
      expiresAt = Math.min(expiresAt, typeof ttl === 'number' ? ttl : 0);
    }
    if (seen) seen[kind] = { at: pieces, pages, expiresAt };
    return values as z.infer<(typeof pieceSchemas)[K]>;
  }

  async function putProgress(
    progress: Progress,
  ): Promise<{ applied: boolean }> {
    try {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...stateKey(keys.aggregatorState()), ...progress },
          // Only forward (minute first, then pass time): of two overlapping runs, the one behind does not undo the other's progress.
          ConditionExpression:
            'attribute_not_exists(lastMinute) OR lastMinute < :minute OR (lastMinute = :minute AND (attribute_not_exists(lastPassAt) OR lastPassAt < :at))',
          ExpressionAttributeValues: {
            ':minute': progress.lastMinute,
            ':at': progress.lastPassAt,
          },
        }),
      );
      return { applied: true };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        return { applied: false };
      throw error;
    }
  }

  const emptyState = (progress: Progress): AggregatorState => ({
    lastMinute: progress.lastMinute,
    ...(progress.lastPassAt ? { lastPassAt: progress.lastPassAt } : {}),
    reporting: [],
    lastSeen: {},
    leases: {},
    fleetSilent: progress.fleetSilent,
    outages: [],
    fleetWide: progress.fleetWide,
    capInForce: progress.capInForce,
    capped: [],
  });

  return {
    /**
     * The state as of the last minute or pass: `consistent` for the
     * aggregator itself (it must see its own last write), eventual for
     * GET /v1/fleet.
     */
    async getAggregatorState(options: {
      consistent: boolean;
    }): Promise<AggregatorState | undefined> {
      if (options.consistent) known = undefined;
      const read = await readProgress(options.consistent);
      if (read === undefined) return undefined;
      if ('v1' in read) return read.v1 as AggregatorState;
      const { progress } = read;
      const at = progress.pieces;
      if (at === null) return emptyState(progress);
      // Only a consistent read is sure to be the state the next write follows.
      const seen: Known | undefined = options.consistent ? {} : undefined;
      const piecesOf = <K extends PieceKind>(kind: K) =>
        readPieces(
          progress.kept?.[kind] ?? at,
          kind,
          progress.pages[kind],
          options.consistent,
          seen,
        );
      const [reporting, lastSeen, leases, outages, capped] = await Promise.all([
        piecesOf('reporting'),
        piecesOf('lastSeen'),
        piecesOf('leases'),
        piecesOf('outages'),
        piecesOf('capped'),
      ]);
      if (seen) known = seen;
      return {
        ...emptyState(progress),
        reporting,
        lastSeen: Object.fromEntries(lastSeen),
        leases: Object.fromEntries(leases) as Leases,
        outages,
        capped,
      };
    },

    /**
     * Records that `state.lastMinute` is done, or a live pass at
     * `state.lastPassAt`: its pieces first (the kinds that changed since the
     * state last read or written), then the progress item, only moving
     * forward. Answers whether this write won.
     */
    async advanceAggregatorState(
      state: AggregatorState,
    ): Promise<{ applied: boolean }> {
      const passAt = state.lastPassAt ?? 0;
      const pieces = keys.statePieces(bucketId(state.lastMinute), passAt);
      const expiresAt =
        Math.floor(Math.max(state.lastMinute * 60_000, passAt) / 1000) +
        PIECE_TTL_SECONDS;
      const pages = {
        reporting: paginate(state.reporting),
        lastSeen: paginate(Object.entries(state.lastSeen)),
        leases: paginate(Object.entries(state.leases ?? {})),
        outages: paginate(state.outages),
        capped: paginate(state.capped),
      };
      const before = known;
      known = undefined;
      const next: Known = {};
      const kept: Partial<Record<PieceKind, string>> = {};
      const items: Record<string, unknown>[] = [];
      for (const kind of Object.keys(pages) as PieceKind[]) {
        const was = before?.[kind];
        if (
          was &&
          was.expiresAt >= expiresAt - PIECE_TTL_SECONDS + KEEP_MIN_SECONDS &&
          samePages(was.pages, pages[kind])
        ) {
          next[kind] = was;
          if (was.at !== pieces) kept[kind] = was.at;
          continue;
        }
        next[kind] = { at: pieces, pages: pages[kind], expiresAt };
        pages[kind].forEach((page, n) => {
          items.push({
            [TABLE.partitionKey]: pieces,
            [TABLE.sortKey]: keys.statePiece(PIECE_KINDS[kind], n),
            v: PIECE_FORMAT,
            d: gzipSync(page),
            [TABLE.ttlAttribute]: expiresAt,
          });
        });
      }
      await putAll(client, tableName, items, {
        concurrency: WRITE_CONCURRENCY,
      });
      const written = await putProgress({
        v: PROGRESS_FORMAT,
        lastMinute: state.lastMinute,
        lastPassAt: passAt,
        pieces,
        ...(Object.keys(kept).length ? { kept } : {}),
        pages: {
          reporting: pages.reporting.length,
          lastSeen: pages.lastSeen.length,
          leases: pages.leases.length,
          outages: pages.outages.length,
          capped: pages.capped.length,
        },
        fleetWide: state.fleetWide,
        fleetSilent: state.fleetSilent ?? false,
        capInForce: state.capInForce,
      });
      if (written.applied) known = next;
      return written;
    },

    /**
     * Moves progress past a minute that could not be decided, keeping the
     * pieces of the last state written: the next minute is decided on time
     * from the state before the failed one.
     */
    async skipMinute(minute: number): Promise<{ applied: boolean }> {
      known = undefined;
      const read = await readProgress(true);
      if (read !== undefined && 'progress' in read)
        return putProgress({
          ...read.progress,
          lastMinute: minute,
          lastPassAt: 0,
        });
      // No state yet, or a v1 item: start over with no pieces (the v1 item is what failed to grow).
      return putProgress({
        v: PROGRESS_FORMAT,
        lastMinute: minute,
        lastPassAt: 0,
        pieces: null,
        pages: { reporting: 0, lastSeen: 0, leases: 0, outages: 0, capped: 0 },
        fleetWide:
          read !== undefined && 'v1' in read ? read.v1.fleetWide : false,
        fleetSilent: false,
        capInForce: false,
      });
    },

    /** Start times of each IP's automatic bans in the last 24 h. */
    async getOffenses(
      ips: readonly string[],
    ): Promise<Record<string, number[]>> {
      const offenses: Record<string, number[]> = {};
      const chunks: number[] = [];
      for (let start = 0; start < ips.length; start += 100) chunks.push(start);
      let next = 0;
      const readChunk = async (start: number) => {
        let request:
          | Record<string, { Keys: Record<string, unknown>[] }>
          | undefined = {
          [tableName]: { Keys: ips.slice(start, start + 100).map(offensesKey) },
        };
        for (
          let attempt = 0;
          request && Object.keys(request).length && attempt < 6;
          attempt++
        ) {
          const result = await client.send(
            new BatchGetCommand({ RequestItems: request }),
          );
          for (const item of result.Responses?.[tableName] ?? []) {
            offenses[item.ip as string] = [
              ...((item.starts as Set<number> | undefined) ?? []),
            ].sort((a, b) => a - b);
          }
          request = result.UnprocessedKeys as typeof request;
        }
      };
      // A few BatchGetItem calls in flight: a minute with thousands of suspects reads them at once.
      await Promise.all(
        Array.from(
          { length: Math.min(READ_CONCURRENCY, chunks.length) },
          async () => {
            while (next < chunks.length)
              await readChunk(chunks[next++] as number);
          },
        ),
      );
      return offenses;
    },

    /**
     * Adds a ban start to the IP's history (a set, so a repeated run adds
     * nothing), as a transaction item: it is written with the ban itself.
     */
    offenseItem(ip: string, start: number): Record<string, unknown> {
      return { Update: offenseUpdate(ip, start) };
    },
  };
}
