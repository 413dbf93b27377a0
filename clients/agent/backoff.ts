/**
 * Exponential backoff with jitter. Pure: the random source is a parameter.
 * Half the delay is fixed and half is random ("equal jitter"), so retries
 * from many machines spread out, yet never come back sooner than half the
 * planned delay.
 * @example backoffDelay({ attempt: 3, minMs: 1000, maxMs: 60000, random: () => 0.5 }) // 6000
 */
export function backoffDelay(options: {
  /** 0 for the first retry. */
  attempt: number;
  minMs: number;
  maxMs: number;
  random: () => number;
}): number {
  const { attempt, minMs, maxMs, random } = options;
  // 2 ** 30 already passes any sane maximum; capping the exponent avoids Infinity.
  const planned = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(planned / 2 + (planned / 2) * random());
}
