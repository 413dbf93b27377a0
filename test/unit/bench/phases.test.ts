import { describe, expect, it } from 'vitest';
import { phasesOf } from '../../bench/fleet.js';

describe("the fleet bench's phases of an aggregation (phasesOf)", () => {
  it('reads until the last page of heartbeat rows, and writes from the first write to the last', () => {
    const phases = phasesOf([
      { op: 'Query', start: 5, end: 20, partition: 'BAN' },
      { op: 'GetItem', start: 6, end: 90, partition: 'STATE' },
      { op: 'Query', start: 7, end: 300, partition: 'HB#202612020840#' },
      { op: 'Query', start: 310, end: 420, partition: 'HB#202612020840#' },
      { op: 'BatchGetItem', start: 400, end: 480 },
      { op: 'UpdateItem', start: 600, end: 620, partition: 'BANVERSION' },
      { op: 'TransactWriteItems', start: 625, end: 900 },
      { op: 'PutItem', start: 950, end: 960, partition: 'STATE' },
    ]);
    // From the first call (5) to the last row page's end (420); writes 600–960.
    expect(phases).toEqual({ readMs: 415, writesMs: 360 });
  });

  it('says 0 for a phase with no call: a minute with no rows, or one that writes nothing', () => {
    expect(
      phasesOf([{ op: 'GetItem', start: 0, end: 10, partition: 'STATE' }]),
    ).toEqual({ readMs: 0, writesMs: 0 });
  });
});
