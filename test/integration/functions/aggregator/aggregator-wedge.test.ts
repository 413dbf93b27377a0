import { randomBytes } from 'node:crypto';
import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import type { Heartbeat } from '../../../../functions/core/heartbeat.js';
import {
  bucketId,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import { tallyHeartbeats } from '../../../../functions/core/tally.js';
import { createLogger } from '../../../../functions/log.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../../../functions/store/heartbeat-store.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import { aggregatorTable } from '../../../helpers/aggregator-table.js';
import { localEndpoint } from '../../../helpers/local-tables.js';
import {
  apiClient,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * A minute that cannot be decided must not stop detection. Before the state
 * was split, one reporter could post 3,000 made-up IPv6 addresses in 6
 * requests, the single state item passed DynamoDB's 400 KB, every later run
 * failed on that same minute, and no broken machine was banned again.
 */

const FLEET = Array.from({ length: 10 }, (_, i) => `203.0.113.${i + 11}`);
const BROKEN = FLEET[6] as string;
const ORIGINS = [
  'rtmp://origin-a.example.net/live',
  'rtmp://origin-b.example.net/live',
];

type Beat = {
  ip: string;
  process: string;
  status: string;
  kind?: string;
  origin: string;
  ts: number;
};

/** Minute `m` of the ten machines: 12 relays and 4 canary probes each; `broken` fails everything. */
function fleetMinute(m: number, broken: string | undefined): Beat[][] {
  return FLEET.map((ip) => {
    const status = ip === broken ? 'connect_failed' : 'ok';
    return [
      ...Array.from({ length: 12 }, (_, n) => ({
        ip,
        process: `ffmpeg-${n}`,
        status,
        origin: `${ORIGINS[n % 2]}/s${n}`,
        ts: minuteStart(m) + 1_000 + n * 1_000,
      })),
      ...Array.from({ length: 4 }, (_, n) => ({
        ip,
        process: 'probe',
        kind: 'probe',
        status,
        origin: 'tcp://canary.example.net:443',
        ts: minuteStart(m) + 20_000 + n * 1_000,
      })),
    ];
  });
}

describe('a minute that cannot be decided does not stop detection', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  it('decides a minute of 3,000 made-up IPv6 addresses from one reporter, then bans a broken machine in a later minute', async () => {
    let now = minuteStart(minuteOf(Date.now())) + 5_000;
    const center = await startStatusCenter({ overrides: { now: () => now } });
    cleanups.push(() => center.stop());
    const api = apiClient(center);
    /** Posts heartbeats as the fleet-wide reporter; each post must be accepted. */
    const post = async (heartbeats: unknown[]) =>
      expect(await postHeartbeats(api, heartbeats)).toBe(202);
    const m = minuteOf(now) + 1;

    // 3,000 addresses in 6 requests of 500 heartbeats, as one reporter token can send them.
    now = minuteStart(m) + 30_000;
    for (let request = 0; request < 6; request++) {
      const heartbeats = Array.from({ length: 500 }, (_, i) => {
        const n = request * 500 + i;
        return {
          ip: `2001:db8:${(n >> 8).toString(16)}:${(n & 255).toString(16)}::${randomBytes(2).toString('hex')}`,
          process: 'p',
          status: 'ok',
          origin: ORIGINS[0],
        };
      });
      await post(heartbeats);
    }
    now = minuteStart(m + 1) + 15_000;
    const flood = (await center.aggregate(new Date(now).toISOString())) as {
      minutes: string[];
      failedMinutes: string[];
    };
    expect(flood.minutes).toEqual([bucketId(m)]);
    expect(flood.failedMinutes).toEqual([]);
    const view = (await api('GET', '/v1/fleet', { role: 'reader' })).json;
    expect(view.reporting).toHaveLength(3000);
    expect(view.aggregatedMinute).toBe(bucketId(m));

    // Two minutes later one machine of ten cannot reach the origins the others reach.
    const later = m + 2;
    now = minuteStart(later) + 30_000;
    for (const heartbeats of fleetMinute(later, BROKEN)) {
      await post(heartbeats);
    }
    now = minuteStart(later + 1) + 15_000;
    const decided = (await center.aggregate(new Date(now).toISOString())) as {
      minutes: string[];
      decisions: Array<{ type: string; ip?: string }>;
    };
    expect(decided.minutes).toEqual([bucketId(m + 1), bucketId(later)]);
    expect(decided.decisions).toContainEqual(
      expect.objectContaining({ type: 'ban', ip: BROKEN }),
    );
    const blocklist = (await api('GET', '/v1/blocklist', { role: 'reader' }))
      .json;
    expect(blocklist.entries.map((e: { ip: string }) => e.ip)).toEqual([
      BROKEN,
    ]);
  });

  it('moves past a minute whose state write DynamoDB refuses, records why, and decides the next minute on time', async () => {
    let now = minuteStart(minuteOf(Date.now())) + 5_000;
    const tableName = `relaywatch-wedge-${randomBytes(6).toString('hex')}`;
    const config = await aggregatorTable(tableName);
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: localEndpoint(),
    });
    cleanups.push(() => client.destroy());
    const first = minuteOf(now) + 1;
    // Fault injection: DynamoDB refuses every write of minute `first`'s state, as it refused the 400 KB item.
    const poisoned = `STATE#${bucketId(first)}`;
    client.middlewareStack.add(
      (next) => async (args) => {
        if (JSON.stringify(args.input).includes(poisoned)) {
          throw new DynamoDBServiceException({
            name: 'ValidationException',
            $fault: 'client',
            $metadata: {},
            message: 'Item size has exceeded the maximum allowed size',
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'poisonOneMinute' },
    );
    const logged: Array<Record<string, any>> = [];
    const log = createLogger({
      level: 'error',
      write: (line) => void logged.push(JSON.parse(line)),
    });
    const heartbeats = createHeartbeatStore({
      client,
      tableName,
      shards: config.shards,
      bucketTtlHours: 48,
    });
    const events = createEventStore({ client, tableName, eventTtlDays: 30 });
    const aggregator = createAggregator({
      config,
      heartbeats,
      bans: createBanStore({ client, tableName }),
      events,
      state: createStateStore({ client, tableName }),
      log,
      clock: () => now,
    });
    const write = async (m: number, broken: string | undefined) => {
      for (const beats of fleetMinute(m, broken)) {
        // Received 2 s after the newest heartbeat: on time (a backlog would count against nobody).
        const { tallies } = tallyHeartbeats(beats as Heartbeat[], {
          now: minuteStart(m) + 25_000,
          graceMs: 10_000,
        });
        await heartbeats.addTallies(tallies, {
          writeId: `b:${m}-${beats[0]?.ip}`,
        });
      }
    };

    await write(first, undefined);
    now = minuteStart(first + 1) + 15_000;
    const failed = await aggregator.run(now);
    expect(failed.failedMinutes).toEqual([bucketId(first)]);
    expect(
      logged.some(
        (line) =>
          line.level === 'error' && /could not be decided/.test(line.message),
      ),
    ).toBe(true);
    expect(
      logged.some((line) => line._aws && line.AggregationFailures === 1),
    ).toBe(true);
    const trail = await events.listEvents({
      since: minuteStart(first - 1),
      limit: 10,
      now,
    });
    expect(trail.map((e) => e.type)).toContain('aggregation_failed');

    // The next minute: decided on time, and the broken machine is banned.
    await write(first + 1, BROKEN);
    now = minuteStart(first + 2) + 15_000;
    const next = await aggregator.run(now);
    expect(next.minutes).toEqual([bucketId(first + 1)]);
    expect(next.failedMinutes).toEqual([]);
    expect(next.decisions).toContainEqual(
      expect.objectContaining({ type: 'ban', ip: BROKEN }),
    );
  });

  it('leaves every ban with its audit event and its offense when the run dies right after its ban transactions', async () => {
    let now = minuteStart(minuteOf(Date.now())) + 5_000;
    const tableName = `relaywatch-crash-${randomBytes(6).toString('hex')}`;
    const config = await aggregatorTable(tableName);
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: localEndpoint(),
    });
    cleanups.push(() => client.destroy());
    const heartbeats = createHeartbeatStore({
      client,
      tableName,
      shards: config.shards,
      bucketTtlHours: 48,
    });
    const minute = minuteOf(now) + 1;
    for (const beats of fleetMinute(minute, BROKEN)) {
      const { tallies } = tallyHeartbeats(beats as Heartbeat[], {
        now: minuteStart(minute) + 25_000,
        graceMs: 10_000,
      });
      await heartbeats.addTallies(tallies, {
        writeId: `b:${minute}-${beats[0]?.ip}`,
      });
    }
    // Fault injection: once the bans are written, the run dies: nothing it writes after them lands.
    let killed = false;
    client.middlewareStack.add(
      (next) => async (args) => {
        if (killed) throw new Error('process killed');
        const result = await next(args);
        if ((args.input as { TransactItems?: unknown }).TransactItems)
          killed = true;
        return result;
      },
      { step: 'initialize', name: 'dieAfterBans' },
    );
    const aggregator = createAggregator({
      config,
      heartbeats,
      bans: createBanStore({ client, tableName }),
      events: createEventStore({ client, tableName, eventTtlDays: 30 }),
      state: createStateStore({ client, tableName }),
      log: createLogger({ level: 'error', write: () => undefined }),
      clock: () => now,
    });
    now = minuteStart(minute + 1) + 15_000;
    await expect(aggregator.run(now)).rejects.toThrow('process killed');

    killed = false;
    const reader = createDocumentClient({
      region: 'us-east-1',
      endpoint: localEndpoint(),
    });
    cleanups.push(() => reader.destroy());
    const bans = createBanStore({ client: reader, tableName });
    expect((await bans.listBansConsistent(now)).map((ban) => ban.ip)).toEqual([
      BROKEN,
    ]);
    const trail = await createEventStore({
      client: reader,
      tableName,
      eventTtlDays: 30,
    }).listEvents({ ip: BROKEN, since: minuteStart(minute), limit: 10, now });
    expect(trail.map((event) => event.type)).toEqual(['ban']);
    const offenses = await createStateStore({
      client: reader,
      tableName,
    }).getOffenses([BROKEN]);
    expect(offenses[BROKEN]).toHaveLength(1);
  });
});
