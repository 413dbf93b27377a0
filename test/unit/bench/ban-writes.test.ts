import { describe, expect, it } from 'vitest';
import {
  BAN_CHANGE_WINDOW_MS,
  changeWindowUpdate,
} from '../../../functions/store/ban-store.js';
import { keys, TABLE } from '../../../functions/store/table.js';
import type { WriteFloorCall } from '../../bench/ban-writes.js';
import { benchBanWrites, writeFloorCalls } from '../../bench/ban-writes.js';

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
      { writes: [8, 4], tag: 't', windows: 1 },
      now,
    );

    expect(callsOf(calls)).toEqual([
      'update open',
      'transact 8',
      'transact 4',
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
      { writes: [4], tag: 't', windows: 1 },
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

  it('opens as many windows as asked, the transactions shared out among them in order, and none by default', () => {
    const calls = writeFloorCalls(
      'table',
      { writes: [1, 2, 3], tag: 't', windows: 2 },
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
      callsOf(writeFloorCalls('table', { writes: [4], tag: 't' }, now)),
    ).toEqual(['transact 4']);
    expect(writeFloorCalls('table', { writes: [], tag: 't' }, now)).toEqual([]);
  });
});
