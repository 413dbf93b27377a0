import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import {
  minuteClosesAt,
  minuteOf,
  minuteStart,
} from '../../../../functions/core/minutes.js';
import { tallyHeartbeats } from '../../../../functions/core/tally.js';
import { createLogger } from '../../../../functions/log.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import type { HeartbeatStore } from '../../../../functions/store/ports.js';
import {
  aggregatorStores,
  aggregatorTable,
  decidedThrough,
  ruleBan,
} from '../../../helpers/aggregator-table.js';
import { localEndpoint } from '../../../helpers/local-tables.js';

/**
 * Early release judges the probes observed in the last releaseMinutes of
 * time. A closing decision's `now` lies in the next minute, so the minute
 * before the one it closes holds no row inside that window: it is not read
 * for the banned IPs (at 10,000 IPs that was ~900 Query calls a minute).
 */
describe('early release reads', () => {
  const tableName = `relaywatch-release-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  afterAll(() => client.destroy());

  it('reads no rows of a minute before the release window, and releases a repaired IP from the minute it closes', async () => {
    const config = await aggregatorTable(tableName);
    const stores = aggregatorStores(client, tableName, config);
    const { heartbeats: store, bans, state } = stores;
    const asked: number[][] = [];
    const heartbeats: HeartbeatStore = {
      ...store,
      readIpMinutes: (ips, minutes) => {
        asked.push([...minutes]);
        return store.readIpMinutes(ips, minutes);
      },
    };
    const minute = minuteOf(Date.now()) - 3;
    const banned = '198.51.100.7';
    // Banned at the close of the minute before, by the rule: releasable once a minute has passed.
    const since = minuteClosesAt(minute - 1, {
      graceMs: config.graceSeconds * 1000,
    });
    expect(
      await bans.changeBans(
        [{ type: 'ban', ban: ruleBan(banned, since) }],
        since,
      ),
    ).toEqual([true]);
    await decidedThrough(state, minute - 1);
    // The banned machine's probes are all healthy through the minute being closed.
    const at = minuteStart(minute) + 50_000;
    const probes = Array.from({ length: 30 }, (_, i) => ({
      ip: banned,
      process: `probe:${i}`,
      kind: 'probe' as const,
      status: 'ok' as const,
      origin: `rtmp://origin-${i}.example.net:1935`,
      ts: at,
    }));
    await store.addTallies(
      tallyHeartbeats(probes, { now: at, graceMs: config.graceSeconds * 1000 })
        .tallies,
      { writeId: 'b:release-reads' },
    );

    const aggregator = createAggregator({
      config,
      ...stores,
      heartbeats,
      log: createLogger({ level: 'error', write: () => undefined }),
      clock: () =>
        minuteClosesAt(minute, { graceMs: config.graceSeconds * 1000 }) + 1_000,
    });
    const summary = await aggregator.run(
      minuteClosesAt(minute, { graceMs: config.graceSeconds * 1000 }) + 1_000,
    );

    expect(summary.minutes).toHaveLength(1);
    expect(asked.flat().filter((m) => m < minute)).toEqual([]);
    expect(
      summary.decisions.filter((d) => d.type === 'release').map((d) => d.ip),
    ).toEqual([banned]);
  });
});
