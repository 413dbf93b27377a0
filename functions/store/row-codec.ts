import type { HeartbeatKind } from '../core/heartbeat.js';
import type {
  OriginTally,
  OriginVisitor,
  StatusCounts,
} from '../core/tally.js';
import { originId, UNKNOWN_ORIGIN, unnamedOrigin } from '../core/tally.js';

/**
 * The packed per-origin counts of a heartbeat row (format v2), one binary
 * attribute instead of a list of maps (v1: ~57 B per origin and kind, so a
 * report of 100 relays with their origin probes cost 3–12 write units).
 *
 *   varint entries, then per entry (one per origin, relay and probe together):
 *     6 bytes   originId(name)
 *     1 byte    which of the 8 counts are non-zero: bits 0–3 relay ok,
 *               connect_failed, origin_error, error; bits 4–7 the same for probes
 *     1 byte    which of those are above 1
 *     varint    count - 2, for each count above 1, in bit order
 *   varint names, then per name: varint entry index, varint bytes, UTF-8
 *
 * A healthy origin with its relay and its probe is 8 bytes. Names travel only
 * for origins where something failed (events name them) and for the unknown
 * origin; readers name the others from an OriginNameBook that learned every
 * name it saw, and key the rest by id (core unnamedOrigin).
 */

const STATUS_ORDER = ['ok', 'connect_failed', 'origin_error', 'error'] as const;
const ID_BYTES = 6;

export class RowFormatError extends Error {
  override name = 'RowFormatError';
}

type Entry = { id: string; name: string; counts: number[] };

function entriesOf(origins: readonly OriginTally[]): Entry[] {
  const byName = new Map<string, Entry>();
  for (const { origin, kind, counts } of origins) {
    let entry = byName.get(origin);
    if (!entry) {
      entry = {
        id: originId(origin),
        name: origin,
        counts: [0, 0, 0, 0, 0, 0, 0, 0],
      };
      byName.set(origin, entry);
    }
    const base = kind === 'probe' ? 4 : 0;
    STATUS_ORDER.forEach((status, i) => {
      (entry as Entry).counts[base + i] =
        ((entry as Entry).counts[base + i] ?? 0) + counts[status];
    });
  }
  return [...byName.values()];
}

const needsName = (entry: Entry) =>
  entry.name === UNKNOWN_ORIGIN ||
  entry.counts.some((count, i) => i % 4 !== 0 && count > 0);

