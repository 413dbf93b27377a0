import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';
import { originId, unnamedOrigin } from '../../../../functions/core/tally.js';
import { createLogger } from '../../../../functions/log.js';
import type { HeartbeatStore } from '../../../../functions/store/ports.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  minuteOfRelays,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * A closing minute's rows are folded page by page while they are read; a
 * heartbeat store that does not hand its pages over gets them folded after
 * the read, and an origin that a later page names is one origin in the fold.
 * All decide the same minute alike.
 */
describe('closing fold made while the rows are read', () => {
  const first = minuteOf(Date.now()) + 1;
  let now = minuteStart(first) + 30_000;
  const failing = new Set(['203.0.113.3', '203.0.113.7']);
  const centers: TestStatusCenter[] = [];
  type Outcome = Awaited<ReturnType<typeof aggregate>>;
  /** Pages handed over, by minute, to the aggregator of the first center. */
  const handed: number[] = [];
  let viaPages: Outcome;
  let afterRead: Outcome;

  /** Aggregates the closed minute with `heartbeats`; answers its bans and fleet view. */
  async function aggregate(
    center: TestStatusCenter,
    heartbeats: HeartbeatStore,
  ) {
    const { runtime } = center;
    const aggregator = createAggregator({
      ...runtime,
      heartbeats,
      log: createLogger({ level: 'error', write: () => undefined }),
      clock: () => now,
    });
    const summary = await aggregator.run(now);
    const state = await runtime.state.getAggregatorState({ consistent: true });
    return {
      minutes: summary.minutes,
      bans: summary.decisions
        .filter((d) => d.type === 'ban')
        .map((d) => d.ip)
        .sort(),
      reporting: state?.reporting,
    };
  }

  beforeAll(async () => {
    const start = minuteStart(first);
    for (let c = 0; c < 3; c++) {
      const center = await startStatusCenter({
        overrides: { now: () => now },
      });
      centers.push(center);
      const api = apiClient(center);
      for (let n = 1; n <= 10; n++) {
        const ip = `203.0.113.${n}`;
        const heartbeats = minuteOfRelays(
          ip,
          start,
          failing.has(ip) ? 'connect_failed' : 'ok',
        );
        expect(await postHeartbeats(api, heartbeats)).toBe(202);
      }
    }
    now = minuteStart(first + 1) + 15_000;
    const [streaming, silent] = centers as [TestStatusCenter, TestStatusCenter];
    viaPages = await aggregate(streaming, {
      ...streaming.runtime.heartbeats,
      readMinute: (minute, onRows) =>
        streaming.runtime.heartbeats.readMinute(minute, (rows) => {
          handed.push(minute);
          onRows?.(rows);
        }),
    });
    // A store that never calls onRows: the aggregator must fold the rows it answers.
    afterRead = await aggregate(silent, {
      ...silent.runtime.heartbeats,
      readMinute: (minute) => silent.runtime.heartbeats.readMinute(minute),
    });
  });
  afterAll(async () => {
    for (const center of centers) await center.stop();
  });

  it('decides alike whether the store hands pages over while reading or not', () => {
    expect(handed).toContain(first);
    expect(viaPages.minutes).not.toHaveLength(0);
    expect(afterRead.minutes).toEqual(viaPages.minutes);
    expect(viaPages.bans).toEqual([...failing].sort());
    expect(afterRead.bans).toEqual(viaPages.bans);
    expect(viaPages.reporting).toHaveLength(10);
    expect(afterRead.reporting).toEqual(viaPages.reporting);
  });

  it('decides alike when a later page names the origins that earlier pages keyed by id', async () => {
    const late = centers[2] as TestStatusCenter;
    const real = late.runtime.heartbeats;
    // As a store that has not seen these origins yet: the healthy rows come
    // first and key their origins by id only, until a failing row names them.
    let named = false;
    let folded = 0;
    const asFirstSeen = (row: MinuteTally): MinuteTally => ({
      ...row,
      eachOrigin: (visit) =>
        row.eachOrigin?.((origin, counts) =>
          visit(named ? origin : unnamedOrigin(originId(origin)), counts),
        ),
    });
    const store: HeartbeatStore = {
      ...real,
      readMinute: async (minute, onRows) => {
        const rows = (await real.readMinute(minute)).map(asFirstSeen);
        if (minute !== first || !onRows) return rows;
        const healthy = rows.filter((row) => !failing.has(row.ip));
        onRows(
          healthy.map((row) => ({
            ...row,
            eachOrigin: (visit) => {
              folded++;
              row.eachOrigin?.(visit);
            },
          })),
        );
        // The aggregator folds that page on this turn of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
        named = true;
        onRows(rows.filter((row) => failing.has(row.ip)));
        return rows;
      },
    };

    const decided = await aggregate(late, store);

    // The healthy page was folded as it came, before its origins had names.
    expect(folded).toBe(8);
    expect(decided.bans).toEqual(afterRead.bans);
    expect(decided.reporting).toEqual(afterRead.reporting);
  });
});
