import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AggregationSummary } from '../../../../functions/aggregator.js';
import { createAggregator } from '../../../../functions/aggregator.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import { createLogger } from '../../../../functions/log.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  minuteOfRelays,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * Two aggregation runs of the same minute (a manual run racing the scheduler)
 * on DynamoDB Local. The race is made deterministic, not timed: run A's state
 * write waits until run B has finished, so A places the ban and B advances the
 * state first. Each run must still say what it applied.
 */
describe('two aggregation runs racing for one minute', () => {
  let center: TestStatusCenter;
  let now = 0;
  const first = minuteOf(Date.now()) + 1;
  const bad = '203.0.113.7';
  const lines: Array<Record<string, any>> = [];

  beforeAll(async () => {
    now = minuteStart(first) + 30_000;
    center = await startStatusCenter({ overrides: { now: () => now } });
    const api = apiClient(center);
    for (let n = 1; n <= 10; n++) {
      const ip = `203.0.113.${n}`;
      const heartbeats = minuteOfRelays(
        ip,
        minuteStart(first),
        ip === bad ? 'connect_failed' : 'ok',
      );
      expect(await postHeartbeats(api, heartbeats)).toBe(202);
    }
    now = minuteStart(first + 1) + 15_000;
  });
  afterAll(() => center?.stop());

  it('the run that placed the ban but lost the state write reports the ban and that it was superseded; the other, which saw the ban in force, reports no ban', async () => {
    const runtime = center.runtime;
    const log = createLogger({
      level: 'info',
      metrics: false,
      write: (line) => void lines.push(JSON.parse(line)),
    });
    const base = {
      config: runtime.config,
      heartbeats: runtime.heartbeats,
      bans: runtime.bans,
      events: runtime.events,
      log,
      clock: () => now,
    };
    const runB = createAggregator({ ...base, state: runtime.state });
    let summaryB: AggregationSummary | undefined;
    const runA = createAggregator({
      ...base,
      state: {
        ...runtime.state,
        // Run B goes from start to end between A's decisions and A's state write.
        advanceAggregatorState: async (next) => {
          summaryB ??= await runB.run(minuteStart(first + 1) + 15_000);
          return runtime.state.advanceAggregatorState(next);
        },
      },
    });

    const summaryA = await runA.run(minuteStart(first + 1) + 15_000);

    expect(
      summaryA.decisions.filter((d) => d.type === 'ban').map((d) => d.ip),
    ).toEqual([bad]);
    expect(summaryA.supersededAt).toBeDefined();
    expect(summaryB?.decisions.filter((d) => d.type === 'ban')).toEqual([]);
    expect(summaryB?.supersededAt).toBeUndefined();
    const stopped = lines.find((line) =>
      /another run already/.test(line.message),
    );
    expect(stopped?.applied).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'ban', ip: bad }),
      ]),
    );
    const entries = (
      await apiClient(center)('GET', '/v1/blocklist', { role: 'reader' })
    ).json.entries as Array<{ ip: string }>;
    expect(entries.map((e) => e.ip)).toEqual([bad]);
  });
});
