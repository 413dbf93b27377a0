import { canonicalIp } from '#contract/ip';
import type { Heartbeat, HeartbeatKind, HeartbeatStatus } from './heartbeat.js';
import { getOrInsert } from './maps.js';
import { isMinuteOpen, minuteOf } from './minutes.js';

export type StatusCounts = Record<HeartbeatStatus, number>;

/** Counts of one (origin, kind) pair, as one machine saw it in one minute. */
export type OriginTally = {
  origin: string;
  kind: HeartbeatKind;
  counts: StatusCounts;
};

/** Everything one request said about one IP in one minute. */
export type MinuteTally = {
  minute: number;
  ip: string;
  origins: OriginTally[];
  /** When the request arrived (epoch ms); absent on rows written before it was recorded. */
  receivedAt?: number;
  /** The newest heartbeat `ts` of the row (epoch ms): when the report was observed. */
  observedAt?: number;
  /** The report interval the agent declared (its lease, seconds); absent for older agents. */
  leaseSeconds?: number;
  /**
   * Visits the row's origins without building `origins` (rows read from the
   * table: a minute of 100,000 machines holds millions of entries). Counts
   * are given as EntryCounts; the array is reused between calls.
   */
  eachOrigin?: (visit: OriginVisitor) => void;
  /** Whether any origin of the row has a count, without decoding the row (rows read from the table). */
  anyCount?: () => boolean;
};

/**
 * One origin's counts in one row: relay ok, connect_failed, origin_error,
 * error, then the same four for probes (the packed row's layout).
 */
export type EntryCounts = ArrayLike<number>;
export type OriginVisitor = (origin: string, counts: EntryCounts) => void;
/** Where EntryCounts holds each status: relay counts at these, probe counts ENTRY_PROBES after. */
export const ENTRY_OK = 0;
export const ENTRY_CONNECT_FAILED = 1;
export const ENTRY_ORIGIN_ERROR = 2;
export const ENTRY_ERROR = 3;
export const ENTRY_PROBES = 4;
const PROBE_OK = ENTRY_PROBES + ENTRY_OK;
const PROBE_CONNECT_FAILED = ENTRY_PROBES + ENTRY_CONNECT_FAILED;
const PROBE_ORIGIN_ERROR = ENTRY_PROBES + ENTRY_ORIGIN_ERROR;
const PROBE_ERROR = ENTRY_PROBES + ENTRY_ERROR;

const scratchCounts = [0, 0, 0, 0, 0, 0, 0, 0];

/** Visits a row's origins: through `eachOrigin` when the row has it, else from `origins`. */
export function visitOrigins(row: MinuteTally, visit: OriginVisitor): void {
  if (row.eachOrigin) {
    row.eachOrigin(visit);
    return;
  }
  const c = scratchCounts;
  for (const { origin, kind, counts } of row.origins) {
    const base = kind === 'probe' ? ENTRY_PROBES : 0;
    c.fill(0);
    c[base + ENTRY_OK] = counts.ok;
    c[base + ENTRY_CONNECT_FAILED] = counts.connect_failed;
    c[base + ENTRY_ORIGIN_ERROR] = counts.origin_error;
    c[base + ENTRY_ERROR] = counts.error;
    visit(origin, c);
  }
}

export const UNKNOWN_ORIGIN = '';

export function emptyCounts(): StatusCounts {
  return { ok: 0, connect_failed: 0, origin_error: 0, error: 0 };
}

export function addCounts(
  into: StatusCounts,
  from: StatusCounts,
): StatusCounts {
  into.ok += from.ok;
  into.connect_failed += from.connect_failed;
  into.origin_error += from.origin_error;
  into.error += from.error;
  return into;
}

export function totalOf(counts: StatusCounts): number {
  return counts.ok + counts.connect_failed + counts.origin_error + counts.error;
}

/** Whether the row says anything about any origin: through `anyCount` when it has it, else from `origins`. */
export function hasCounts(row: MinuteTally): boolean {
  if (row.anyCount) return row.anyCount();
  return row.origins.some((o) => totalOf(o.counts) > 0);
}

