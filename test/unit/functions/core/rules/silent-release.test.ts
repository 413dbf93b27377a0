import { describe, expect, it } from 'vitest';
import { decideMinute } from '../../../../../functions/core/policy.js';
import {
  automaticBan,
  CANARY,
  input,
  ipOf,
  KNOBS,
  lease,
  NOW,
  ORIGINS,
  row,
  S,
} from '../policy-fixtures.js';

const BANNED_AT = NOW - 120 * S;
const silentBan = automaticBan(ipOf(7), BANNED_AT, {
  rule: 'silent',
  failRatio: 0,
  samples: 0,
});
/** One report of ip 7: 12 relays and 3 probes, observed and received `ago` ms before NOW. */
const report = (ago: number, status: 'ok' | 'connect_failed') =>
  row(
    ipOf(7),
    [
      { origin: ORIGINS[0]!, [status]: 12 },
      { origin: CANARY, kind: 'probe', [status]: 3 },
    ],
    {
      observedAt: NOW - ago,
      receivedAt: NOW - ago,
      leaseSeconds: 60,
    },
  );
const released = (result: ReturnType<typeof decideMinute>) =>
  result.verdicts.filter((v) => v.decision.type === 'release');

describe('rule silent-release', () => {
  it('releases a silent-banned IP at the first decision after it reports healthy again', () => {
    const result = decideMinute(
      input({
        window: [report(5 * S, 'ok')],
        bans: [silentBan],
        leases: { [ipOf(7)]: lease(5 * S) },
      }),
      KNOBS,
    );
    expect(released(result)).toMatchObject([
      {
        decision: { ip: ipOf(7) },
        by: 'silent-release',
        metric: 'Releases',
        event: {
          type: 'release',
          rule: 'reported-healthy',
          evidence: { report: { ok: 15, connectFailed: 0 } },
        },
      },
    ]);
  });

  it('keeps the ban while its newest report still fails to connect', () => {
    const result = decideMinute(
      input({
        window: [report(5 * S, 'connect_failed')],
        bans: [silentBan],
        leases: { [ipOf(7)]: lease(5 * S) },
      }),
      KNOBS,
    );
    expect(released(result)).toEqual([]);
  });

  it('keeps the ban when the only report is older than the ban (nothing new said)', () => {
    const result = decideMinute(
      input({
        window: [report(200 * S, 'ok')],
        bans: [silentBan],
        leases: { [ipOf(7)]: lease(200 * S) },
      }),
      KNOBS,
    );
    expect(released(result)).toEqual([]);
  });

  it('releases only bans made for silence: a fail-ratio ban waits for its probes', () => {
    const evidenceBan = automaticBan(ipOf(7), BANNED_AT);
    const result = decideMinute(
      input({
        window: [report(5 * S, 'ok')],
        bans: [evidenceBan],
        leases: { [ipOf(7)]: lease(5 * S) },
      }),
      KNOBS,
    );
    expect(released(result)).toEqual([]);
  });
});
