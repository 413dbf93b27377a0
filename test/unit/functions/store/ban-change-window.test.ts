import { describe, expect, it } from 'vitest';
import { schedules } from '../../../../functions/routes.js';
import { BAN_CHANGE_WINDOW_MS } from '../../../../functions/store/ban-store.js';

describe('the ban change window', () => {
  it('outlasts the aggregate function, so a run killed mid-batch cannot leave a reader keeping a list that misses its writes', () => {
    // The function's timeout, plus a minute for a write DynamoDB accepted just before it.
    expect(BAN_CHANGE_WINDOW_MS).toBeGreaterThanOrEqual(
      schedules.aggregate.timeoutSeconds * 1000 + 60_000,
    );
  });
});
