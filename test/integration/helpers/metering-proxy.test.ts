import { randomBytes } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBanStore } from '../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../functions/store/client.js';
import { keys, TABLE } from '../../../functions/store/table.js';
import { ensureTable } from '../../../infra/local/table.js';
import {
  BENCH_VERSION_PARTITION,
  benchBanWrites,
  writeFloorCalls,
} from '../../bench/ban-writes.js';
import type { MeteringProxy } from '../../helpers/metering-proxy.js';
import {
  localEndpoint,
  startMeteringProxyOnLocal,
} from '../../helpers/status-center.js';

describe('the metering proxy', () => {
  let proxy: MeteringProxy;
  const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    await ensureTable({
      endpoint: localEndpoint(),
      region: 'us-east-1',
      tableName,
    });
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

  it("records each transaction's items as sent on the wire, and the bytes of the items it puts", async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    proxy.reset();

    await client.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: tableName,
              Item: { pk: 'BENCH#WIRE', sk: 'a', n: 12, m: { x: true } },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
          },
          {
            Update: {
              TableName: tableName,
              Key: { pk: 'BENCH#WIRE', sk: 'b' },
              UpdateExpression: 'ADD starts :start',
              ExpressionAttributeValues: { ':start': new Set([1]) },
            },
          },
        ],
      }),
    );
    const meter = proxy.reset();
    client.destroy();

    expect(meter.transactions).toEqual([
      [
        {
          Put: {
            TableName: tableName,
            Item: {
              pk: { S: 'BENCH#WIRE' },
              sk: { S: 'a' },
              n: { N: '12' },
              m: { M: { x: { BOOL: true } } },
            },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
        {
          Update: {
            TableName: tableName,
            Key: { pk: { S: 'BENCH#WIRE' }, sk: { S: 'b' } },
            UpdateExpression: 'ADD starts :start',
            ExpressionAttributeValues: { ':start': { NS: ['1'] } },
          },
        },
      ],
    ]);
    // pk 2 + 10, sk 2 + 1, n 1 + 2, m 1 + 3 + (x 1 + 1): only the put counts.
    expect(meter.transactionPutBytes).toEqual([24]);
  });

  /** One ban written by the ban store: one batch of ban changes, in a change window of its own. */
  const banOnce = (client: ReturnType<typeof createDocumentClient>) => {
    const now = Date.now();
    return createBanStore({ client, tableName }).changeBans(
      [
        {
          type: 'ban',
          ban: {
            ip: '198.51.100.7',
            reason: 'test',
            since: now,
            until: now + 60_000,
            manual: false,
            failRatio: 1,
            samples: 10,
            offense: 1,
            rule: 'fail-ratio',
          },
        },
      ],
      now,
    );
  };

  it("counts each partition's UpdateItems that succeeded: the ban store's change window is two on the version item", async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    proxy.reset();

    await banOnce(client);
    // A failed condition writes nothing, and is not counted.
    await expect(
      client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { [TABLE.partitionKey]: 'BENCH#OTHER', [TABLE.sortKey]: 'x' },
          UpdateExpression: 'SET n = :n',
          ConditionExpression: 'attribute_exists(n)',
          ExpressionAttributeValues: { ':n': 1 },
        }),
      ),
    ).rejects.toThrow(ConditionalCheckFailedException);
    const meter = proxy.reset();
    client.destroy();

    expect(meter.updatesOf).toEqual({ [keys.banVersionPartition()]: 2 });
    expect(meter.calls.UpdateItem).toBe(3);
  });

  it("counts the bench write floor's window on its own version item, which it leaves as the store leaves the ban list's", async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
    });
    await banOnce(client);
    proxy.reset();

    for (const call of writeFloorCalls(
      tableName,
      { writes: [8], tag: 'floor', windows: 1 },
      Date.now(),
    ))
      if ('update' in call) await client.send(new UpdateCommand(call.update));
      else await client.send(new TransactWriteCommand(call.transact));
    const meter = proxy.reset();
    const versionItem = async (partition: string) =>
      (
        await client.send(
          new GetCommand({
            TableName: tableName,
            Key: {
              [TABLE.partitionKey]: partition,
              [TABLE.sortKey]: keys.banVersion(),
            },
            ConsistentRead: true,
          }),
        )
      ).Item;
    const bench = await versionItem(BENCH_VERSION_PARTITION);
    const store = await versionItem(keys.banVersionPartition());
    client.destroy();

    expect(meter.updatesOf).toEqual({ [BENCH_VERSION_PARTITION]: 2 });
    expect(meter.transactionWrites).toEqual([8]);
    // Opened and closed: the same attributes of the same kinds as the store's, no window left open.
    const kinds = (item: Record<string, unknown> | undefined) =>
      Object.entries(item ?? {})
        .map(([name, value]) => `${name} ${typeof value}`)
        .sort();
    expect(kinds(bench)).toEqual(kinds(store));
    expect(kinds(bench)).toEqual(['pk string', 'sk string', 'version number']);
  });
});