/**
 * The origin a heartbeat is evidence about: scheme and host of its URL, since
 * reachability is a property of the host, not of one stream path on it.
 * @example originKey('rtmp://Origin.example.com:1935/live/abc') // 'rtmp://origin.example.com:1935'
 */
export function originKey(origin: string | undefined): string {
  if (origin === undefined) return UNKNOWN_ORIGIN;
  const text = origin.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text);
      if (url.host) return `${url.protocol}//${url.host}`.toLowerCase();
    } catch {
      // not a URL after all: fall through and key by the text itself
    }
  }
  return text.toLowerCase();
}

/** `accepted` is every heartbeat of the request; `stale` says how many of them were too late to count. */
export type TallyResult = {
  tallies: MinuteTally[];
  accepted: number;
  stale: number;
};

/**
 * Pre-combines a request's heartbeats per (minute, ip), so that storage cost
 * grows with requests, not heartbeats. Heartbeats of a minute that has already
 * closed are accepted but not counted (`stale`): an agent delivering a backlog
 * after an outage is not refused, and closed buckets never change.
 */
export function tallyHeartbeats(
  heartbeats: readonly Heartbeat[],
  options: {
    now: number;
    graceMs: number;
    receivedAt?: number;
    leaseSeconds?: number | undefined;
    ip?: string | undefined;
  },
): TallyResult {
  const byMinuteAndIp = new Map<
    string,
    {
      minute: number;
      ip: string;
      observedAt: number;
      origins: Map<string, OriginTally>;
    }
  >();
  let stale = 0;
  for (const heartbeat of heartbeats) {
    const observedAt = heartbeat.ts ?? options.now;
    const minute = minuteOf(observedAt);
    if (!isMinuteOpen(minute, options)) {
      stale++;
      continue;
    }
    const ip = canonicalIp(heartbeat.ip) ?? heartbeat.ip;
    const key = `${minute} ${ip}`;
    const tally = getOrInsert(byMinuteAndIp, key, () => ({
      minute,
      ip,
      observedAt,
      origins: new Map<string, OriginTally>(),
    }));
    tally.observedAt = Math.max(tally.observedAt, observedAt);
    const kind = heartbeat.kind ?? 'relay';
    const origin = originKey(heartbeat.origin);
    const originTally = getOrInsert(tally.origins, `${kind} ${origin}`, () => ({
      origin,
      kind,
      counts: emptyCounts(),
    }));
    originTally.counts[heartbeat.status]++;
  }
  // A lease renewal of an idle agent: a row of its IP that says "alive, running nothing".
  if (
    heartbeats.length === 0 &&
    options.ip !== undefined &&
    options.leaseSeconds !== undefined
  ) {
    const ip = canonicalIp(options.ip) ?? options.ip;
    const at = options.receivedAt ?? options.now;
    byMinuteAndIp.set(`renewal ${ip}`, {
      minute: minuteOf(at),
      ip,
      observedAt: at,
      origins: new Map(),
    });
  }
  const tallies = [...byMinuteAndIp.values()].map(
    ({ minute, ip, observedAt, origins }): MinuteTally => ({
      minute,
      ip,
      origins: [...origins.values()],
      receivedAt: options.receivedAt ?? options.now,
      observedAt,
      ...(options.leaseSeconds === undefined
        ? {}
        : { leaseSeconds: options.leaseSeconds }),
    }),
  );
  return { tallies, accepted: heartbeats.length, stale };
}

/**
 * A 48-bit identity of an origin (cyrb53's two lanes, 12 hex digits). Rows
 * store this instead of the name: with a few hundred thousand distinct origins
 * in a minute a collision stays below one in a million.
 * @example originId('rtmp://origin.example.com') // '3f0c9a1be27d'
 */
export function originId(origin: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < origin.length; i++) {
    const code = origin.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 =
    Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^
    Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 =
    Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^
    Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (
    (h2 & 0xffff).toString(16).padStart(4, '0') +
    (h1 >>> 0).toString(16).padStart(8, '0')
  );
}

