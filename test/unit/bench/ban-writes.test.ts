import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  BAN_CHANGE_WINDOW_MS,
  changeWindowUpdate,
} from '../../../functions/store/ban-store.js';
import { keys, TABLE } from '../../../functions/store/table.js';
import type { WriteFloorCall } from '../../bench/ban-writes.js';
import {
  benchBanWrites,
  replayItems,
  replayPrefix,
  writeFloorCalls,
} from '../../bench/ban-writes.js';

const { partitionKey: pk } = TABLE;

/** "Put BENCH#BAN t#0": each write's kind and the partition it names. */
const shapeOf = (writes: Record<string, unknown>[]) =>
  writes.map((write) => {
    const [kind, body] = Object.entries(write)[0] as [
      string,
      { Item?: Record<string, unknown>; Key?: Record<string, unknown> },
    ];
    return `${kind} ${String((body.Item ?? body.Key)?.[pk])}`;
  });

describe('the made-up ban writes of the fleet bench', () => {
  it('writes each ban as the aggregator does: a conditional put, an offense update and two event puts', () => {
    const writes = benchBanWrites('table', 't', 4);

    expect(shapeOf(writes)).toEqual([
      'Put BENCH#BAN',
      'Update BENCH#OFFENSES#t#0',
      'Put BENCH#EVT',
      'Put BENCH#EVTIP#t#0',
    ]);
    expect(writes[0]).toMatchObject({
      Put: { TableName: 'table', ConditionExpression: expect.any(String) },
    });
  });

  it('gives exactly the number of writes asked for, the last ban cut short', () => {
    const writes = benchBanWrites('table', 't', 6);

    expect(shapeOf(writes)).toEqual([
      'Put BENCH#BAN',
      'Update BENCH#OFFENSES#t#0',
      'Put BENCH#EVT',
      'Put BENCH#EVTIP#t#0',
      'Put BENCH#BAN',
      'Update BENCH#OFFENSES#t#1',
    ]);
    expect(benchBanWrites('table', 't', 0)).toEqual([]);
  });
});

/**
 * One transaction of every kind of item, in DynamoDB JSON as the metering
 * proxy records it: a ban's conditional put with nested maps and a TTL, an
 * offense's ADD, a lift's conditional delete, a condition check.
 */
const recorded = (): TransactWriteItem[] => [
  {
    Put: {
      TableName: 'table',
      Item: {
        pk: { S: 'BAN' },
        sk: { S: 'BAN#198.51.100.7' },
        until: { N: '1764000000000' },
        expiresAt: { N: '1764000000' },
        evidence: {
          M: { failRatio: { N: '0.8' }, origins: { L: [{ S: 'a' }] } },
        },
      },
      ConditionExpression: 'attribute_not_exists(#pk) OR #until <= :now',
      ExpressionAttributeNames: { '#pk': 'pk', '#until': 'until' },
      ExpressionAttributeValues: { ':now': { N: '1763999990000' } },
    },
  },
  {
    Update: {
      TableName: 'table',
      Key: { pk: { S: 'OFFENSES#198.51.100.7' }, sk: { S: 'OFFENSES' } },
      UpdateExpression: 'ADD starts :start SET ip = :ip',
      ExpressionAttributeValues: {
        ':start': { NS: ['1763999990000'] },
        ':ip': { S: '198.51.100.7' },
      },
    },
  },
  {
    Delete: {
      TableName: 'table',
      Key: { pk: { S: 'BAN' }, sk: { S: 'BAN#203.0.113.9' } },
      ConditionExpression: '#until = :seen',
      ExpressionAttributeNames: { '#until': 'until' },
      ExpressionAttributeValues: { ':seen': { N: '1' } },
    },
  },
  {
    ConditionCheck: {
      TableName: 'table',
      Key: { pk: { S: 'STATE' }, sk: { S: 'PROGRESS' } },
      ConditionExpression: 'attribute_exists(pk)',
    },
  },
];

