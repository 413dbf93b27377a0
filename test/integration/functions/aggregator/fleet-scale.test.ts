import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import { parseConfig } from '../../../../functions/core/config.js';
import {
  bucketId,
  minuteClosesAt,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import type { MinuteTally } from '../../../../functions/core/tally.js';
import { tallyHeartbeats } from '../../../../functions/core/tally.js';
import { createLogger } from '../../../../functions/log.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../../../functions/store/heartbeat-store.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import type { DynamoDbLocal } from '../../../../infra/local/dynamodb-local.js';
import { startDynamoDbLocal } from '../../../../infra/local/dynamodb-local.js';
import { ensureTable } from '../../../../infra/local/table.js';
import {
  FAILING_SHARE,
  fleetIp,
  machineReport,
} from '../../../helpers/fleet.js';
import type { MeteringProxy } from '../../../helpers/metering-proxy.js';
import { startMeteringProxy } from '../../../helpers/metering-proxy.js';

/**
 * One minute of 10,000 machines decided in one pass: every failing machine
 * banned, the fleet view readable, and no item written over 64 KB (before the
 * state split this failed from ~3,000 IPs). Rows are written through the
 * heartbeat store, 25 machines per BatchWriteItem. The figures (time, units)
 * belong to the fleet bench; this asserts outcomes only.
 */

const MACHINES = 10_000;
const MAX_ITEM_BYTES = 64 * 1024;

describe(`a fleet of ${MACHINES} machines`, () => {
  // A DynamoDB Local of its own: the fleet's rows never share a Local with
  // the files running beside it. On the suite's shared one, when that still
  // kept every earlier file's tables, this test took 65–90 s against 21 s here.
  let dynamodb: DynamoDbLocal;
  let proxy: MeteringProxy;
  const tableName = `relaywatch-scale-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    dynamodb = await startDynamoDbLocal({
      port: 0,
      startTimeoutMs: 60_000,
    });
    await ensureTable({
      endpoint: dynamodb.endpoint,
      region: 'us-east-1',
      tableName,
    });
    proxy = await startMeteringProxy(dynamodb.port);
  });
  afterAll(async () => {
    await proxy?.close();
    await dynamodb?.stop();
  });

  it('is decided in one pass with every failing machine banned and no item over 64 KB', {
    timeout: 900_000,
  }, async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    const config = parseConfig({
      TABLE_NAME: tableName,
      RELAYWATCH_AGGREGATE_WAITS: 'false',
    });
    const heartbeats = createHeartbeatStore({
      client,
      tableName,
      shards: config.shards,
      bucketTtlHours: 48,
    });
    const state = createStateStore({ client, tableName });
    const minute = minuteOf(Date.now()) - 1;

    const failing = new Set<string>();
    for (let group = 0; group < MACHINES / 25; group++) {
      const tallies: MinuteTally[] = [];
      for (let n = group * 25; n < (group + 1) * 25; n++) {
        const report = machineReport(n, minute);
        if (
          report.some(
            (h) => h.kind === 'probe' && h.status === 'connect_failed',
          )
        )
          failing.add(fleetIp(n));
        tallies.push(
          ...tallyHeartbeats(report, {
            now: minuteStart(minute) + 55_000,
            graceMs: 10_000,
          }).tallies,
        );
      }
      await heartbeats.addTallies(tallies, { writeId: `b:scale-${group}` });
    }
    expect(failing.size).toBeGreaterThan(MACHINES * FAILING_SHARE * 0.5);

    proxy.reset();
    const aggregator = createAggregator({
      config,
      heartbeats,
      bans: createBanStore({ client, tableName }),
      events: createEventStore({ client, tableName, eventTtlDays: 30 }),
      state,
      log: createLogger({ level: 'error', metrics: false }),
      clock: () => minuteClosesAt(minute, { graceMs: 10_000 }) + 1_000,
    });
    const summary = await aggregator.run(
      minuteClosesAt(minute, { graceMs: 10_000 }) + 1_000,
    );
    const used = proxy.reset();

    expect(summary.minutes).toEqual([bucketId(minute)]);
    expect(summary.failedMinutes).toEqual([]);
    const banned = new Set(
      summary.decisions.filter((d) => d.type === 'ban').map((d) => d.ip),
    );
    expect(banned).toEqual(failing);
    expect(used.largestItemBytes).toBeGreaterThan(0);
    expect(used.largestItemBytes).toBeLessThanOrEqual(MAX_ITEM_BYTES);
    const fleet = await state.getAggregatorState({ consistent: true });
    expect(fleet?.reporting).toHaveLength(MACHINES);
    client.destroy();
  });
});
