import { describe, expect, it } from 'vitest';
import { createChangeBudget } from '../../../../clients/agent/change-budget.js';

const MINUTE = 60_000;

describe('the change report budget', () => {
  it('lets a burst of reports leave at once, then one per refill period', () => {
    const budget = createChangeBudget({ perHour: 15, burst: 5, now: 0 });

    for (let i = 0; i < 5; i++) {
      expect(budget.waitMs(0)).toBe(0);
      budget.spend(0);
    }

    expect(budget.waitMs(0)).toBe(4 * MINUTE);
    expect(budget.waitMs(4 * MINUTE)).toBe(0);
  });

  it('never lets more than the burst plus the hourly budget leave in an hour of constant changes', () => {
    const budget = createChangeBudget({ perHour: 15, burst: 5, now: 0 });
    let sent = 0;

    // A relay that flaps every 5 s for an hour: every chance to report is taken.
    for (let now = 0; now < 60 * MINUTE; now += 5_000) {
      if (budget.waitMs(now) === 0) {
        budget.spend(now);
        sent++;
      }
    }

    expect(sent).toBeLessThanOrEqual(5 + 15);
    expect(sent).toBeGreaterThanOrEqual(15);
  });

  it('stores no more than the burst however long the agent stays quiet', () => {
    const budget = createChangeBudget({ perHour: 15, burst: 5, now: 0 });
    let sent = 0;

    while (budget.waitMs(24 * 60 * MINUTE) === 0 && sent < 100) {
      budget.spend(24 * 60 * MINUTE);
      sent++;
    }

    expect(sent).toBe(5);
  });

  it('sends no change report at all with a budget of 0', () => {
    expect(
      createChangeBudget({ perHour: 0, burst: 5, now: 0 }).waitMs(MINUTE),
    ).toBe(Number.POSITIVE_INFINITY);
  });
});