const UNNAMED = '#H';
/**
 * How an origin whose name no row of the read carried is keyed. originKey only
 * yields lower case, so the upper-case H keeps it apart from every real name.
 */
export const unnamedOrigin = (id: string) => `${UNNAMED}${id}`;

/** The originId an unnamedOrigin key stands for; undefined for a name. */
export const idOfUnnamed = (origin: string): string | undefined =>
  origin.startsWith(UNNAMED) ? origin.slice(UNNAMED.length) : undefined;

/** Index of the four counts of a pair: ok, connect_failed, origin_error, error. */
export const PAIR_OK = 0;
export const PAIR_FAILED = 1;
export const PAIR_ORIGIN_ERROR = 2;
export const PAIR_ERROR = 3;

/** The arrays of a WindowTally, read-only, for the evidence to walk without allocating. */
export type WindowTallyView = {
  /** IPs in the order first seen; an IP's index is its place here. */
  ips: readonly string[];
  /** Origin names in the order first seen. */
  origins: readonly string[];
  /** Per IP: where its pairs start in `pairOrigin` and how many it has. */
  start: readonly number[];
  size: readonly number[];
  /** Per pair: the origin's index, and its four counts at 4 x pair (PAIR_OK...). */
  pairOrigin: Int32Array;
  pairCounts: Uint32Array;
};

/**
 * A window's rows folded, row by row, into per-IP, per-origin counts (relays
 * and probes together), in flat arrays: a minute of 100,000 machines is
 * ~5 million pairs, ~100 MB here instead of ~1 GB as objects. The rows are
 * not kept. Connect failures of rows delivered late (a backlog) are kept
 * apart per IP, as the policy counts them against no machine; the rows whose
 * lateness depends on the leases (an IP's return from a silence) are counted
 * as on time, and taken out when the evidence is gathered if the leases make
 * them late (withReturns), so one fold serves decisions made with different
 * leases, and the common case (no return) costs a lookup per row. Counts are
 * 32-bit.
 */
export class WindowTally {
  readonly graceMs: number;
  /** Rows folded. */
  rows = 0;
  private readonly ips: string[] = [];
  private readonly ipIndex = new Map<string, number>();
  private readonly origins: string[] = [];
  private readonly originIndex = new Map<string, number>();
  private readonly start: number[] = [];
  private readonly size: number[] = [];
  private readonly late: number[] = [];
  private readonly failing: boolean[] = [];
  /** IP indices in the order their first connect failure was folded. */
  private readonly failingOrder: number[] = [];
  private readonly newestAt: number[] = [];
  private readonly newestOk: number[] = [];
  private readonly newestFailed: number[] = [];
  private pairOrigin: Int32Array;
  private pairCounts: Uint32Array;
  private pairs = 0;
  /** Per origin: the pair of the IP being folded, or -1. */
  private slot = new Int32Array(256).fill(-1);
  /** Origins keyed by id (unnamedOrigin) in the fold. */
  private unnamed = 0;
  /** Origins added since names were last settled (settleNames). */
  private unsettled: number[] = [];
  /** Per originId, the first name folded under it (filled once unnamed origins appear). */
  private readonly nameOfId = new Map<string, string>();
  /** Rows with connect failures (counted as on time) that are a backlog if their IP returned from a silence. */
  private readonly pendingRows: Array<{
    ip: number;
    receivedAt: number;
    observedAt: number;
    from: number;
    to: number;
  }> = [];
  private readonly pendingOrigin: number[] = [];
  private readonly pendingFailed: number[] = [];
  private order: Int32Array | undefined;
  // The row being folded.
  private rowLate = false;
  private rowMaybeLate = false;
  private rowOk = 0;
  private rowFailed = 0;

