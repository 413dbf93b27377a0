/**
 * Minute math. Heartbeats are bucketed by the epoch minute of their observed
 * time; a minute is "open" until its end plus the grace, and the aggregator
 * only ever reads minutes that have closed, so what it reads is frozen.
 */

export const MINUTE_MS = 60_000;

/** Epoch minute number of a time in ms. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS);
}

export function minuteStart(minute: number): number {
  return minute * MINUTE_MS;
}

export function minuteEnd(minute: number): number {
  return (minute + 1) * MINUTE_MS;
}

/**
 * The bucket id of a minute, "yyyyMMddHHmm" in UTC.
 * @example bucketId(minuteOf(Date.parse('2026-11-24T14:03:27Z'))) // '202611241403'
 */
export function bucketId(minute: number): string {
  return new Date(minuteStart(minute))
    .toISOString()
    .slice(0, 16)
    .replace(/[-T:]/g, '');
}

/** True while heartbeats of `minute` still count: until its end plus the grace. */
export function isMinuteOpen(
  minute: number,
  options: { now: number; graceMs: number },
): boolean {
  return options.now < minuteEnd(minute) + options.graceMs;
}

/** When the aggregator may read `minute`: nothing more can be counted into it. */
export function minuteClosesAt(
  minute: number,
  { graceMs }: { graceMs: number },
): number {
  return minuteEnd(minute) + graceMs;
}

/**
 * The rows of the last `windowMs` before `now`, by the newest heartbeat time
 * of each row (a report), so a live decision judges the trailing window and
 * not whole minutes. Rows without that time are kept by their minute.
 */
export function trailingWindow<
  T extends { minute: number; observedAt?: number },
>(
  rows: readonly T[],
  { now, windowMs }: { now: number; windowMs: number },
): T[] {
  const from = now - windowMs;
  return rows.filter((row) => observedAfter(row, from));
}

/** Whether a row was observed after `from` (epoch ms): by its newest heartbeat time, else by its minute's end. */
export function observedAfter(
  row: { minute: number; observedAt?: number },
  from: number,
): boolean {
  return row.observedAt === undefined
    ? minuteEnd(row.minute) > from
    : row.observedAt > from;
}

/**
 * The minutes a run triggered at `eventTime` aggregates, oldest first: the last
 * minute that ended before eventTime, preceded by any minutes missed since
 * `lastDone`, at most `maxCatchUp` in all. A late, early or repeated run with the
 * same eventTime asks for the same minutes; the ones already done are skipped.
 */
export function minutesToAggregate(options: {
  eventTime: number;
  lastDone: number | undefined;
  maxCatchUp: number;
}): number[] {
  const target = minuteOf(options.eventTime) - 1;
  const earliest = target - options.maxCatchUp + 1;
  const first =
    options.lastDone === undefined
      ? target
      : Math.max(options.lastDone + 1, earliest);
  const minutes: number[] = [];
  for (let minute = first; minute <= target; minute++) minutes.push(minute);
  return minutes;
}

/** The minutes from `from` to `to`, both included (none when `to` is before `from`). */
export const minuteRange = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
