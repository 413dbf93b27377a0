import { randomBytes } from 'node:crypto';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../../functions/store/client.js';
import { TABLE } from '../../../functions/store/table.js';
import {
  BAN_WRITE_PATHS,
  benchBanWritePaths,
} from '../../bench/ban-write-paths.js';
import { localEndpoint, localTable } from '../../helpers/local-tables.js';

describe('the ban-write paths bench', () => {
  const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  beforeAll(() => localTable(tableName));
  afterAll(() => client.destroy());

  const itemsIn = async (partition: string) =>
    (
      await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
          ExpressionAttributeValues: { ':pk': partition },
        }),
      )
    ).Items ?? [];

  it('writes every ban, offense and event by every path, so each path is timed on the same work', async () => {
    const bans = 30;
    const rows = await benchBanWritePaths(
      client,
      tableName,
      bans,
      1,
      () => undefined,
    );

    expect(rows.map(({ row }) => row[1])).toEqual(
      BAN_WRITE_PATHS.map(({ label }) => label),
    );
    const banned = await itemsIn('BENCH#BAN');
    const events = await itemsIn('BENCH#EVT');
    for (const p of BAN_WRITE_PATHS.keys()) {
      const tag = `paths#0#${p}#`;
      const ofPath = (items: Record<string, unknown>[]) =>
        items.filter((item) => String(item[TABLE.sortKey]).startsWith(tag));
      expect(ofPath(banned)).toHaveLength(bans);
      expect(ofPath(events)).toHaveLength(bans);
      const last = `${tag}${bans - 1}`;
      expect(await itemsIn(`BENCH#EVTIP#${last}`)).toHaveLength(1);
      const [offense] = await itemsIn(`BENCH#OFFENSES#${last}`);
      expect(offense?.starts).toEqual(new Set([1]));
    }
    // 120 writes: 2 transactions of at most 100; without them, 90 puts (3 a
    // ban) in 4 batches of at most 25, and a put per ban.
    expect(rows.map(({ row }) => row[3])).toEqual([2, 2, 4 + bans]);
  });
});
