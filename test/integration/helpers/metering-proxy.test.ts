import { randomBytes } from 'node:crypto';
import { PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDocumentClient } from '../../../functions/store/client.js';
import { TABLE } from '../../../functions/store/table.js';
import { benchBanWrites } from '../../bench/ban-writes.js';
import { localTable } from '../../helpers/local-tables.js';
import type { MeteringProxy } from '../../helpers/metering-proxy.js';
import { startMeteringProxyOnLocal } from '../../helpers/status-center.js';

describe('the metering proxy', () => {
  let proxy: MeteringProxy;
  const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    await localTable(tableName);
    proxy = await startMeteringProxyOnLocal();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('records how many writes each transaction held, in the order they came, per count', async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    const transact = (tag: string, writes: number) =>
      client.send(
        new TransactWriteCommand({
          TransactItems: benchBanWrites(tableName, tag, writes),
        }),
      );
    proxy.reset();

    await transact('a', 6);
    await client.send(
      new PutCommand({
        TableName: tableName,
        Item: { [TABLE.partitionKey]: 'BENCH#OTHER', [TABLE.sortKey]: 'x' },
      }),
    );
    await transact('b', 2);
    const first = proxy.reset();
    await transact('c', 4);
    const second = proxy.reset();
    client.destroy();

    expect(first.transactionWrites).toEqual([6, 2]);
    expect(first.calls.TransactWriteItems).toBe(2);
    expect(second.transactionWrites).toEqual([4]);
  });

  it("records the bytes of the items each transaction puts, which the bench's made-up bans are padded to", async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    proxy.reset();

    for (const [tag, bytes] of [
      ['small', 0],
      ['padded', 40_000],
    ] as const)
      await client.send(
        new TransactWriteCommand({
          TransactItems: benchBanWrites(tableName, tag, 100, bytes),
        }),
      );
    const [small, padded] = proxy.reset().transactionPutBytes as [
      number,
      number,
    ];
    client.destroy();

    // 25 bans: 75 items put, none padded, then padded to about 40,000 bytes in all.
    expect(small).toBeGreaterThan(75 * 20);
    expect(small).toBeLessThan(75 * 100);
    expect(padded).toBeGreaterThan(40_000 * 0.9);
    expect(padded).toBeLessThan(40_000 * 1.1);
  });
});
