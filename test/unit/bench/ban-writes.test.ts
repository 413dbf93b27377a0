import { describe, expect, it } from 'vitest';
import { TABLE } from '../../../functions/store/table.js';
import { benchBanWrites } from '../../bench/ban-writes.js';

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
