import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp } from '#contract/ip';
import {
  HEARTBEAT_LIMITS,
  parseHeartbeatBody,
} from '../../../../functions/core/heartbeat.js';

/** Pure: no server. parseHeartbeatBody is the first code any request body reaches. */

const NOW = Date.parse('2026-11-24T14:03:27Z');

const validHeartbeat = fc.record(
  {
    ip: fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.ipV4().map((ip) => `::ffff:${ip}`),
    ),
    process: fc.string({
      minLength: 1,
      maxLength: HEARTBEAT_LIMITS.maxProcessLength,
      unit: 'binary',
    }),
    status: fc.constantFrom('ok', 'connect_failed', 'origin_error', 'error'),
    kind: fc.constantFrom('relay', 'probe'),
    origin: fc.string({ minLength: 1, maxLength: 200 }),
    ts: fc.integer({ min: 1, max: NOW + HEARTBEAT_LIMITS.maxFutureSkewMs }),
    detail: fc.string({ maxLength: HEARTBEAT_LIMITS.maxDetailLength }),
  },
  { requiredKeys: ['ip', 'process', 'status'] },
);

/** Anything JSON.parse could hand over, plus heartbeat-shaped objects with arbitrary field values. */
const anyBody = fc.oneof(
  fc.jsonValue(),
  fc.anything({
    withNullPrototype: true,
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withSparseArray: true,
  }),
  fc.record({ heartbeats: fc.anything() }, { requiredKeys: [] }),
  fc.record({
    heartbeats: fc.array(
      fc.dictionary(
        fc.constantFrom(
          'ip',
          'process',
          'status',
          'kind',
          'origin',
          'ts',
          'detail',
        ),
        fc.anything(),
      ),
    ),
    batchId: fc.anything(),
  }),
  fc.dictionary(
    fc.constantFrom(
      'ip',
      'process',
      'status',
      'kind',
      'origin',
      'ts',
      'detail',
      'heartbeats',
      '__proto__',
      'constructor',
    ),
    fc.anything(),
  ),
);

describe('parseHeartbeatBody on arbitrary input', () => {
  it('never throws, and answers either heartbeats or at least one issue with a path and a message', () => {
    fc.assert(
      fc.property(anyBody, (body) => {
        const parsed = parseHeartbeatBody(body, NOW);
        if (parsed.ok) {
          expect(parsed.value.heartbeats.length).toBeGreaterThan(0);
          expect(parsed.value.heartbeats.length).toBeLessThanOrEqual(
            HEARTBEAT_LIMITS.maxBatch,
          );
        } else {
          expect(parsed.issues.length).toBeGreaterThan(0);
          for (const issue of parsed.issues) {
            expect(typeof issue.path).toBe('string');
            expect(issue.path.length).toBeGreaterThan(0);
            expect(typeof issue.message).toBe('string');
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts every valid heartbeat and every valid envelope', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          validHeartbeat,
          fc.record({
            heartbeats: fc.array(validHeartbeat, {
              minLength: 1,
              maxLength: 40,
            }),
          }),
        ),
        (body) => {
          const parsed = parseHeartbeatBody(body, NOW);
          expect(parsed.ok ? [] : parsed.issues).toEqual([]);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('only ever accepts heartbeats whose ip has a canonical spelling', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 50 }),
          fc.ipV4Extended(),
          fc.ipV6(),
          fc.ipV4(),
        ),
        (ip) => {
          const parsed = parseHeartbeatBody(
            { ip, process: 'p', status: 'ok' },
            NOW,
          );
          expect(parsed.ok).toBe(canonicalIp(ip) !== undefined);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('names the index of the one bad heartbeat in an otherwise valid envelope', () => {
    fc.assert(
      fc.property(
        fc.array(validHeartbeat, { minLength: 1, maxLength: 30 }),
        fc.nat(),
        (heartbeats, at) => {
          const index = at % heartbeats.length;
          const bad = heartbeats.map((hb, i) =>
            i === index ? { ...hb, status: 'broken' } : hb,
          );
          const parsed = parseHeartbeatBody({ heartbeats: bad }, NOW);
          expect(
            parsed.ok ? [] : parsed.issues.map((issue) => issue.path),
          ).toEqual([`heartbeats.${index}.status`]);
        },
      ),
      { numRuns: 500 },
    );
  });
});