class Writer {
  private bytes: number[] = [];
  varint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.bytes.push((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.bytes.push(rest);
  }
  byte(value: number): void {
    this.bytes.push(value & 0xff);
  }
  raw(values: Iterable<number>): void {
    for (const value of values) this.bytes.push(value);
  }
  get length(): number {
    return this.bytes.length;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

class Reader {
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {}
  byte(): number {
    const value = this.bytes[this.at++];
    if (value === undefined) throw new RowFormatError('row data ends early');
    return value;
  }
  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
    throw new RowFormatError('varint too long');
  }
  /** `bytes` bytes as one unsigned big-endian number (up to 6, exact in a double). */
  uint(bytes: number): number {
    let value = 0;
    for (let i = 0; i < bytes; i++) value = value * 256 + this.byte();
    return value;
  }
  skip(length: number): void {
    if (this.at + length > this.bytes.length)
      throw new RowFormatError('row data ends early');
    this.at += length;
  }
  take(length: number): Uint8Array {
    if (this.at + length > this.bytes.length)
      throw new RowFormatError('row data ends early');
    const slice = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return slice;
  }
  get ended(): boolean {
    return this.at === this.bytes.length;
  }
}

/**
 * One string per origin id, shared by every decoded entry: a minute of
 * 100,000 machines holds millions of entries but only thousands of origins.
 * Bounded: cleared when it holds INTERNED_MAX ids.
 */
const INTERNED_MAX = 1_000_000;
const interned = new Map<number, string>();
function placeholderOf(id: number): string {
  let text = interned.get(id);
  if (text === undefined) {
    if (interned.size >= INTERNED_MAX) interned.clear();
    text = unnamedOrigin(id.toString(16).padStart(ID_BYTES * 2, '0'));
    interned.set(id, text);
  }
  return text;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function encodeEntries(entries: readonly Entry[]): Uint8Array {
  const out = new Writer();
  out.varint(entries.length);
  const named: Array<[number, Uint8Array]> = [];
  entries.forEach((entry, index) => {
    for (let i = 0; i < ID_BYTES; i++)
      out.byte(Number.parseInt(entry.id.slice(i * 2, i * 2 + 2), 16));
    let nonZero = 0;
    let big = 0;
    entry.counts.forEach((count, i) => {
      if (count > 0) nonZero |= 1 << i;
      if (count > 1) big |= 1 << i;
    });
    out.byte(nonZero);
    out.byte(big);
    for (const count of entry.counts) if (count > 1) out.varint(count - 2);
    if (needsName(entry)) named.push([index, encoder.encode(entry.name)]);
  });
  out.varint(named.length);
  for (const [index, name] of named) {
    out.varint(index);
    out.varint(name.length);
    out.raw(name);
  }
  return out.done();
}

/** Rough encoded size of one entry, to cut a tally into parts that fit an item. */
const entryBytes = (entry: Entry) =>
  ID_BYTES + 2 + 8 * 3 + (needsName(entry) ? 6 + entry.name.length * 3 : 0);

/**
 * Packs one tally's origins into one or more blobs of at most `maxBytes`
 * (a request may name 500 origins of up to 1 KB; DynamoDB items stop at 400 KB).
 */
export function encodeOrigins(
  origins: readonly OriginTally[],
  maxBytes: number,
): Uint8Array[] {
  const parts: Entry[][] = [[]];
  let bytes = 0;
  for (const entry of entriesOf(origins)) {
    const size = entryBytes(entry);
    const part = parts[parts.length - 1] as Entry[];
    if (part.length > 0 && bytes + size > maxBytes) {
      parts.push([entry]);
      bytes = size;
    } else {
      part.push(entry);
      bytes += size;
    }
  }
  return parts.map(encodeEntries);
}

/**
 * Every origin of a report named somewhere, by id: rows name an origin only
 * where it failed, and one origin must have one key across IPs and minutes.
 * Bounded: forgets everything once it holds `maxNames`.
 */
export class OriginNameBook {
  private readonly names = new Map<number, string>();
  constructor(private readonly maxNames = 1_000_000) {}
  private set(id: number, name: string): void {
    if (this.names.has(id)) return;
    if (this.names.size >= this.maxNames) this.names.clear();
    this.names.set(id, name);
  }
  learn(name: string): void {
    this.set(Number.parseInt(originId(name), 16), name);
  }
  /** Learns the names packed in `data`, checking the whole blob on the way. */
  learnFrom(data: Uint8Array): void {
    for (const [id, name] of namesIn(data)) this.set(id, name);
  }
  nameOf(id: number): string | undefined {
    return this.names.get(id);
  }
}

/** Skips a blob's entries and answers its named ones; throws RowFormatError on a damaged blob. */
function namesIn(data: Uint8Array): Array<[number, string]> {
  const input = new Reader(data);
  const count = input.varint();
  for (let e = 0; e < count; e++) {
    input.skip(ID_BYTES + 1);
    const big = input.byte();
    for (let i = 0; i < 8; i++) if (big & (1 << i)) input.varint();
  }
  const total = input.varint();
  if (total === 0) {
    if (!input.ended) throw new RowFormatError('trailing bytes after row data');
    return [];
  }
  // Names are rare (failed origins, the unknown one): read the ids only then.
  const ids: number[] = [];
  const again = new Reader(data);
  again.varint();
  for (let e = 0; e < count; e++) {
    ids.push(again.uint(ID_BYTES));
    again.byte();
    const big = again.byte();
    for (let i = 0; i < 8; i++) if (big & (1 << i)) again.varint();
  }
  const named: Array<[number, string]> = [];
  for (let n = 0; n < total; n++) {
    const id = ids[input.varint()];
    if (id === undefined)
      throw new RowFormatError('name of an entry that does not exist');
    named.push([id, decoder.decode(input.take(input.varint()))]);
  }
  if (!input.ended) throw new RowFormatError('trailing bytes after row data');
  return named;
}

/**
 * The origin tallies packed in `data`; an origin the blob does not name gets
 * its name from `book`, else its id. Throws RowFormatError on a damaged blob.
 */
export function decodeOrigins(
  data: Uint8Array,
  book?: OriginNameBook,
): OriginTally[] {
  const input = new Reader(data);
  const count = input.varint();
  const entries: Array<{ id: number; counts: number[] }> = [];
  for (let e = 0; e < count; e++) {
    const id = input.uint(ID_BYTES);
    const nonZero = input.byte();
    const big = input.byte();
    const counts: number[] = [];
    for (let i = 0; i < 8; i++) {
      const bit = 1 << i;
      counts.push(big & bit ? input.varint() + 2 : nonZero & bit ? 1 : 0);
    }
    entries.push({ id, counts });
  }
  const names = new Map<number, string>();
  const named = input.varint();
  for (let n = 0; n < named; n++) {
    const index = input.varint();
    const length = input.varint();
    names.set(index, decoder.decode(input.take(length)));
  }
  if (!input.ended) throw new RowFormatError('trailing bytes after row data');
  const tallies: OriginTally[] = [];
  entries.forEach(({ id, counts }, index) => {
    const origin = names.get(index) ?? book?.nameOf(id) ?? placeholderOf(id);
    for (const [kind, base] of [
      ['relay', 0],
      ['probe', 4],
    ] as Array<[HeartbeatKind, number]>) {
      const slice = counts.slice(base, base + 4);
      if (slice.every((c) => c === 0)) continue;
      const statusCounts: StatusCounts = {
        ok: slice[0] ?? 0,
        connect_failed: slice[1] ?? 0,
        origin_error: slice[2] ?? 0,
        error: slice[3] ?? 0,
      };
      tallies.push({ origin, kind, counts: statusCounts });
    }
  });
  return tallies;
}

/**
 * Whether any entry packed in `data` has a count, reading entries only up
 * to the first that has one (usually the first): decodeOrigins(data) would
 * yield at least one tally. Throws RowFormatError on a blob that ends early.
 */
export function anyCount(data: Uint8Array): boolean {
  const input = new Reader(data);
  const count = input.varint();
  for (let e = 0; e < count; e++) {
    input.skip(ID_BYTES);
    const nonZero = input.byte();
    const big = input.byte();
    if ((nonZero | big) !== 0) return true;
  }
  return false;
}

/** Scratch of visitOrigins: ids and the 8 counts of each entry. */
let scratchIds = new Float64Array(512);
let scratchCounts = new Float64Array(512 * 8);
const entryScratch = new Float64Array(8);

/**
 * Visits the origins packed in `data` as decodeOrigins names them, relay and
 * probe counts of an origin together (EntryCounts), allocating nothing per
 * entry: how the aggregator folds a minute of the whole fleet. An entry with
 * no count is skipped (decodeOrigins yields nothing for it). Throws
 * RowFormatError on a damaged blob.
 */
export function visitOrigins(
  data: Uint8Array,
  book: OriginNameBook | undefined,
  visit: OriginVisitor,
): void {
  const input = new Reader(data);
  const count = input.varint();
  if (count > scratchIds.length) {
    scratchIds = new Float64Array(count);
    scratchCounts = new Float64Array(count * 8);
  }
  const ids = scratchIds;
  const counts = scratchCounts;
  for (let e = 0; e < count; e++) {
    ids[e] = input.uint(ID_BYTES);
    const nonZero = input.byte();
    const big = input.byte();
    for (let i = 0; i < 8; i++) {
      const bit = 1 << i;
      counts[e * 8 + i] =
        big & bit ? input.varint() + 2 : nonZero & bit ? 1 : 0;
    }
  }
  const named = input.varint();
  let names: Map<number, string> | undefined;
  for (let n = 0; n < named; n++) {
    const index = input.varint();
    const length = input.varint();
    names ??= new Map();
    names.set(index, decoder.decode(input.take(length)));
  }
  if (!input.ended) throw new RowFormatError('trailing bytes after row data');
  for (let e = 0; e < count; e++) {
    const entry = entryScratch;
    let any = false;
    for (let i = 0; i < 8; i++) {
      const value = counts[e * 8 + i] as number;
      entry[i] = value;
      if (value !== 0) any = true;
    }
    if (!any) continue;
    const id = ids[e] as number;
    visit(names?.get(e) ?? book?.nameOf(id) ?? placeholderOf(id), entry);
  }
}
