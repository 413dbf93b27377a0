import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregator } from '../../../../functions/aggregator.js';
import type { Ban } from '../../../../functions/core/blocklist.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import { createLogger } from '../../../../functions/log.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  minuteOfRelays,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * Offenses decide how long a new ban lasts; an IP banned already cannot be
 * banned again, so the aggregator reads only the offenses of failing IPs
 * without a ban in force (a steady minute, whose failing IPs are all banned,
 * reads none).
 */
const stillBanned = '203.0.113.7';
const bannedBefore = '203.0.113.8';
const banOf = (ip: string, since: number, until: number): Ban => ({
  ip,
  reason: 'connect failures 12/12 (100%) >= 50%',
  since,
  until,
  manual: false,
  failRatio: 1,
  samples: 12,
  offense: 1,
  rule: 'fail-ratio',
});

/**
 * A status center whose minute `first` holds ten IPs' reports: two failing,
 * one of them still banned, the other banned two hours ago (over now) with
 * its offense on record. Its clock stands in the next minute, past the grace.
 */
async function minuteWithOffenses() {
  const first = minuteOf(Date.now()) + 1;
  let now = minuteStart(first) + 30_000;
  const center = await startStatusCenter({ overrides: { now: () => now } });
  const { bans, state } = center.runtime;
  const start = minuteStart(first);
  for (const ban of [
    banOf(stillBanned, start - 300_000, start + 3_600_000),
    banOf(bannedBefore, start - 7_200_000, start - 3_600_000),
  ])
    expect(
      await bans.changeBans(
        [{ type: 'ban', ban, also: [state.offenseItem(ban.ip, ban.since)] }],
        ban.since,
      ),
    ).toEqual([true]);
  const api = apiClient(center);
  for (let n = 1; n <= 10; n++) {
    const ip = `203.0.113.${n}`;
    const failing = ip === stillBanned || ip === bannedBefore;
    const heartbeats = minuteOfRelays(
      ip,
      start,
      failing ? 'connect_failed' : 'ok',
    );
    expect(await postHeartbeats(api, heartbeats)).toBe(202);
  }
  now = minuteStart(first + 1) + 15_000;
  return { center, first, now };
}

const quietLog = () => createLogger({ level: 'error', write: () => undefined });

describe('offense reads', () => {
  let center: TestStatusCenter;
  let now: number;

  beforeAll(async () => {
    ({ center, now } = await minuteWithOffenses());
  });
  afterAll(() => center?.stop());

  it('reads the offenses of a failing IP without a ban in force, and escalates its ban with them; never those of a banned IP', async () => {
    const { runtime } = center;
    const asked: string[] = [];
    const aggregator = createAggregator({
      config: runtime.config,
      heartbeats: runtime.heartbeats,
      bans: runtime.bans,
      events: runtime.events,
      state: {
        ...runtime.state,
        getOffenses: (ips) => {
          asked.push(...ips);
          return runtime.state.getOffenses(ips);
        },
      },
      log: quietLog(),
      clock: () => now,
    });

    const summary = await aggregator.run(now);

    // The second offense in 24 h: an escalation, not a first ban.
    expect(
      summary.decisions
        .filter((d) => d.type === 'ban' || d.type === 'escalation')
        .map((d) => [d.type, d.ip]),
    ).toEqual([['escalation', bannedBefore]]);
    expect(asked).toContain(bannedBefore);
    expect(asked).not.toContain(stillBanned);
    expect((await runtime.bans.getBan(bannedBefore))?.offense).toBe(2);
  });
});

describe('offenses read ahead', () => {
  let center: TestStatusCenter;
  let first: number;
  let now: number;

  beforeAll(async () => {
    ({ center, first, now } = await minuteWithOffenses());
  });
  afterAll(() => center?.stop());

  it('asks for the offenses of the IPs a closing minute finds failing while its rows are still being read, and decides with them', async () => {
    const { runtime } = center;
    const asked: string[][] = [];
    let offensesAsked = () => {};
    const askedOnce = new Promise<void>((resolve) => {
      offensesAsked = resolve;
    });
    let askedBeforeReadEnded: string[] | undefined;
    const aggregator = createAggregator({
      config: runtime.config,
      heartbeats: {
        ...runtime.heartbeats,
        // The closing minute's read ends only once offenses were asked for (or 2 s passed).
        readMinute: async (minute, onPage) => {
          const rows = await runtime.heartbeats.readMinute(minute, onPage);
          if (minute === first) {
            await Promise.race([
              askedOnce,
              new Promise((resolve) => setTimeout(resolve, 2_000)),
            ]);
            askedBeforeReadEnded = asked.flat();
          }
          return rows;
        },
      },
      bans: runtime.bans,
      events: runtime.events,
      state: {
        ...runtime.state,
        getOffenses: (ips) => {
          asked.push([...ips]);
          if (ips.length) offensesAsked();
          return runtime.state.getOffenses(ips);
        },
      },
      log: quietLog(),
      clock: () => now,
    });

    const summary = await aggregator.run(now);

    expect(askedBeforeReadEnded).toEqual([bannedBefore]);
    // Read once: the decision took the read made ahead.
    expect(asked.flat().filter((ip) => ip === bannedBefore)).toHaveLength(1);
    expect(asked.flat()).not.toContain(stillBanned);
    expect(
      summary.decisions
        .filter((d) => d.type === 'ban' || d.type === 'escalation')
        .map((d) => [d.type, d.ip]),
    ).toEqual([['escalation', bannedBefore]]);
    expect((await runtime.bans.getBan(bannedBefore))?.offense).toBe(2);
  });
});
