import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OriginTally } from '../../../../functions/core/tally.js';
import {
  originId,
  UNKNOWN_ORIGIN,
  unnamedOrigin,
} from '../../../../functions/core/tally.js';
import {
  anyCount,
  decodeOrigins,
  encodeOrigins,
  OriginNameBook,
  RowFormatError,
} from '../../../../functions/store/row-codec.js';

const counts = (
  ok: number,
  connect_failed = 0,
  origin_error = 0,
  error = 0,
) => ({ ok, connect_failed, origin_error, error });
const key = (t: OriginTally) => `${t.kind} ${t.origin}`;
const sorted = (tallies: OriginTally[]) =>
  [...tallies].sort((a, b) => (key(a) < key(b) ? -1 : 1));

/** A periodic report of 100 relays over 100 origin hosts, their origin probes and 3 canaries. */
function periodicReport(failing = 0): OriginTally[] {
  const origins: OriginTally[] = [];
  for (let i = 0; i < 100; i++) {
    const origin = `rtmp://live-${i}.customer-${i * 7}.example.com:1935`;
    const failed = i < failing;
    origins.push({
      origin,
      kind: 'relay',
      counts: failed ? counts(0, 1) : counts(1),
    });
    origins.push({
      origin,
      kind: 'probe',
      counts: failed ? counts(0, 1) : counts(1),
    });
  }
  for (const canary of [
    'tcp://canary-a.example.org:443',
    'tcp://canary-b.example.org:443',
    'tcp://canary-c.example.org:443',
  ]) {
    origins.push({ origin: canary, kind: 'probe', counts: counts(1) });
  }
  return origins;
}

describe('row codec (format v2)', () => {
  it('packs a healthy periodic report of 100 origins with probes into under 1 KB', () => {
    const [blob, ...more] = encodeOrigins(periodicReport(), 300_000);
    expect(more).toEqual([]);
    expect(blob?.length).toBeLessThan(1000);
  });

  it('names failing origins and keys healthy ones by id', () => {
    const [blob] = encodeOrigins(periodicReport(2), 300_000);
    const decoded = decodeOrigins(blob as Uint8Array);
    expect(decoded).toHaveLength(203);
    const failing = decoded.filter((t) => t.counts.connect_failed > 0);
    expect(failing.map((t) => t.origin)).toEqual([
      'rtmp://live-0.customer-0.example.com:1935',
      'rtmp://live-0.customer-0.example.com:1935',
      'rtmp://live-1.customer-7.example.com:1935',
      'rtmp://live-1.customer-7.example.com:1935',
    ]);
    const healthy = decoded.find(
      (t) => t.kind === 'relay' && t.counts.ok === 1,
    );
    expect(healthy?.origin).toBe(
      unnamedOrigin(originId('rtmp://live-2.customer-14.example.com:1935')),
    );
  });

  it('always names the unknown origin, which the policy treats apart', () => {
    const [blob] = encodeOrigins(
      [{ origin: UNKNOWN_ORIGIN, kind: 'relay', counts: counts(5) }],
      1000,
    );
    expect(decodeOrigins(blob as Uint8Array)).toEqual([
      { origin: UNKNOWN_ORIGIN, kind: 'relay', counts: counts(5) },
    ]);
  });

  it('round-trips any tally once names are unified', () => {
    const tally = fc.uniqueArray(
      fc.record({
        origin: fc.oneof(
          fc.constant(UNKNOWN_ORIGIN),
          fc.webUrl().map((u) => u.toLowerCase()),
          fc.string({ maxLength: 40 }).map((s) => s.toLowerCase()),
        ),
        kind: fc.constantFrom('relay' as const, 'probe' as const),
        counts: fc.record({
          ok: fc.nat({ max: 100_000 }),
          connect_failed: fc.nat({ max: 500 }),
          origin_error: fc.nat({ max: 3 }),
          error: fc.nat({ max: 300 }),
        }),
      }),
      { selector: (t) => `${t.kind} ${t.origin}`, maxLength: 60 },
    );
    fc.assert(
      fc.property(
        tally,
        fc.integer({ min: 50, max: 5000 }),
        (origins, maxBytes) => {
          const nonEmpty = origins.filter(
            (t) =>
              t.counts.ok +
                t.counts.connect_failed +
                t.counts.origin_error +
                t.counts.error >
              0,
          );
          const parts = encodeOrigins(nonEmpty, maxBytes);
          // Healthy origins come back by id; a book that knows the names resolves them.
          const book = new OriginNameBook();
          for (const t of nonEmpty) book.learn(t.origin);
          expect(
            sorted(parts.flatMap((blob) => decodeOrigins(blob, book))),
          ).toEqual(sorted(nonEmpty));
        },
      ),
    );
  });

  it('tells whether a blob has any count as decoding it would', () => {
    const tally = fc.array(
      fc.record({
        origin: fc.webUrl().map((u) => u.toLowerCase()),
        kind: fc.constantFrom('relay' as const, 'probe' as const),
        counts: fc.record({
          ok: fc.nat({ max: 3 }),
          connect_failed: fc.nat({ max: 3 }),
          origin_error: fc.nat({ max: 1 }),
          error: fc.nat({ max: 1 }),
        }),
      }),
      { maxLength: 20 },
    );
    fc.assert(
      fc.property(tally, (origins) => {
        for (const blob of encodeOrigins(origins, 300_000))
          expect(anyCount(blob)).toBe(decodeOrigins(blob).length > 0);
      }),
    );
  });

  it('cuts a tally with many long failing names into parts under the bound', () => {
    const origins = Array.from(
      { length: 500 },
      (_, i): OriginTally => ({
        origin: `rtmp://${'x'.repeat(1000)}-${i}`,
        kind: 'relay',
        counts: counts(0, 1),
      }),
    );
    const parts = encodeOrigins(origins, 300_000);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(300_000);
    expect(parts.flatMap((p) => decodeOrigins(p))).toHaveLength(500);
  });

  it('refuses a damaged blob with a RowFormatError', () => {
    const [blob] = encodeOrigins(periodicReport(1), 300_000);
    expect(() => decodeOrigins((blob as Uint8Array).subarray(0, 50))).toThrow(
      RowFormatError,
    );
    expect(() =>
      decodeOrigins(Uint8Array.from([...(blob as Uint8Array), 0])),
    ).toThrow(RowFormatError);
  });
});