  /**
   * `pairsHint`: how many pairs the fold will likely hold (e.g. the last
   * minute's `pairCount`). The arena starts that big instead of doubling up
   * to it: at 10,000 IPs the doublings cost ~30 ms and garbage-collection
   * work for the copies they drop.
   */
  constructor(options: { graceMs: number; pairsHint?: number }) {
    this.graceMs = options.graceMs;
    let length = 1024;
    while (length < (options.pairsHint ?? 0)) length *= 2;
    this.pairOrigin = new Int32Array(length);
    this.pairCounts = new Uint32Array(length * 4);
  }

  /** (IP, origin) pairs folded: the size of the fold's arena in use. */
  get pairCount(): number {
    return this.pairs;
  }

  static of(rows: Iterable<MinuteTally>, options: { graceMs: number }) {
    const tally = new WindowTally(options);
    for (const row of rows) tally.add(row);
    return tally;
  }

  private readonly visit: OriginVisitor = (origin, c) => {
    let o = this.originIndex.get(origin);
    if (o === undefined) {
      o = this.origins.length;
      this.origins.push(origin);
      this.originIndex.set(origin, o);
      this.unsettled.push(o);
      if (idOfUnnamed(origin) !== undefined) this.unnamed++;
      if (o >= this.slot.length) {
        const slot = new Int32Array(this.slot.length * 2).fill(-1);
        slot.set(this.slot);
        this.slot = slot;
      }
    }
    let p = this.slot[o] as number;
    if (p < 0) {
      p = this.pairs++;
      if (this.pairs > this.pairOrigin.length) this.room(this.pairs);
      this.pairOrigin[p] = o;
      this.slot[o] = p;
    }
    const ok = (c[ENTRY_OK] as number) + (c[PROBE_OK] as number);
    const failed =
      (c[ENTRY_CONNECT_FAILED] as number) + (c[PROBE_CONNECT_FAILED] as number);
    const counts = this.pairCounts;
    const at = p * 4;
    counts[at + PAIR_OK] = (counts[at + PAIR_OK] as number) + ok;
    counts[at + PAIR_ORIGIN_ERROR] =
      (counts[at + PAIR_ORIGIN_ERROR] as number) +
      (c[ENTRY_ORIGIN_ERROR] as number) +
      (c[PROBE_ORIGIN_ERROR] as number);
    counts[at + PAIR_ERROR] =
      (counts[at + PAIR_ERROR] as number) +
      (c[ENTRY_ERROR] as number) +
      (c[PROBE_ERROR] as number);
    this.rowOk += ok;
    if (failed > 0) {
      this.rowFailed += failed;
      if (!this.rowLate)
        counts[at + PAIR_FAILED] =
          (counts[at + PAIR_FAILED] as number) + failed;
      if (this.rowMaybeLate) {
        this.pendingOrigin.push(o);
        this.pendingFailed.push(failed);
      }
    }
  };

  /** Room for at least `pairs` pairs (the arena doubles). */
  private room(pairs: number): void {
    let length = this.pairOrigin.length * 2;
    while (length < pairs) length *= 2;
    const origins = new Int32Array(length);
    origins.set(this.pairOrigin);
    this.pairOrigin = origins;
    const counts = new Uint32Array(length * 4);
    counts.set(this.pairCounts);
    this.pairCounts = counts;
  }

