import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ban } from '../../../../functions/core/blocklist.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import { ensureTable } from '../../../../infra/local/table.js';
import { localEndpoint } from '../../../helpers/status-center.js';

const NOW = Date.now();
const banOf = (n: number, since = NOW): Ban => ({
  ip: `192.0.2.${n}`,
  reason: 'connect failures 9/10 (90%) >= 50%',
  since,
  until: since + 3_600_000,
  manual: false,
  failRatio: 0.9,
  samples: 10,
  offense: 1,
  rule: 'fail-ratio',
});

describe('bans applied in batches on DynamoDB Local', () => {
  const tableName = `relaywatch-bans-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  const bans = createBanStore({ client, tableName });
  const state = createStateStore({ client, tableName });

  beforeAll(async () => {
    await ensureTable({
      endpoint: localEndpoint(),
      region: 'us-east-1',
      tableName,
    });
  });
  afterAll(() => client.destroy());

  it('writes every ban with its offense, leaves out the one already in force, and bumps the version once a batch', async () => {
    // A ban in force already (another run, or an operator) on IP 7.
    const earlier = banOf(7, NOW - 60_000);
    await bans.putBanIfNoneInForce(earlier, NOW - 60_000);
    const versionBefore = await bans.getVersion();

    const wanted = Array.from({ length: 60 }, (_, n) => banOf(n + 1));
    const applied = await bans.putBansIfNoneInForce(
      wanted.map((ban) => ({
        ban,
        also: [state.offenseItem(ban.ip, ban.since)],
      })),
      NOW,
    );

    expect(applied).toEqual(wanted.map((ban) => ban.ip !== '192.0.2.7'));
    const listed = await bans.listBansConsistent(NOW);
    expect(listed.map((ban) => ban.ip).sort()).toEqual(
      wanted.map((ban) => ban.ip).sort(),
    );
    // IP 7 keeps the ban it had.
    expect(listed.find((ban) => ban.ip === '192.0.2.7')?.since).toBe(
      earlier.since,
    );
    const offenses = await state.getOffenses(wanted.map((ban) => ban.ip));
    expect(offenses['192.0.2.1']).toEqual([NOW]);
    expect(offenses['192.0.2.60']).toEqual([NOW]);
    // The refused ban's offense is not written: it went with its ban.
    expect(offenses['192.0.2.7']).toBeUndefined();
    // 60 bans: two batches, each bumping the version.
    expect((await bans.getVersion()) - versionBefore).toBe(2);
  });
});
