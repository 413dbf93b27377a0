import { describe, expect, it } from 'vitest';
import { decideMinute } from '../../../../../functions/core/policy.js';
import { WindowTally } from '../../../../../functions/core/tally.js';
import {
  automaticBan,
  banned,
  failing,
  fleetRows,
  input,
  ipOf,
  KNOBS,
  lease,
  NOW,
  S,
  TEN,
} from '../policy-fixtures.js';

/**
 * A pass's closing and live decisions judge one fold with the same leases
 * and knobs, and share the fold's evidence; what depends on the decision
 * (its time, the bans in force, offenses) must still be its own.
 */
describe('evidence shared between decisions over one fold', () => {
  const window = fleetRows(TEN, undefined, failing(ipOf(3)));
  const fold = () =>
    WindowTally.of(window, { graceMs: KNOBS.graceSeconds * 1000 });

  it('judges the bans in force at each decision’s own time over the same fold', () => {
    const windowTally = fold();
    // Banned until 5 s after NOW: in force at NOW, over 10 s later.
    const ban = automaticBan(ipOf(3), NOW - 3_600_000 + 5 * S);
    const at = (now: number) =>
      decideMinute(input({ now, window, windowTally, bans: [ban] }), KNOBS);

    expect(banned(at(NOW))).toEqual([]);
    expect(banned(at(NOW + 10 * S))).toEqual([ipOf(3)]);
    // And back: the earlier time still sees the ban in force.
    expect(banned(at(NOW))).toEqual([]);
  });

  it('gives the same evidence as a fold of its own, and none of another lease set', () => {
    const windowTally = fold();
    const leases = Object.fromEntries(TEN.map((ip) => [ip, lease(5 * S)]));
    const shared = decideMinute(input({ window, windowTally, leases }), KNOBS);
    const again = decideMinute(input({ window, windowTally, leases }), KNOBS);
    const alone = decideMinute(input({ window, leases }), KNOBS);

    expect(again.reporting).toBe(shared.reporting);
    expect(alone.reporting).toEqual(shared.reporting);
    expect(banned(alone)).toEqual(banned(shared));
    // Other leases (a copy): gathered again, not taken from the earlier decision.
    const other = decideMinute(
      input({ window, windowTally, leases: { ...leases } }),
      KNOBS,
    );
    expect(other.reporting).not.toBe(shared.reporting);
    expect(other.reporting).toEqual(shared.reporting);
  });
});
