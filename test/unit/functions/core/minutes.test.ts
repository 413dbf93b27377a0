import { describe, expect, it } from 'vitest';
import {
  bucketId,
  isMinuteOpen,
  MINUTE_MS,
  minuteClosesAt,
  minuteEnd,
  minuteOf,
  minuteStart,
  minutesToAggregate,
} from '../../../../functions/core/minutes.js';

const minuteAt = (iso: string) => minuteOf(Date.parse(iso));

describe('minuteOf and bucketId', () => {
  it.each([
    ['2026-11-24T14:03:27.000Z', '202611241403'],
    ['2026-11-24T14:03:00.000Z', '202611241403'],
    ['2026-11-24T14:03:59.999Z', '202611241403'],
    // hour boundary
    ['2026-11-24T14:59:59.999Z', '202611241459'],
    ['2026-11-24T15:00:00.000Z', '202611241500'],
    // day boundary
    ['2026-11-24T23:59:30.000Z', '202611242359'],
    ['2026-11-25T00:00:00.000Z', '202611250000'],
    // month and year boundary
    ['2026-12-31T23:59:59.999Z', '202612312359'],
    ['2027-01-01T00:00:00.000Z', '202701010000'],
    // leap day
    ['2028-02-29T12:00:00.000Z', '202802291200'],
    // a time given with an offset lands in its UTC minute
    ['2026-11-24T16:03:27+02:00', '202611241403'],
  ])('files %s under bucket %s', (iso, expected) => {
    expect(bucketId(minuteAt(iso))).toBe(expected);
  });

  it('gives consecutive minutes consecutive bucket ids across a year boundary', () => {
    const last = minuteAt('2026-12-31T23:59:00Z');
    expect([last - 1, last, last + 1].map(bucketId)).toEqual([
      '202612312358',
      '202612312359',
      '202701010000',
    ]);
  });

  it('sorts bucket ids in time order', () => {
    const minutes = [
      minuteAt('2027-01-01T00:00:00Z'),
      minuteAt('2026-12-31T23:59:00Z'),
      minuteAt('2026-02-01T09:05:00Z'),
    ];
    const ids = minutes.map(bucketId);
    expect([...ids].sort()).toEqual(
      [...minutes].sort((a, b) => a - b).map(bucketId),
    );
  });

  it('puts a minute start and end one minute apart, the start inside the minute and the end outside', () => {
    const minute = minuteAt('2026-11-24T14:03:27Z');
    expect(minuteEnd(minute) - minuteStart(minute)).toBe(MINUTE_MS);
    expect(minuteOf(minuteStart(minute))).toBe(minute);
    expect(minuteOf(minuteEnd(minute))).toBe(minute + 1);
    expect(minuteOf(minuteEnd(minute) - 1)).toBe(minute);
  });
});

describe('isMinuteOpen at the grace edge', () => {
  const minute = minuteAt('2026-11-24T14:03:00Z');
  const end = minuteEnd(minute);
  const graceMs = 10_000;

  it.each([
    ['during the minute', minuteStart(minute) + 30_000, true],
    ['at the end of the minute', end, true],
    ['1 ms before the grace runs out', end + graceMs - 1, true],
    ['exactly when the grace runs out', end + graceMs, false],
    ['after the grace', end + graceMs + 1, false],
  ])('a minute is open %s: %s', (_when, now, expected) => {
    expect(isMinuteOpen(minute, { now, graceMs })).toBe(expected);
  });

  it('closes a minute at its end when there is no grace', () => {
    expect(isMinuteOpen(minute, { now: end - 1, graceMs: 0 })).toBe(true);
    expect(isMinuteOpen(minute, { now: end, graceMs: 0 })).toBe(false);
  });

  it('closes a minute exactly when minuteClosesAt says', () => {
    const closesAt = minuteClosesAt(minute, { graceMs });
    expect(isMinuteOpen(minute, { now: closesAt - 1, graceMs })).toBe(true);
    expect(isMinuteOpen(minute, { now: closesAt, graceMs })).toBe(false);
  });
});

describe('minutesToAggregate', () => {
  // A run fired 5 s into 14:10 aggregates 14:09 at the latest.
  const eventTime = Date.parse('2026-11-24T14:10:05Z');
  const target = minuteAt('2026-11-24T14:09:00Z');

  it('asks for only the minute that just ended on the first run', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: undefined, maxCatchUp: 10 }),
    ).toEqual([target]);
  });

  it('asks for the next minute after an on-time previous run', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: target - 1, maxCatchUp: 10 }),
    ).toEqual([target]);
  });

  it('catches up on missed minutes, oldest first', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: target - 4, maxCatchUp: 10 }),
    ).toEqual([target - 3, target - 2, target - 1, target]);
  });

  it('catches up on at most maxCatchUp minutes, ending with the minute that just ended', () => {
    const minutes = minutesToAggregate({
      eventTime,
      lastDone: target - 100,
      maxCatchUp: 10,
    });
    expect(minutes).toHaveLength(10);
    expect(minutes[0]).toBe(target - 9);
    expect(minutes.at(-1)).toBe(target);
  });

  it('asks for nothing when the minute that just ended is already done', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: target, maxCatchUp: 10 }),
    ).toEqual([]);
  });

  it('asks for nothing when a later run already went further (an early or late delivery)', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: target + 3, maxCatchUp: 10 }),
    ).toEqual([]);
  });

  it('gives the same answer to a repeated call with the same event time', () => {
    const options = { eventTime, lastDone: target - 3, maxCatchUp: 10 };
    expect(minutesToAggregate(options)).toEqual(minutesToAggregate(options));
  });

  it('gives the same answer anywhere inside the minute the event fired in', () => {
    const early = minutesToAggregate({
      eventTime: Date.parse('2026-11-24T14:10:00.000Z'),
      lastDone: target - 2,
      maxCatchUp: 10,
    });
    const late = minutesToAggregate({
      eventTime: Date.parse('2026-11-24T14:10:59.999Z'),
      lastDone: target - 2,
      maxCatchUp: 10,
    });
    expect(late).toEqual(early);
  });

  it('asks for one minute when maxCatchUp is 1, however far behind', () => {
    expect(
      minutesToAggregate({ eventTime, lastDone: target - 50, maxCatchUp: 1 }),
    ).toEqual([target]);
  });
});