  /** Folds one row in. */
  add(row: MinuteTally): void {
    this.rows++;
    this.order = undefined;
    let ip = this.ipIndex.get(row.ip);
    if (ip === undefined) {
      ip = this.ips.length;
      this.ips.push(row.ip);
      this.ipIndex.set(row.ip, ip);
      this.start.push(this.pairs);
      this.size.push(0);
      this.late.push(0);
      this.failing.push(false);
      this.newestAt.push(Number.NaN);
      this.newestOk.push(0);
      this.newestFailed.push(0);
    }
    // The IP's pairs move to the end of the arena, where the row's new origins are added.
    const size = this.size[ip] as number;
    let start = this.start[ip] as number;
    if (size === 0) start = this.pairs;
    else if (start + size !== this.pairs) {
      const to = this.pairs;
      if (to + size > this.pairOrigin.length) this.room(to + size);
      this.pairOrigin.copyWithin(to, start, start + size);
      this.pairCounts.copyWithin(to * 4, start * 4, (start + size) * 4);
      start = to;
      this.pairs = to + size;
    }
    this.start[ip] = start;
    for (let p = start; p < this.pairs; p++)
      this.slot[this.pairOrigin[p] as number] = p;

    const timed = row.receivedAt !== undefined && row.observedAt !== undefined;
    this.rowLate =
      timed &&
      (row.receivedAt as number) - (row.observedAt as number) > this.graceMs;
    this.rowMaybeLate = timed && !this.rowLate;
    this.rowOk = 0;
    this.rowFailed = 0;
    const pendingFrom = this.pendingOrigin.length;
    visitOrigins(row, this.visit);

    for (let p = start; p < this.pairs; p++)
      this.slot[this.pairOrigin[p] as number] = -1;
    this.size[ip] = this.pairs - start;
    if (this.rowFailed > 0) {
      if (!this.failing[ip]) this.failingOrder.push(ip);
      this.failing[ip] = true;
      if (this.rowLate)
        this.late[ip] = (this.late[ip] as number) + this.rowFailed;
    }
    if (this.pendingOrigin.length > pendingFrom)
      this.pendingRows.push({
        ip,
        receivedAt: row.receivedAt as number,
        observedAt: row.observedAt as number,
        from: pendingFrom,
        to: this.pendingOrigin.length,
      });
    if (row.observedAt !== undefined) {
      const newest = this.newestAt[ip] as number;
      if (Number.isNaN(newest) || row.observedAt > newest) {
        this.newestAt[ip] = row.observedAt;
        this.newestOk[ip] = this.rowOk;
        this.newestFailed[ip] = this.rowFailed;
      } else if (row.observedAt === newest) {
        this.newestOk[ip] = (this.newestOk[ip] as number) + this.rowOk;
        this.newestFailed[ip] =
          (this.newestFailed[ip] as number) + this.rowFailed;
      }
    }
  }

  /**
   * One origin, one key: rows folded before a later row named an origin keyed
   * it by id (unnamedOrigin), as a reader that had not met the name yet
   * decodes it; such a key and the name are merged into one origin, at the
   * place the first of them holds, with one pair per IP, so the fold is the
   * one of the same rows folded with every name known. Runs before anything
   * reads the fold's origins; costs nothing until an origin keyed by id
   * meets its name.
   */
  private settleNames(): void {
    if (!this.unnamed || !this.unsettled.length) return;
    const added = this.unsettled;
    this.unsettled = [];
    /** Per origin merged away, the origin it merges into (always an earlier one). */
    const mergedInto = new Map<number, number>();
    const merge = (unnamed: number, named: number) => {
      const [into, away] =
        unnamed < named ? [unnamed, named] : [named, unnamed];
      this.origins[into] = this.origins[named] as string;
      mergedInto.set(away, into);
      this.unnamed--;
    };
    for (const o of added) {
      if (mergedInto.has(o)) continue;
      const origin = this.origins[o] as string;
      const id = idOfUnnamed(origin);
      if (id === undefined) {
        const ofName = originId(origin);
        if (this.nameOfId.has(ofName)) continue;
        this.nameOfId.set(ofName, origin);
        const unnamed = this.originIndex.get(unnamedOrigin(ofName));
        if (unnamed !== undefined) merge(unnamed, o);
      } else {
        const name = this.nameOfId.get(id);
        const named =
          name === undefined ? undefined : this.originIndex.get(name);
        if (named !== undefined) merge(o, named);
      }
    }
    if (mergedInto.size) this.mergeOrigins(mergedInto);
  }