describe('OriginNameBook', () => {
  it('gives an origin one name across rows when only a failing IP named it', () => {
    const name = 'rtmp://origin-a.example.net';
    const [healthy] = encodeOrigins(
      [{ origin: name, kind: 'relay', counts: counts(3) }],
      1000,
    );
    const [failing] = encodeOrigins(
      [{ origin: name, kind: 'relay', counts: counts(0, 3) }],
      1000,
    );
    const book = new OriginNameBook();
    book.learnFrom(healthy as Uint8Array);
    book.learnFrom(failing as Uint8Array);
    expect(decodeOrigins(healthy as Uint8Array, book)[0]?.origin).toBe(name);
  });

  it('leaves an origin nobody named keyed by its id', () => {
    const [blob] = encodeOrigins(
      [
        {
          origin: 'rtmp://quiet.example.net',
          kind: 'relay',
          counts: counts(3),
        },
      ],
      1000,
    );
    const book = new OriginNameBook();
    book.learnFrom(blob as Uint8Array);
    expect(decodeOrigins(blob as Uint8Array, book)[0]?.origin).toBe(
      unnamedOrigin(originId('rtmp://quiet.example.net')),
    );
  });

  it('stays bounded: forgets once it holds its maximum', () => {
    const book = new OriginNameBook(10);
    for (let i = 0; i < 11; i++) book.learn(`rtmp://origin-${i}.example.net`);
    expect(
      book.nameOf(Number.parseInt(originId('rtmp://origin-0.example.net'), 16)),
    ).toBeUndefined();
    expect(
      book.nameOf(
        Number.parseInt(originId('rtmp://origin-10.example.net'), 16),
      ),
    ).toBe('rtmp://origin-10.example.net');
  });

  it('refuses a damaged blob while learning', () => {
    const [blob] = encodeOrigins(
      [{ origin: 'rtmp://a.example.net', kind: 'relay', counts: counts(0, 2) }],
      1000,
    );
    expect(() =>
      new OriginNameBook().learnFrom((blob as Uint8Array).subarray(0, 9)),
    ).toThrow(RowFormatError);
  });

  it('keeps ids of distinct origins apart over a large pool', () => {
    const ids = new Set(
      Array.from({ length: 200_000 }, (_, i) =>
        originId(`rtmp://origin-${i}.example.net`),
      ),
    );
    expect(ids.size).toBe(200_000);
  });
});
