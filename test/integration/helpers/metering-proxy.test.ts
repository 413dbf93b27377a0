import { randomBytes } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import {
  ConditionalCheckFailedException,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBanStore } from '../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../functions/store/client.js';
import { createEventStore } from '../../../functions/store/event-store.js';
import { createStateStore } from '../../../functions/store/state-store.js';
import { keys, TABLE } from '../../../functions/store/table.js';
import {
  BENCH_VERSION_PARTITION,
  benchBanWrites,
  replayItems,
  sendWriteFloor,
  writeFloorCalls,
} from '../../bench/ban-writes.js';
import { localTable } from '../../helpers/local-tables.js';
import type { MeteringProxy } from '../../helpers/metering-proxy.js';
import { startMeteringProxyOnLocal } from '../../helpers/status-center.js';

describe('the metering proxy', () => {
  let proxy: MeteringProxy;
  /** A client whose calls go through the proxy to the suite's DynamoDB Local. */
  const proxiedClient = () =>
    createDocumentClient({ region: 'us-east-1', endpoint: proxy.endpoint });
  const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;
  beforeAll(async () => {
    await localTable(tableName);
    proxy = await startMeteringProxyOnLocal();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('records how many writes each transaction held, in the order they came, per count', async () => {
    const client = proxiedClient();
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

  it("records each transaction's items as sent on the wire, and the bytes of the items it puts", async () => {
    const client = proxiedClient();
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
  const banOnce = (
    client: ReturnType<typeof createDocumentClient>,
    ip = '198.51.100.7',
  ) => {
    const now = Date.now();
    return createBanStore({ client, tableName }).changeBans(
      [
        {
          type: 'ban',
          ban: {
            ip,
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

  /** A ban written through the proxy, and the transactions the meter recorded of it. */
  const recordedBan = async (ip: string) => {
    const client = proxiedClient();
    proxy.reset();
    await banOnce(client, ip);
    return { client, transactions: proxy.reset().transactions };
  };

  it("counts each partition's UpdateItems that succeeded: the ban store's change window is two on the version item", async () => {
    const client = proxiedClient();
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
    const { client, transactions } = await recordedBan('198.51.100.8');

    await sendWriteFloor(
      client,
      writeFloorCalls(
        tableName,
        { transactions, tag: 'window', windows: 1 },
        Date.now(),
      ),
    );
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
    expect(meter.transactionWrites).toEqual([1]);
    // Opened and closed: the same attributes of the same kinds as the store's, no window left open.
    const kinds = (item: Record<string, unknown> | undefined) =>
      Object.entries(item ?? {})
        .map(([name, value]) => `${name} ${typeof value}`)
        .sort();
    expect(kinds(bench)).toEqual(kinds(store));
    expect(kinds(bench)).toEqual(['pk string', 'sk string', 'version number']);
  });

  it("replays a ban store's transactions item for item under the replay's keys, leaving the originals as they were", async () => {
    const client = proxiedClient();
    const state = createStateStore({ client, tableName });
    const events = createEventStore({ client, tableName, eventTtlDays: 30 });
    const now = Date.now();
    // Two bans as the aggregator writes them: each with its offense and its two event items.
    const changes = ['198.51.100.21', '198.51.100.22'].map((ip) => {
      const ban = {
        ip,
        reason: 'test',
        since: now,
        until: now + 60_000,
        manual: false,
        failRatio: 0.9,
        samples: 40,
        offense: 1,
        rule: 'fail-ratio',
      };
      return {
        type: 'ban' as const,
        ban,
        also: [
          state.offenseItem(ip, now),
          ...events.eventItems({
            type: 'ban',
            at: new Date(now).toISOString(),
            ip,
            minute: '202611241403',
            enforced: true,
            rule: 'fail-ratio',
            evidence: { failRatio: 0.9, samples: 40, relays: 12, origins: 3 },
          }),
        ],
      };
    });
    proxy.reset();
    await createBanStore({ client, tableName }).changeBans(changes, now);
    const { transactions } = proxy.reset();
    /** Every item a transaction wrote, read as stored (wire format). */
    const stored = async (items: ReturnType<typeof replayItems>) =>
      Promise.all(
        items.map(async (item) => {
          const written = item.Put?.Item ?? item.Update?.Key;
          const Key = {
            pk: written?.pk as AttributeValue,
            sk: written?.sk as AttributeValue,
          };
          const answer = await client.send(
            new GetItemCommand({
              TableName: tableName,
              Key,
              ConsistentRead: true,
            }),
          );
          return answer.Item;
        }),
      );
    const recorded = transactions.flat();
    const before = await stored(recorded);
    const tag = `replay#${randomBytes(4).toString('hex')}`;

    await sendWriteFloor(
      client,
      writeFloorCalls(tableName, { transactions, tag, windows: 1 }, now),
    );
    const replayed = await stored(replayItems(recorded, tag));
    const after = await stored(recorded);
    const sameButKey = (item: Record<string, AttributeValue> | undefined) => {
      const { pk: _pk, ...rest } = item ?? {};
      return rest;
    };
    client.destroy();

    // A ban, an offense update and two event puts per ban, in one transaction.
    expect(recorded.map((item) => Object.keys(item)[0])).toEqual(
      Array(2).fill(['Put', 'Update', 'Put', 'Put']).flat(),
    );
    expect(before.every((item) => item !== undefined)).toBe(true);
    expect(after).toEqual(before);
    for (const [n, item] of replayed.entries()) {
      expect(item?.pk?.S).toBe(`BENCH#${tag}#${before[n]?.pk?.S}`);
      expect(sameButKey(item)).toEqual(sameButKey(before[n]));
    }
    // Nested maps arrive whole: the event's evidence is the original's.
    expect(replayed[2]?.event?.M?.evidence).toEqual(
      before[2]?.event?.M?.evidence,
    );
    expect(replayed[2]?.event?.M?.evidence?.M?.relays).toEqual({ N: '12' });
  });

  it('fails a replayed transaction that is cancelled rather than leave it out', async () => {
    const { client, transactions } = await recordedBan('198.51.100.9');
    const calls = writeFloorCalls(
      tableName,
      { transactions, tag: `twice#${randomBytes(4).toString('hex')}` },
      Date.now(),
    );

    await sendWriteFloor(client, calls);
    // The same keys again: the ban put's condition (no ban in force) now fails.
    await expect(sendWriteFloor(client, calls)).rejects.toThrow(
      /replayed transaction 1 of 1 was cancelled: item 0 ConditionalCheckFailed/,
    );
    client.destroy();
  });
});