  /** Renumbers the origins without the ones merged away, and merges each IP's pairs of one origin. */
  private mergeOrigins(mergedInto: ReadonlyMap<number, number>): void {
    const renumbered = new Int32Array(this.origins.length);
    const kept: string[] = [];
    this.origins.forEach((origin, o) => {
      if (mergedInto.has(o)) return;
      renumbered[o] = kept.length;
      kept.push(origin);
    });
    for (const [away, into] of mergedInto)
      renumbered[away] = renumbered[into] as number;
    this.origins.length = 0;
    this.originIndex.clear();
    for (const origin of kept) {
      this.originIndex.set(origin, this.origins.length);
      this.origins.push(origin);
    }
    for (let p = 0; p < this.pairs; p++)
      this.pairOrigin[p] = renumbered[this.pairOrigin[p] as number] as number;
    for (let i = 0; i < this.pendingOrigin.length; i++)
      this.pendingOrigin[i] = renumbered[
        this.pendingOrigin[i] as number
      ] as number;
    // An IP that reported the origin under both keys keeps its first pair, with both counts.
    const counts = this.pairCounts;
    for (let ip = 0; ip < this.ips.length; ip++) {
      const start = this.start[ip] as number;
      const end = start + (this.size[ip] as number);
      let to = start;
      for (let p = start; p < end; p++) {
        const o = this.pairOrigin[p] as number;
        const first = this.slot[o] as number;
        if (first >= 0) {
          for (let c = 0; c < 4; c++)
            counts[first * 4 + c] =
              (counts[first * 4 + c] as number) + (counts[p * 4 + c] as number);
          continue;
        }
        this.slot[o] = to;
        if (to !== p) {
          this.pairOrigin[to] = o;
          counts.copyWithin(to * 4, p * 4, p * 4 + 4);
        }
        to++;
      }
      for (let p = start; p < to; p++)
        this.slot[this.pairOrigin[p] as number] = -1;
      this.size[ip] = to - start;
    }
  }

  get ipCount(): number {
    return this.ips.length;
  }

  /** Whether `ip` has a row in the fold. */
  has(ip: string): boolean {
    return this.ipIndex.has(ip);
  }

  indexOfIp(ip: string): number | undefined {
    return this.ipIndex.get(ip);
  }

  indexOfOrigin(origin: string): number | undefined {
    this.settleNames();
    return this.originIndex.get(origin);
  }

  /** IPs with a connect failure in any of their rows (late ones too), in the order they began failing. */
  failingIps(): string[] {
    return this.failingIpsFrom(0);
  }

  /** How many IPs failingIps() holds. */
  get failingCount(): number {
    return this.failingOrder.length;
  }

  /**
   * The failing IPs from the `from`th on, in the order their first failure
   * was folded: a reader of a fold in progress passes the failingCount it
   * saw last and gets the IPs that began failing since.
   */
  failingIpsFrom(from: number): string[] {
    return this.failingOrder.slice(from).map((ip) => this.ips[ip] as string);
  }

  /** The IP's newest report (by heartbeat time): its time, ok and connect_failed; undefined without times. */
  newestOf(ip: number): ReportCounts | undefined {
    const at = this.newestAt[ip];
    if (at === undefined || Number.isNaN(at)) return undefined;
    return {
      observedAt: at,
      ok: this.newestOk[ip] as number,
      connectFailed: this.newestFailed[ip] as number,
    };
  }

  /** IP indices in IP order (byIpOrder), computed once per fold. */
  ipOrder(): Int32Array {
    if (!this.order) {
      // The default sort compares strings as `<` does, without calling a
      // comparator: 2–4× faster than sorting the indices with one.
      const sorted = [...this.ips].sort();
      const order = new Int32Array(sorted.length);
      for (let i = 0; i < sorted.length; i++)
        order[i] = this.ipIndex.get(sorted[i] as string) as number;
      this.order = order;
    }
    return this.order;
  }

