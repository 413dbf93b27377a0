import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import {
  minuteClosesAt,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import type { IpEvidence } from '../../../../functions/core/policy.js';
import { emptyEvidence } from '../../../../functions/core/rules/evidence.js';
import { createLogger } from '../../../../functions/log.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../../../functions/store/heartbeat-store.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import { aggregatorTable } from '../../../helpers/aggregator-table.js';
import { watchingPieceQueries } from '../../../helpers/faulty-client.js';
import { localEndpoint } from '../../../helpers/local-tables.js';

const evidence = (ip: string): IpEvidence => ({
  ...emptyEvidence(ip),
  samples: 60,
  ok: 60,
  origins: 3,
});

/**
 * The aggregator decides from the rows, never from the previous fleet view:
 * it reads its state without it, and a live pass keeps the stored one (which
 * GET /v1/fleet serves) until a closing minute makes a new one.
 */
describe('the fleet view across aggregation runs', () => {
  const tableName = `relaywatch-fleetview-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  // The aggregator's client notes the piece kinds (R, S, L, O, C) its queries read.
  const { client: watched, queried } = watchingPieceQueries(client);
  afterAll(() => client.destroy());

  it('is neither read nor written by a live pass, and replaced by the next closing minute', async () => {
    const config = await aggregatorTable(tableName);
    const graceMs = config.graceSeconds * 1000;
    const minute = minuteOf(Date.now()) - 3;
    const fleet = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map(evidence);
    // The state of a closed minute, as an earlier run left it.
    expect(
      await createStateStore({ client, tableName }).advanceAggregatorState({
        lastMinute: minute,
        reporting: fleet,
        lastSeen: Object.fromEntries(fleet.map((e) => [e.ip, minute])),
        outages: [],
        fleetWide: false,
        capInForce: false,
        capped: [],
      }),
    ).toEqual({ applied: true });

    const aggregatorAt = (at: number) =>
      createAggregator({
        config,
        heartbeats: createHeartbeatStore({
          client: watched,
          tableName,
          shards: config.shards,
          bucketTtlHours: 48,
        }),
        bans: createBanStore({ client: watched, tableName }),
        events: createEventStore({
          client: watched,
          tableName,
          eventTtlDays: 30,
        }),
        state: createStateStore({ client: watched, tableName }),
        log: createLogger({ level: 'error', write: () => undefined }),
        clock: () => at,
      });
    const reader = createStateStore({ client, tableName });

    // A run within the next minute, before it closes: a live pass only.
    const live = minuteStart(minute + 1) + 30_000;
    const passed = await aggregatorAt(live).run(live);
    expect(passed.minutes).toEqual([]);
    expect(passed.passes).toEqual([new Date(live).toISOString()]);
    expect(queried).not.toContain('R');
    expect(await reader.getAggregatorState({ consistent: true })).toEqual(
      expect.objectContaining({
        lastMinute: minute,
        lastPassAt: live,
        reporting: fleet,
      }),
    );

    // The next run closes that minute, in which nobody reported: its fleet view is empty.
    const closing = minuteClosesAt(minute + 1, { graceMs }) + 1_000;
    const closed = await aggregatorAt(closing).run(closing);
    expect(closed.minutes).toHaveLength(1);
    expect(queried).not.toContain('R');
    expect(await reader.getAggregatorState({ consistent: true })).toEqual(
      expect.objectContaining({ lastMinute: minute + 1, reporting: [] }),
    );
  });
});
