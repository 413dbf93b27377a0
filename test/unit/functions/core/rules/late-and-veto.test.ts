import { describe, expect, it } from 'vitest';
import { decideMinute } from '../../../../../functions/core/policy.js';
import type { MinuteTally } from '../../../../../functions/core/tally.js';
import { NewestReports } from '../../../../../functions/core/tally.js';
import {
  banned,
  input,
  ipOf,
  KNOBS,
  lease,
  NOW,
  ORIGINS,
  row,
  S,
  TEN,
} from '../policy-fixtures.js';

/** One report of `ip` with 12 relay heartbeats, observed `observedAgo` and received `receivedAgo` ms before NOW. */
const report = (
  ip: string,
  status: 'ok' | 'connect_failed',
  observedAgo: number,
  receivedAgo = observedAgo,
): MinuteTally =>
  row(
    ip,
    ORIGINS.map((origin) => ({ origin, [status]: 6 })),
    { observedAt: NOW - observedAgo, receivedAt: NOW - receivedAgo },
  );
const others = TEN.filter((ip) => ip !== ipOf(7)).map((ip) =>
  report(ip, 'ok', 20 * S),
);
const bannedIps = (window: MinuteTally[]) =>
  banned(decideMinute(input({ window }), KNOBS));

describe('fail-ratio: late reports and newer healthy samples', () => {
  it('bans on failures delivered on time', () => {
    expect(
      bannedIps([...others, report(ipOf(7), 'connect_failed', 20 * S)]),
    ).toEqual([ipOf(7)]);
  });

  it('never counts failures delivered more than the grace after they were observed (a backlog), and shows them', () => {
    const result = decideMinute(
      input({
        window: [...others, report(ipOf(7), 'connect_failed', 50 * S, 5 * S)],
      }),
      KNOBS,
    );
    expect(result.decisions).toEqual([]);
    expect(result.reporting.find((e) => e.ip === ipOf(7))).toMatchObject({
      connectFailed: 0,
      lateFailures: 12,
      samples: 0,
    });
  });

  it('treats what a returning IP observed before its return as backlog, however fresh: a repaired machine is judged on what it says now', () => {
    // Silent until NOW - 10 s; its first report back (observed 3 s before it was delivered) fails, the next is healthy.
    const returned = { [ipOf(7)]: lease(5 * S, 60, 1, 10 * S) };
    const backlog = report(ipOf(7), 'connect_failed', 13 * S, 10 * S);
    const result = decideMinute(
      input({ window: [...others, backlog], leases: returned }),
      KNOBS,
    );
    expect(result.decisions).toEqual([]);
    expect(result.reporting.find((e) => e.ip === ipOf(7))).toMatchObject({
      lateFailures: 12,
      connectFailed: 0,
    });
    // Failures observed after the return count as usual.
    expect(
      decideMinute(
        input({
          window: [...others, report(ipOf(7), 'connect_failed', 2 * S)],
          leases: returned,
        }),
        KNOBS,
      ).decisions,
    ).toMatchObject([{ type: 'ban', ip: ipOf(7) }]);
  });

  it('counts a report delivered exactly at the grace as on time', () => {
    expect(
      bannedIps([...others, report(ipOf(7), 'connect_failed', 30 * S, 20 * S)]),
    ).toEqual([ipOf(7)]);
  });

  it('lets a newer healthy report veto a ban on older failures', () => {
    expect(
      bannedIps([
        ...others,
        report(ipOf(7), 'connect_failed', 40 * S),
        report(ipOf(7), 'ok', 5 * S),
      ]),
    ).toEqual([]);
  });

  it('does not let an older healthy report veto newer failures', () => {
    const failing = [
      report(ipOf(7), 'connect_failed', 10 * S),
      report(ipOf(7), 'connect_failed', 5 * S),
    ];
    expect(
      bannedIps([...others, report(ipOf(7), 'ok', 40 * S), ...failing]),
    ).toEqual([ipOf(7)]);
  });

  it('needs a little volume to veto: one healthy heartbeat does not outvote twelve failures', () => {
    const single = row(ipOf(7), [{ origin: ORIGINS[0]!, ok: 1 }], {
      observedAt: NOW - 2 * S,
      receivedAt: NOW - 2 * S,
    });
    expect(
      bannedIps([...others, report(ipOf(7), 'connect_failed', 20 * S), single]),
    ).toEqual([ipOf(7)]);
  });

  it('reads the newer rows of a closing decision (`latest`) for the veto only', () => {
    const result = decideMinute(
      input({
        window: [...others, report(ipOf(7), 'connect_failed', 40 * S)],
        latest: NewestReports.of([report(ipOf(7), 'ok', -20 * S)]),
      }),
      KNOBS,
    );
    expect(result.decisions).toEqual([]);
    expect(result.reporting.find((e) => e.ip === ipOf(7))).toMatchObject({
      connectFailed: 12,
      ok: 0,
    });
  });
});