describe("the write floor's replay of the aggregation's transactions", () => {
  /** Each item's partition key, whatever its kind. */
  const partitions = (items: TransactWriteItem[]) =>
    items.map(
      (item) =>
        (item.Put?.Item ??
          item.Update?.Key ??
          item.Delete?.Key ??
          item.ConditionCheck?.Key)?.[pk]?.S,
    );

  it("moves the partition key of a Put, an Update, a Delete and a ConditionCheck under the replay's prefix", () => {
    expect(partitions(replayItems(recorded(), 'floor#7'))).toEqual([
      'BENCH#floor#7#BAN',
      'BENCH#floor#7#OFFENSES#198.51.100.7',
      'BENCH#floor#7#BAN',
      'BENCH#floor#7#STATE',
    ]);
  });

  it('changes nothing else: sort keys, attributes, expressions and values go as the aggregation sent them', () => {
    const replayed = replayItems(recorded(), 'floor#7');

    // The partition keys put back, the replay is the recorded transaction.
    for (const item of replayed) {
      const key =
        item.Put?.Item ??
        item.Update?.Key ??
        item.Delete?.Key ??
        item.ConditionCheck?.Key;
      if (key)
        key[pk] = { S: String(key[pk]?.S).slice('BENCH#floor#7#'.length) };
    }
    expect(replayed).toEqual(recorded());
  });

  it('leaves the recorded transaction as it was', () => {
    const original = recorded();

    replayItems(original, 'floor#7');

    expect(original).toEqual(recorded());
  });

  it('gives every replay tag partitions of its own, apart from the originals', () => {
    const first = partitions(replayItems(recorded(), 'floor#7'));
    const second = partitions(replayItems(recorded(), 'floor#8'));
    const originals = partitions(recorded());

    for (const key of first) {
      expect(second).not.toContain(key);
      expect(originals).not.toContain(key);
      expect(key?.startsWith(replayPrefix('floor#7'))).toBe(true);
    }
  });

  it('refuses an item it cannot move rather than send it where the aggregation wrote', () => {
    expect(() =>
      replayItems(
        [{ Put: { TableName: 'table', Item: { sk: { S: 'x' } } } }],
        't',
      ),
    ).toThrow(/partition key/);
    expect(() =>
      replayItems(
        [{ Put: { TableName: 'table', Item: { pk: { N: '1' } } } }],
        't',
      ),
    ).toThrow(/partition key/);
    expect(() => replayItems([{} as TransactWriteItem], 't')).toThrow(
      /no known kind/,
    );
  });
});

/** Transactions of 1, 2, … items: what the calls carry is checked above, here only where. */
const transactionsOf = (...sizes: number[]) =>
  sizes.map((size) => recorded().slice(0, size));

/** "update open", "update close" or "transact 8": each call of a write floor by what it does. */
const callsOf = (calls: WriteFloorCall[]) =>
  calls.map((call) =>
    'update' in call
      ? `update ${String(call.update.UpdateExpression).includes('REMOVE') ? 'close' : 'open'}`
      : `transact ${call.transact.TransactItems?.length}`,
  );

describe('the write floor of the fleet bench', () => {
  const now = Date.parse('2026-11-24T14:03:00Z');

  it('writes the transactions inside a change window shaped as the ban store opens and closes it', () => {
    const calls = writeFloorCalls(
      'table',
      { transactions: transactionsOf(4, 2), tag: 't', windows: 1 },
      now,
    );

    expect(callsOf(calls)).toEqual([
      'update open',
      'transact 4',
      'transact 2',
      'update close',
    ]);
    const until = now + BAN_CHANGE_WINDOW_MS;
    expect(calls[0]).toEqual({
      update: expect.objectContaining({
        TableName: 'table',
        ...changeWindowUpdate('open', until),
      }),
    });
    expect(calls.at(-1)).toEqual({
      update: expect.objectContaining({
        TableName: 'table',
        ...changeWindowUpdate('close', until),
      }),
    });
  });

  it("opens its windows on a version item of its own, never the ban list's, which the aggregation reads", () => {
    const calls = writeFloorCalls(
      'table',
      { transactions: transactionsOf(4), tag: 't', windows: 1 },
      now,
    );

    const keysUpdated = calls.flatMap((call) =>
      'update' in call ? [call.update.Key] : [],
    );
    expect(keysUpdated).toHaveLength(2);
    for (const key of keysUpdated) {
      expect(key?.[TABLE.partitionKey]).toMatch(/^BENCH#/);
      expect(key?.[TABLE.partitionKey]).not.toBe(keys.banVersionPartition());
    }
  });

  it("sends the aggregation's transactions in order, each moved to the replay's partitions", () => {
    const transactions = transactionsOf(4, 1);

    const calls = writeFloorCalls(
      'table',
      { transactions, tag: 'floor#7', windows: 1 },
      now,
    );

    expect(
      calls.flatMap((call) => ('transact' in call ? [call.transact] : [])),
    ).toEqual(
      transactions.map((items) => ({
        TransactItems: replayItems(items, 'floor#7'),
      })),
    );
  });

  it('opens as many windows as asked, the transactions shared out among them in order, and none by default', () => {
    const calls = writeFloorCalls(
      'table',
      { transactions: transactionsOf(1, 2, 3), tag: 't', windows: 2 },
      now,
    );

    expect(callsOf(calls)).toEqual([
      'update open',
      'transact 1',
      'update close',
      'update open',
      'transact 2',
      'transact 3',
      'update close',
    ]);
    expect(
      callsOf(
        writeFloorCalls(
          'table',
          { transactions: transactionsOf(4), tag: 't' },
          now,
        ),
      ),
    ).toEqual(['transact 4']);
    expect(
      writeFloorCalls('table', { transactions: [], tag: 't' }, now),
    ).toEqual([]);
  });
});
