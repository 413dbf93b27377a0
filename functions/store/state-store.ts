import { gunzipSync, gzipSync } from 'node:zlib';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import { parseWith } from '#contract/validation';
import type { Lease, Leases } from '../core/leases.js';
import { bucketId } from '../core/minutes.js';
import type { IpEvidence } from '../core/policy.js';
import { getAll, putAll } from './batch.js';
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

/**
 * The state without the fleet view (`reporting`, its largest part): what the
 * aggregator reads, since it decides from the rows and never from the
 * previous fleet view.
 */
export type AggregatorMemory = Omit<AggregatorState, 'reporting'>;

/**
 * A state to record. `reporting: 'unchanged'` keeps the fleet view stored
 * (that of the state last read or written, else the one the progress item
 * names) without reading it; an array is a new fleet view, empty or not.
 */
export type AggregatorStateUpdate = AggregatorMemory & {
  reporting: IpEvidence[] | 'unchanged';
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
 * the fleet's evidence or last-seen minutes). A kind given back as the very
 * value (array or record) the store answered or was given is the same
 * without being serialised again: callers do not change those in place.
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

/** A value parsed from JSON, whose fields the checks look at before anything else does. */
type Json = any;
const isEvidence = (e: Json): boolean =>
  typeof e === 'object' &&
  e !== null &&
  !Array.isArray(e) &&
  typeof e.ip === 'string' &&
  typeof e.samples === 'number' &&
  typeof e.failRatio === 'number';
const isLease = (lease: Json): boolean => {
  if (!Array.isArray(lease) || lease.length < 3 || lease.length > 4)
    return false;
  for (const field of lease) if (typeof field !== 'number') return false;
  return true;
};
/** A key of a record built from stored entries: `__proto__` too is an own field, as Object.fromEntries makes it. */
function setEntry<V>(record: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__')
    Object.defineProperty(record, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  else record[key] = value;
}
const isEntry = (e: Json): boolean =>
  Array.isArray(e) && e.length === 2 && typeof e[0] === 'string';

/** The kinds of the aggregator's memory: every kind but the fleet view. */
const MEMORY_KINDS = ['lastSeen', 'leases', 'outages', 'capped'] as const;

/** What each kind's pages add up to, as the state holds it. */
type PieceValues = {
  reporting: IpEvidence[];
  lastSeen: Record<string, number>;
  leases: Record<string, Lease>;
  outages: string[];
  capped: string[];
};

/** The values of the aggregator's memory, by kind. */
type MemoryValues = { [K in (typeof MEMORY_KINDS)[number]]: PieceValues[K] };

/**
 * Per kind, how each element of a page is checked and added, by hand in one
 * pass: the same rules as ipEvidenceSchema and leaseSchema (which read the
 * v1 item), at a fraction of the cost of a schema per element on a fleet's
 * pages. `add` answers false for an element that breaks them.
 */
const pieceReaders: {
  [K in PieceKind]: {
    empty: () => PieceValues[K];
    add: (into: PieceValues[K], element: Json) => boolean;
  };
} = {
  reporting: {
    empty: () => [],
    add: (into, e) => isEvidence(e) && into.push(e) > 0,
  },
  lastSeen: {
    empty: () => ({}),
    add: (into, e) => {
      if (!isEntry(e) || typeof e[1] !== 'number') return false;
      setEntry(into, e[0], e[1]);
      return true;
    },
  },
  leases: {
    empty: () => ({}),
    add: (into, e) => {
      if (!isEntry(e) || !isLease(e[1])) return false;
      setEntry(into, e[0], e[1]);
      return true;
    },
  },
  outages: {
    empty: () => [],
    add: (into, e) => typeof e === 'string' && into.push(e) > 0,
  },
  capped: {
    empty: () => [],
    add: (into, e) => typeof e === 'string' && into.push(e) > 0,
  },
};

const perKindSchema = z.object({
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
  pages: perKindSchema,
  /** When each kind's pages expire (epoch s); absent from items written before it was recorded (then taken as expiring). */
  expires: z.optional(perKindSchema),
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
    const parsed = parseWith(progressSchema, result.Item);
    if (!parsed.ok)
      throw new StateFormatError(
        `aggregator progress item is unreadable: ${parsed.issues[0]?.message ?? ''}`,
      );
    return { progress: parsed.value };
  }

  /**
   * Per kind, what this store knows of the pages of the state last read
   * (consistently) or written: where they live, how many there are, when they
   * expire, and, when in hand, the value they hold (compared by identity) and
   * their JSON text. A kind found the same is not written again. Forgotten
   * when a write loses or fails.
   */
  type KnownPages = {
    at: string;
    count: number;
    expiresAt: number;
    value?: unknown;
    pages?: readonly string[];
  };
  type Known = Partial<Record<PieceKind, KnownPages>>;
  let known: Known | undefined;

  /** Every page of one kind in `pieces`, as stored; exactly `expected` of them, each of a known format. */
  async function readPages(
    pieces: string,
    kind: PieceKind,
    expected: number,
    consistent: boolean,
  ): Promise<Array<Record<string, unknown> & { d: Uint8Array }>> {
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
    for (const item of items) {
      if (item.v !== PIECE_FORMAT || !(item.d instanceof Uint8Array))
        throw new StateFormatError(
          `state piece ${String(item[TABLE.sortKey])} has an unknown format`,
        );
    }
    return items as Array<Record<string, unknown> & { d: Uint8Array }>;
  }

  async function readPieces<K extends PieceKind>(
    pieces: string,
    kind: K,
    expected: number,
    consistent: boolean,
  ): Promise<{ values: PieceValues[K]; known: KnownPages }> {
    const items = await readPages(pieces, kind, expected, consistent);
    // One kind's reader (TypeScript does not narrow the map by a generic key).
    const reader = pieceReaders[kind] as unknown as {
      empty: () => PieceValues[K];
      add: (into: PieceValues[K], element: Json) => boolean;
    };
    const values = reader.empty();
    const pages: string[] = [];
    let expiresAt = Number.POSITIVE_INFINITY;
    for (const item of items) {
      const text = gunzipSync(item.d).toString('utf8');
      let page: unknown;
      try {
        page = JSON.parse(text);
      } catch {
        page = undefined;
      }
      let valid = Array.isArray(page);
      if (valid)
        for (const element of page as unknown[]) {
          if (!reader.add(values, element)) {
            valid = false;
            break;
          }
        }
      if (!valid)
        throw new StateFormatError(
          `state piece ${String(item[TABLE.sortKey])} is unreadable`,
        );
      pages.push(text);
      const ttl = item[TABLE.ttlAttribute];
      expiresAt = Math.min(expiresAt, typeof ttl === 'number' ? ttl : 0);
    }
    return {
      values,
      known: { at: pieces, count: expected, expiresAt, pages },
    };
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

  const emptyMemory = (progress: Progress): AggregatorMemory => ({
    lastMinute: progress.lastMinute,
    ...(progress.lastPassAt ? { lastPassAt: progress.lastPassAt } : {}),
    lastSeen: {},
    leases: {},
    fleetSilent: progress.fleetSilent,
    outages: [],
    fleetWide: progress.fleetWide,
    capInForce: progress.capInForce,
    capped: [],
  });

  /**
   * The values of the kinds the aggregator reads, in hand, when `progress`
   * names exactly the pages this store last read or wrote (same partition,
   * count and expiry): they need no read. Undefined otherwise.
   */
  function heldValues(
    progress: Progress,
    held: Known | undefined,
  ): MemoryValues | undefined {
    if (held === undefined) return undefined;
    const same = (kind: PieceKind) => {
      const pages = held[kind];
      const stored = storedPages(progress, kind);
      return (
        pages !== undefined &&
        pages.at === stored.at &&
        pages.count === stored.count &&
        pages.expiresAt === stored.expiresAt
      );
    };
    // The fleet view is not answered, but the next write keeps it as known: it must be where progress says too.
    if (!same('reporting')) return undefined;
    for (const kind of MEMORY_KINDS)
      if (!same(kind) || held[kind]?.value === undefined) return undefined;
    // Each value is the one this store wrote or read for its kind.
    return Object.fromEntries(
      MEMORY_KINDS.map((kind) => [kind, held[kind]?.value]),
    ) as MemoryValues;
  }

  /** Where the progress item says a kind's pages are, without reading them. */
  const storedPages = (progress: Progress, kind: PieceKind): KnownPages => ({
    at: progress.kept?.[kind] ?? (progress.pieces as string),
    count: progress.pages[kind],
    expiresAt: progress.expires?.[kind] ?? 0,
  });

  /**
   * The stored fleet view, for a write that keeps it without having read
   * it in this store: where its pages are, or the evidence itself (a v1
   * item, or none at all).
   */
  async function storedFleetView(): Promise<KnownPages | IpEvidence[]> {
    const read = await readProgress(true);
    if (read === undefined) return [];
    if ('v1' in read) return read.v1.reporting;
    if (read.progress.pieces === null) return [];
    return storedPages(read.progress, 'reporting');
  }

  async function getAggregatorState(options: {
    consistent: boolean;
    fleetView?: boolean;
  }): Promise<AggregatorState | AggregatorMemory | undefined> {
    const fleetView = options.fleetView ?? true;
    const before = known;
    if (options.consistent) known = undefined;
    const read = await readProgress(options.consistent);
    if (read === undefined) return undefined;
    if ('v1' in read) {
      if (fleetView) return read.v1 as AggregatorState;
      const { reporting: _, ...memory } = read.v1;
      return memory as AggregatorMemory;
    }
    const { progress } = read;
    const at = progress.pieces;
    if (at === null)
      return fleetView
        ? { ...emptyMemory(progress), reporting: [] }
        : emptyMemory(progress);
    const memoryOf = (values: MemoryValues): AggregatorMemory => ({
      ...emptyMemory(progress),
      ...values,
    });
    // A warm process (the aggregator runs every minute) usually finds the
    // progress item it wrote last: the pages it names are the ones it holds.
    const held =
      options.consistent && !fleetView && heldValues(progress, before);
    if (held) {
      known = before;
      return memoryOf(held);
    }
    const piecesOf = <K extends PieceKind>(kind: K) => {
      const stored = storedPages(progress, kind);
      return readPieces(stored.at, kind, stored.count, options.consistent);
    };
    const [reporting, lastSeen, leases, outages, capped] = await Promise.all([
      fleetView ? piecesOf('reporting') : undefined,
      piecesOf('lastSeen'),
      piecesOf('leases'),
      piecesOf('outages'),
      piecesOf('capped'),
    ]);
    const memory = memoryOf({
      lastSeen: lastSeen.values,
      leases: leases.values,
      outages: outages.values,
      capped: capped.values,
    });
    // Only a consistent read is sure to be the state the next write follows.
    if (options.consistent)
      known = {
        reporting: reporting
          ? { ...reporting.known, value: reporting.values }
          : storedPages(progress, 'reporting'),
        lastSeen: { ...lastSeen.known, value: memory.lastSeen },
        leases: { ...leases.known, value: memory.leases },
        outages: { ...outages.known, value: memory.outages },
        capped: { ...capped.known, value: memory.capped },
      };
    return reporting ? { ...memory, reporting: reporting.values } : memory;
  }

  /**
   * Records that `state.lastMinute` is done, or a live pass at
   * `state.lastPassAt`: its pieces first (the kinds that changed since the
   * state last read or written, and the kinds kept whose pages would expire
   * too soon, copied forward), while `after` is under way, then the
   * progress item, only moving forward. Answers whether this write won.
   */
  async function advanceAggregatorState(
    state: AggregatorStateUpdate,
    options: { after?: Promise<unknown> } = {},
  ): Promise<{ applied: boolean }> {
    const passAt = state.lastPassAt ?? 0;
    const pieces = keys.statePieces(bucketId(state.lastMinute), passAt);
    const expiresAt =
      Math.floor(Math.max(state.lastMinute * 60_000, passAt) / 1000) +
      PIECE_TTL_SECONDS;
    // A kind is kept where it is only while its pages have KEEP_MIN_SECONDS left.
    const keepUntil = expiresAt - PIECE_TTL_SECONDS + KEEP_MIN_SECONDS;
    const before = known;
    known = undefined;
    // The fleet view kept unchanged is given as where its pages are (or as the evidence, when there are none).
    const values: Record<PieceKind, unknown> = {
      reporting:
        state.reporting === 'unchanged'
          ? (before?.reporting ?? (await storedFleetView()))
          : state.reporting,
      lastSeen: state.lastSeen,
      leases: state.leases ?? {},
      outages: state.outages,
      capped: state.capped,
    };
    const next: Known = {};
    const kept: Partial<Record<PieceKind, string>> = {};
    const items: Record<string, unknown>[] = [];
    const piece = (sk: unknown, d: Uint8Array) => ({
      [TABLE.partitionKey]: pieces,
      [TABLE.sortKey]: sk,
      v: PIECE_FORMAT,
      d,
      [TABLE.ttlAttribute]: expiresAt,
    });
    for (const kind of Object.keys(PIECE_KINDS) as PieceKind[]) {
      const was = before?.[kind];
      const given = values[kind];
      // The pages stored, when the kind is unchanged: kept as located, the very value known, or the same text.
      let same: KnownPages | undefined;
      let value: unknown;
      let pages: readonly string[] | undefined;
      if (kind === 'reporting' && !Array.isArray(given)) {
        same = given as KnownPages;
        value = same.value;
      } else if (was?.value !== undefined && was.value === given) {
        same = was;
        value = given;
      } else {
        value = given;
        pages = paginate(
          Array.isArray(given) ? given : Object.entries(given as object),
        );
        if (was?.pages && samePages(was.pages, pages)) same = { ...was, value };
      }
      if (same && same.expiresAt >= keepUntil) {
        next[kind] = same;
        if (same.at !== pieces) kept[kind] = same.at;
        continue;
      }
      pages ??= same?.pages;
      if (same && pages === undefined) {
        // Kept too long and never read here (the fleet view): its pages are copied forward as stored.
        for (const item of await readPages(same.at, kind, same.count, true))
          items.push(piece(item[TABLE.sortKey], item.d));
        next[kind] = { ...same, at: pieces, expiresAt };
        continue;
      }
      const written = pages ?? [];
      next[kind] = {
        at: pieces,
        count: written.length,
        expiresAt,
        value,
        pages: written,
      };
      written.forEach((page, n) => {
        items.push(
          piece(keys.statePiece(PIECE_KINDS[kind], n), gzipSync(page)),
        );
      });
    }
    await Promise.all([
      putAll(client, tableName, items, { concurrency: WRITE_CONCURRENCY }),
      options.after,
    ]);
    const perKind = (of: (pages: KnownPages) => number) => {
      const figures = {} as Record<PieceKind, number>;
      for (const kind of Object.keys(PIECE_KINDS) as PieceKind[])
        figures[kind] = of(next[kind] as KnownPages);
      return figures;
    };
    const written = await putProgress({
      v: PROGRESS_FORMAT,
      lastMinute: state.lastMinute,
      lastPassAt: passAt,
      pieces,
      ...(Object.keys(kept).length ? { kept } : {}),
      pages: perKind((pages) => pages.count),
      expires: perKind((pages) => pages.expiresAt),
      fleetWide: state.fleetWide,
      fleetSilent: state.fleetSilent ?? false,
      capInForce: state.capInForce,
    });
    if (written.applied) known = next;
    return written;
  }

  return {
    /**
     * The state as of the last minute or pass: `consistent` for the
     * aggregator itself (it must see its own last write), eventual for
     * GET /v1/fleet; without the fleet view when `fleetView` is false.
     */
    getAggregatorState: getAggregatorState as StateStore['getAggregatorState'],
    advanceAggregatorState,

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
      // A few BatchGetItem calls in flight: a minute with thousands of suspects reads them at once.
      for (const item of await getAll(client, tableName, ips.map(offensesKey), {
        concurrency: READ_CONCURRENCY,
      }))
        offenses[item.ip as string] = [
          ...((item.starts as Set<number> | undefined) ?? []),
        ].sort((a, b) => a - b);
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