  /**
   * Runs `work` over the fold with the connect failures of the rows that
   * might be a backlog counted as `returnedAt` (per IP, its return from a
   * silence; core/leases.ts) says: a row delivered since the return with
   * heartbeats observed before it counts as late. `late(ip)` answers the IP's
   * late connect failures. The fold is left as it was.
   */
  withReturns<T>(
    returnedAt: (ip: string) => number | undefined,
    work: (view: WindowTallyView, late: (ip: number) => number) => T,
  ): T {
    this.settleNames();
    const extraLate = new Map<number, number>();
    // Pairs and counts taken out for the work, put back after it.
    const takenPair: number[] = [];
    const takenFailed: number[] = [];
    const counts = this.pairCounts;
    for (const row of this.pendingRows) {
      const back = returnedAt(this.ips[row.ip] as string);
      if (back === undefined || row.receivedAt < back || row.observedAt >= back)
        continue;
      const start = this.start[row.ip] as number;
      const end = start + (this.size[row.ip] as number);
      let failed = 0;
      for (let i = row.from; i < row.to; i++) {
        const origin = this.pendingOrigin[i] as number;
        const value = this.pendingFailed[i] as number;
        failed += value;
        for (let p = start; p < end; p++) {
          if (this.pairOrigin[p] !== origin) continue;
          counts[p * 4 + PAIR_FAILED] =
            (counts[p * 4 + PAIR_FAILED] as number) - value;
          takenPair.push(p);
          takenFailed.push(value);
          break;
        }
      }
      extraLate.set(row.ip, (extraLate.get(row.ip) ?? 0) + failed);
    }
    try {
      return work(
        {
          ips: this.ips,
          origins: this.origins,
          start: this.start,
          size: this.size,
          pairOrigin: this.pairOrigin,
          pairCounts: counts,
        },
        (ip) => (this.late[ip] as number) + (extraLate.get(ip) ?? 0),
      );
    } finally {
      for (let i = 0; i < takenPair.length; i++) {
        const at = (takenPair[i] as number) * 4 + PAIR_FAILED;
        counts[at] = (counts[at] as number) + (takenFailed[i] as number);
      }
    }
  }
}

let sumOk = 0;
let sumFailed = 0;
const sumVisit: OriginVisitor = (_, c) => {
  sumOk += (c[ENTRY_OK] as number) + (c[PROBE_OK] as number);
  sumFailed +=
    (c[ENTRY_CONNECT_FAILED] as number) + (c[PROBE_CONNECT_FAILED] as number);
};
/** A row's ok and connect_failed over all its origins, relays and probes. */
export function okAndFailedOf(row: MinuteTally): [number, number] {
  sumOk = 0;
  sumFailed = 0;
  visitOrigins(row, sumVisit);
  return [sumOk, sumFailed];
}

/** An IP's newest report: when it was observed, and its ok and connect_failed then (over every row observed at that time). */
export type ReportCounts = {
  observedAt: number;
  ok: number;
  connectFailed: number;
};

/**
 * Each IP's newest report among rows added one by one (rows without a
 * heartbeat time left out): what a closing decision made late needs of the
 * rows newer than its window (a newer healthy report vetoes a ban), held
 * without the rows. The order rows are added in does not matter.
 */
export class NewestReports {
  private readonly byIp = new Map<string, ReportCounts>();

  static of(rows: Iterable<MinuteTally>): NewestReports {
    const newest = new NewestReports();
    for (const row of rows) newest.add(row);
    return newest;
  }

  add(row: MinuteTally): void {
    if (row.observedAt === undefined) return;
    const current = this.byIp.get(row.ip);
    if (current && current.observedAt > row.observedAt) return;
    const [ok, connectFailed] = okAndFailedOf(row);
    this.keep(row.ip, { observedAt: row.observedAt, ok, connectFailed });
  }

  /** Keeps `report` as the IP's newest unless an older one; one of the same time adds to it. */
  private keep(ip: string, report: ReportCounts): void {
    const current = this.byIp.get(ip);
    if (current && current.observedAt > report.observedAt) return;
    if (current && current.observedAt === report.observedAt) {
      current.ok += report.ok;
      current.connectFailed += report.connectFailed;
    } else this.byIp.set(ip, { ...report });
  }

  get(ip: string): ReportCounts | undefined {
    return this.byIp.get(ip);
  }

  /** The newest reports of all of `parts` together, as if their rows were added to one. */
  static merged(parts: Iterable<NewestReports>): NewestReports {
    const newest = new NewestReports();
    for (const part of parts)
      for (const [ip, report] of part.byIp) newest.keep(ip, report);
    return newest;
  }
}
