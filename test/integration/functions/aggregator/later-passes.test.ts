import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import type { Config } from '../../../../functions/core/config.js';
import { parseConfig } from '../../../../functions/core/config.js';
import {
  bucketId,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';
import { tallyHeartbeats } from '../../../../functions/core/tally.js';
import { createLogger } from '../../../../functions/log.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import type { HeartbeatStore } from '../../../../functions/store/ports.js';
import {
  aggregatorStores,
  decidedThrough,
  ruleBan,
} from '../../../helpers/aggregator-table.js';
import { localEndpoint, localTable } from '../../../helpers/local-tables.js';

/** A table of its own, an aggregator on it whose passes run on a manual clock, and what its store answered. */
async function world(
  client: DynamoDBDocumentClient,
  env: Record<string, string> = {},
) {
  const tableName = `relaywatch-passes-${randomBytes(6).toString('hex')}`;
  await localTable(tableName);
  const config: Config = parseConfig({ TABLE_NAME: tableName, ...env });
  const stores = aggregatorStores(client, tableName, config);
  const { heartbeats: store, state, bans } = stores;
  /** Per read of a whole minute, as it ended: the minute and how many rows the store answered. */
  const answered: Array<{ minute: number; rows: number }> = [];
  /** The same reads, with how many rows were offered to `keep` (0 without one). */
  const offered: Array<{ minute: number; rows: number; offered: number }> = [];
  /**
   * Called before each read goes to the store, with what a read of the
   * whole minute answered, and before the state advances past a minute.
   */
  const hooks: {
    beforeRead?: (minute: number, whole: boolean) => Promise<void>;
    answeredWhole?: (minute: number, rows: readonly MinuteTally[]) => void;
    beforeAdvance?: (minute: number) => void;
  } = {};
  const heartbeats: HeartbeatStore = {
    ...store,
    readMinute: async (minute, onRows, keep) => {
      await hooks.beforeRead?.(minute, !keep);
      let seen = 0;
      const rows = await store.readMinute(
        minute,
        onRows,
        keep &&
          ((row) => {
            seen++;
            return keep(row);
          }),
      );
      if (!keep) hooks.answeredWhole?.(minute, rows);
      answered.push({ minute, rows: rows.length });
      offered.push({ minute, rows: rows.length, offered: seen });
      return rows;
    },
  };
  let now = 0;
  const aggregator = createAggregator({
    config,
    ...stores,
    heartbeats,
    state: {
      ...state,
      advanceAggregatorState: (next, options) => {
        hooks.beforeAdvance?.(next.lastMinute);
        return state.advanceAggregatorState(next, options);
      },
    },
    log: createLogger({ level: 'error', write: () => undefined }),
    clock: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  });
  const write = async (rows: MinuteTally[], writeId: string) =>
    store.addTallies(rows, { writeId });
  const reports = (
    ip: string,
    at: number,
    kind: 'relay' | 'probe',
    status: 'ok' | 'connect_failed',
  ) =>
    tallyHeartbeats(
      Array.from({ length: 30 }, (_, i) => ({
        ip,
        process: `${kind}:${i}`,
        kind,
        status,
        origin: `rtmp://origin-${i}.example.net:1935`,
        ts: at,
      })),
      { now: at, graceMs: config.graceSeconds * 1000 },
    ).tallies;
  return {
    config,
    aggregator,
    state,
    bans,
    answered,
    offered,
    hooks,
    write,
    reports,
    /** A run triggered at `eventTime`, its passes on the manual clock. */
    run: (eventTime: number) => {
      now = eventTime;
      return aggregator.run(eventTime);
    },
  };
}

/**
 * A scheduled run makes a pass every RELAYWATCH_PASS_SECONDS for its minute;
 * the passes after a minute's closing judge only its rows inside their
 * trailing and release windows, so the run holds of that minute only those
 * (at 100,000 IPs, holding it whole beside the open minute took a pass past
 * 1,024 MB). These runs use a manual clock that their sleeps move on.
 */
describe('passes after a minute is decided', () => {
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  afterAll(() => client.destroy());

  it("holds, in a run that starts late in the next minute, only the decided minute's rows its windows can judge", async () => {
    const w = await world(client);
    const minute = minuteOf(Date.now()) - 3;
    const next = minuteStart(minute + 1);
    await decidedThrough(w.state, minute - 1);
    const fleet = ['192.0.2.11', '192.0.2.12', '192.0.2.13', '192.0.2.14'];
    for (const ip of fleet)
      await w.write(
        w.reports(ip, minuteStart(minute) + 30_000, 'relay', 'ok'),
        `b:${ip}`,
      );

    const first = await w.run(next);
    // The same instance, run again late in the next minute (a late or repeated delivery).
    const second = await w.run(next + 50_000);

    // The first run decided the minute; its passes read it twice whole (open, then closed).
    expect(first.minutes).toHaveLength(1);
    expect(first.passes).toHaveLength(6);
    expect(w.answered.filter((read) => read.minute === minute)).toEqual([
      { minute, rows: fleet.length },
      { minute, rows: fleet.length },
      // The late run's windows begin 10 s before the next minute: none of its rows is held.
      { minute, rows: 0 },
    ]);
    expect(second.minutes).toHaveLength(1);
    expect(second.failedMinutes).toEqual([]);
    expect(second.decisions).toEqual([]);
  });

  it('releases a banned IP in a later pass on probes observed before its trailing window but inside its release window', async () => {
    // The release window (2 min) is longer than the trailing window (1 min).
    const w = await world(client, { RELAYWATCH_RELEASE_MINUTES: '2' });
    const minute = minuteOf(Date.now()) - 3;
    const next = minuteStart(minute + 1);
    const banned = '198.51.100.9';
    // Releasable from the pass at next + 45 s on: its release window then begins after the ban.
    const since = next - 75_000;
    expect(
      await w.bans.changeBans(
        [{ type: 'ban', ban: ruleBan(banned, since) }],
        since,
      ),
    ).toEqual([true]);
    await decidedThrough(w.state, minute - 1);
    // Healthy probes early in the minute: outside the trailing window of every
    // pass after the closing one, inside the release window of the last.
    await w.write(w.reports(banned, next - 55_000, 'probe', 'ok'), 'b:probes');
    await w.write(
      w.reports('192.0.2.21', next - 30_000, 'relay', 'ok'),
      'b:other',
    );

    const summary = await w.run(next);

    expect(summary.minutes).toHaveLength(1);
    expect(summary.decisions.filter((d) => d.type === 'release')).toMatchObject(
      [{ ip: banned, at: new Date(next + 50_000).toISOString() }],
    );
  });
});

describe('a run catching up on missed minutes', () => {
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  afterAll(() => client.destroy());

  it('decides the minutes before the live window without holding its rows, and still lets a newer healthy report there veto a ban', async () => {
    const w = await world(client, { RELAYWATCH_AGGREGATE_WAITS: 'false' });
    const open = minuteOf(Date.now());
    // Decided through open - 4: open - 3 and open - 2 come before the live window (open - 1, open).
    await decidedThrough(w.state, open - 4);
    const healthy = ['192.0.2.31', '192.0.2.32', '192.0.2.33', '192.0.2.34'];
    const recovered = '198.51.100.31';
    const broken = '198.51.100.32';
    const missed = minuteStart(open - 3) + 30_000;
    for (const ip of healthy)
      await w.write(w.reports(ip, missed, 'relay', 'ok'), `m:${ip}`);
    for (const ip of [recovered, broken])
      await w.write(
        w.reports(ip, missed, 'relay', 'connect_failed'),
        `m:${ip}`,
      );
    // In the live window, one of the two reports healthy again.
    const live = minuteStart(open - 1) + 30_000;
    for (const ip of [...healthy, recovered])
      await w.write(w.reports(ip, live, 'relay', 'ok'), `l:${ip}`);

    const summary = await w.run(minuteStart(open) + 11_000);

    expect(summary.minutes).toEqual(
      [open - 3, open - 2, open - 1].map(bucketId),
    );
    expect(
      summary.decisions.filter((d) => d.type === 'ban').map((d) => d.ip),
    ).toEqual([broken]);
    expect(summary.decisions).toContainEqual(
      expect.objectContaining({ type: 'ban', minute: bucketId(open - 3) }),
    );
    // The live window was first read for its summary only: every row offered, none held.
    const liveRead = w.offered.findIndex(
      (read) => read.minute === open - 1 && read.rows > 0,
    );
    expect(w.offered.slice(0, 2)).toEqual(
      expect.arrayContaining([
        { minute: open - 1, rows: 0, offered: healthy.length + 1 },
        { minute: open, rows: 0, offered: 0 },
      ]),
    );
    // Its rows were held only once the minutes before it were read and decided.
    const missedReads = w.offered.flatMap((read, i) =>
      read.minute < open - 1 ? [i] : [],
    );
    expect(missedReads).toHaveLength(2);
    expect(Math.max(...missedReads)).toBeLessThan(liveRead);
  });
});

/** A full garbage collection, to see which objects a run still holds. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('a run catching up with a window of several minutes', () => {
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  afterAll(() => client.destroy());

  it('holds no more minutes whole than the window it decides, and lets go of each once no later window takes it in (at 100,000 IPs each is ~350 MB)', async () => {
    const w = await world(client, { RELAYWATCH_WINDOW_MINUTES: '2' });
    const open = minuteOf(Date.now());
    // Four minutes to decide, open - 4 to open - 1, each with a window of
    // itself and the minute before; the live window is open - 2 to open.
    await decidedThrough(w.state, open - 5);
    const fleet = ['192.0.2.41', '192.0.2.42', '192.0.2.43', '192.0.2.44'];
    for (const minute of [open - 4, open - 3, open - 2, open - 1])
      for (const ip of fleet)
        await w.write(
          w.reports(ip, minuteStart(minute) + 5_000, 'relay', 'ok'),
          `${minute}:${ip}`,
        );
    // A row of each minute read whole, watched without holding it.
    const watched = new Map<number, WeakRef<MinuteTally>>();
    w.hooks.answeredWhole = (minute, rows) => {
      const [row] = rows;
      if (row && !watched.has(minute)) watched.set(minute, new WeakRef(row));
    };
    const held = () => {
      collectGarbage();
      return [...watched]
        .filter(([, row]) => row.deref() !== undefined)
        .map(([minute]) => minute)
        .sort();
    };
    // What the run held as it decided each minute (its first advance past
    // it: the live decisions after advance the state within the minute).
    const heldDeciding = new Map<number, number[]>();
    w.hooks.beforeAdvance = (minute) => {
      if (!heldDeciding.has(minute)) heldDeciding.set(minute, held());
    };
    // And when its third pass read the open minute: every minute was decided
    // by the first, and the second folded its live window (until then the
    // last fold keeps its rows, which the next decision may judge again).
    let openReads = 0;
    let heldAfter: number[] | undefined;
    w.hooks.beforeRead = async (minute, whole) => {
      if (minute !== open || !whole || ++openReads !== 3) return;
      await new Promise((resolve) => setImmediate(resolve));
      heldAfter = held();
    };

    const summary = await w.run(minuteStart(open) + 11_000);

    expect(summary.minutes).toEqual(
      [open - 4, open - 3, open - 2, open - 1].map(bucketId),
    );
    // Each decision held its window's two minutes and no other: neither the
    // minutes decided before (they were held until the run ended) nor the
    // live window's later minutes (read whole ahead of their decision).
    expect(heldDeciding.get(open - 3)).toEqual([open - 4, open - 3]);
    expect(heldDeciding.get(open - 2)).toEqual([open - 3, open - 2]);
    expect(heldDeciding.get(open - 1)).toEqual([open - 2, open - 1]);
    // Later passes hold open - 1 whole, the next closing window's first
    // minute. The rows of every older minute came before their trailing
    // windows: none is held.
    expect(heldAfter).toEqual([open - 1]);
  });
});

describe('minutes missed beyond the catch-up bound', () => {
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  afterAll(() => client.destroy());

  it('are left undecided loudly: an error log, the AggregationFailures metric and an aggregation_failed event naming them', async () => {
    const tableName = `relaywatch-skipped-${randomBytes(6).toString('hex')}`;
    await localTable(tableName);
    const config = parseConfig({
      TABLE_NAME: tableName,
      RELAYWATCH_AGGREGATE_WAITS: 'false',
      RELAYWATCH_MAX_CATCHUP_MINUTES: '2',
    });
    const stores = aggregatorStores(client, tableName, config);
    const { state, events } = stores;
    const minute = minuteOf(Date.now()) - 3;
    // The last run decided minute - 5: three minutes are beyond a catch-up of 2.
    await decidedThrough(state, minute - 5);
    const logged: Array<Record<string, unknown>> = [];
    const at = minuteStart(minute + 1) + 11_000;
    const aggregator = createAggregator({
      config,
      ...stores,
      log: createLogger({
        level: 'error',
        write: (line) => void logged.push(JSON.parse(line)),
      }),
      clock: () => at,
    });

    const summary = await aggregator.run(at);

    expect(summary.minutes).toEqual([bucketId(minute - 1), bucketId(minute)]);
    const skipped = {
      count: 3,
      from: bucketId(minute - 4),
      to: bucketId(minute - 2),
    };
    expect(logged).toContainEqual(
      expect.objectContaining({ level: 'error', ...skipped }),
    );
    expect(logged).toContainEqual(
      expect.objectContaining({
        AggregationFailures: 1,
        kind: 'minutes_skipped',
      }),
    );
    const trail = await events.listEvents({
      since: minuteStart(minute - 5),
      limit: 10,
      now: at,
    });
    expect(trail).toContainEqual(
      expect.objectContaining({
        type: 'aggregation_failed',
        minute: skipped.from,
        evidence: expect.objectContaining({ skipped }),
      }),
    );
  });
});
