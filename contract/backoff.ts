/**
 * Exponential backoff with jitter: the one delay rule of every retry in
 * relaywatch (the agent restarting a relay and re-sending a report, the store
 * re-sending DynamoDB's unprocessed items). Pure: the random source is a
 * parameter. In the contract because it is also how a client must retry the
 * status center: back off, and honour Retry-After.
 *
 * The planned delay starts at `minMs`, doubles per attempt and stops at
 * `maxMs`. With "equal" jitter (the default) half of it is fixed and half
 * random, so retries from many machines spread out yet never come back sooner
 * than half the plan; with "full" jitter all of it is random (what AWS advises
 * for retries against DynamoDB). `notBeforeMs` is a delay the other side asked
 * for (Retry-After): honoured up to `maxMs`.
 * @example backoffDelay({ attempt: 3, minMs: 1000, maxMs: 60000, random: () => 0.5 }) // 6000
 */
export function backoffDelay(options: {
  /** 0 for the first retry. */
  attempt: number;
  minMs: number;
  maxMs: number;
  random: () => number;
  jitter?: 'equal' | 'full';
  notBeforeMs?: number;
}): number {
  const { attempt, minMs, maxMs, random } = options;
  // 2 ** 30 already passes any sane maximum; capping the exponent avoids Infinity.
  const planned = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  const delay = Math.round(
    options.jitter === 'full'
      ? planned * random()
      : planned / 2 + (planned / 2) * random(),
  );
  return Math.min(maxMs, Math.max(options.notBeforeMs ?? 0, delay));
}
