/**
 * The budget of immediate change reports: a token bucket that holds up to
 * `burst` reports and refills `perHour` an hour. It bounds the agent's
 * request rate (the status center's bill) to one periodic report per interval
 * plus `perHour / 60` a minute on average, while the first changes of an
 * incident still leave at once. Pure: time is a parameter.
 * @example
 * const budget = createChangeBudget({ perHour: 15, burst: 5, now: 0 });
 * budget.waitMs(0);  // 0: a report may leave now
 * budget.spend(0);
 */
export type ChangeBudget = {
  /** How long until a change report may leave; Infinity when the budget is 0. */
  waitMs(now: number): number;
  /** Takes one report's token (never below zero). */
  spend(now: number): void;
};

const HOUR_MS = 3_600_000;

export function createChangeBudget(options: {
  perHour: number;
  burst: number;
  now: number;
}): ChangeBudget {
  const { perHour, burst } = options;
  let tokens = perHour > 0 ? burst : 0;
  let at = options.now;
  const refill = (now: number) => {
    tokens = Math.min(
      burst,
      tokens + (Math.max(0, now - at) * perHour) / HOUR_MS,
    );
    at = Math.max(at, now);
  };
  return {
    waitMs(now) {
      if (perHour <= 0) return Number.POSITIVE_INFINITY;
      refill(now);
      return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * HOUR_MS) / perHour);
    },
    spend(now) {
      refill(now);
      tokens = Math.max(0, tokens - 1);
    },
  };
}
