import { describe, expect, it } from 'vitest';
import { parseCidr } from '#contract/ip';
import type { Lease } from '../../../../../functions/core/leases.js';
import { decideMinute } from '../../../../../functions/core/policy.js';
import {
  automaticBan,
  failing,
  fleetRows,
  input,
  ipOf,
  KNOBS,
  knobsWith,
  lease,
  NOW,
  ORIGINS,
  S,
  TEN,
} from '../policy-fixtures.js';

/** Ten leased IPs that reported 20 s ago, with some changed. */
const leasesWith = (changes: Record<string, Lease> = {}) => ({
  ...Object.fromEntries(TEN.map((ip) => [ip, lease(20 * S)])),
  ...changes,
});
const decide = (
  leases: Record<string, Lease>,
  overrides: Parameters<typeof input>[0] = {},
  knobs = KNOBS,
) =>
  decideMinute(
    input({
      window: fleetRows(
        TEN.filter((ip) => (leases[ip]?.[0] ?? 0) > NOW - 60 * S),
      ),
      leases,
      ...overrides,
    }),
    knobs,
  );
const silentBans = (result: ReturnType<typeof decideMinute>) =>
  result.verdicts.filter(
    (v) =>
      v.by === 'silent' &&
      (v.decision.type === 'ban' || v.decision.type === 'escalation'),
  );

describe('rule silent', () => {
  it('bans an IP that was relaying and has sent nothing for two intervals plus the grace (131 s at 60 s)', () => {
    const result = decide(leasesWith({ [ipOf(7)]: lease(131 * S) }));
    const [verdict, ...rest] = silentBans(result);
    expect(rest).toEqual([]);
    expect(verdict).toMatchObject({
      decision: {
        type: 'ban',
        ip: ipOf(7),
        ban: { rule: 'silent', since: NOW, until: NOW + 3_600_000 },
      },
      metric: 'SilentBans',
      event: {
        type: 'ban',
        rule: 'silent',
        evidence: {
          silence: {
            intervalSeconds: 60,
            silentSeconds: 131,
            limitSeconds: 130,
          },
        },
      },
    });
    expect(
      verdict!.decision.type === 'ban' && verdict!.decision.ban.reason,
    ).toMatch(/^silent for 131 s/);
    expect(result.metrics).toMatchObject({ SilentBans: 1 });
  });

  it('waits out the limit: 130 s of silence at a 60 s interval is not yet silence', () => {
    expect(
      silentBans(decide(leasesWith({ [ipOf(7)]: lease(130 * S) }))),
    ).toEqual([]);
  });

  it('scales with the declared interval: 15 s reports are silent after 41 s', () => {
    expect(
      silentBans(decide(leasesWith({ [ipOf(7)]: lease(41 * S, 15) }))),
    ).toHaveLength(1);
    expect(
      silentBans(decide(leasesWith({ [ipOf(7)]: lease(40 * S, 15) }))),
    ).toEqual([]);
  });

  it('never bans an IP whose last report had nothing running in it', () => {
    expect(
      silentBans(decide(leasesWith({ [ipOf(7)]: lease(131 * S, 60, 0) }))),
    ).toEqual([]);
  });

  it('never bans an IP without a lease (an older agent), however long it is silent', () => {
    const leases = leasesWith();
    delete leases[ipOf(7)];
    expect(
      decide(leases, { window: fleetRows(TEN.filter((ip) => ip !== ipOf(7))) })
        .verdicts,
    ).toEqual([]);
  });

  it('judges silence only in a live decision: without leases the rule is quiet', () => {
    expect(
      decideMinute(input({ window: fleetRows(TEN.slice(1)) }), KNOBS).verdicts,
    ).toEqual([]);
  });

  it('bans nobody when six of ten went quiet together, and records fleet_silence once', () => {
    const quiet = Object.fromEntries(
      TEN.slice(0, 6).map((ip) => [ip, lease(131 * S)]),
    );
    const result = decide(leasesWith(quiet));
    expect(silentBans(result)).toEqual([]);
    expect(result.verdicts).toHaveLength(1);
    expect(result.verdicts[0]).toMatchObject({
      decision: {
        type: 'fleet_silence',
        evidence: { recentIps: 10, quietIps: 6, share: 0.6 },
        spared: TEN.slice(0, 6).sort(),
      },
      event: { type: 'fleet_silence', rule: 'silent' },
    });
    expect(result.fleetSilent).toBe(true);
    const still = decide(leasesWith(quiet), {
      previous: { outages: [], fleetWide: false, fleetSilent: true },
    });
    expect(still.verdicts).toEqual([]);
    expect(still.fleetSilent).toBe(true);
  });

  it('counts as quiet every IP that missed one report: a status-center outage is seen before anyone is silent', () => {
    // Everyone last reported 75..131 s ago: one is past the limit, all missed a report.
    const all = Object.fromEntries(
      TEN.map((ip, i) => [ip, lease((75 + i * 6) * S)]),
    );
    const result = decide(all, { window: [] });
    expect(silentBans(result)).toEqual([]);
    expect(result.decisions.map((d) => d.type)).toEqual(['fleet_silence']);
  });

  it('records fleet_silence_recovered when the fleet reports again, and judges nobody in that decision', () => {
    const result = decide(leasesWith({ [ipOf(7)]: lease(131 * S) }), {
      previous: { outages: [], fleetWide: false, fleetSilent: true },
    });
    expect(result.decisions.map((d) => d.type)).toEqual([
      'fleet_silence_recovered',
    ]);
    expect(result.fleetSilent).toBe(false);
  });

  it('keeps the fleet silent while nobody at all is recent', () => {
    const gone = Object.fromEntries(TEN.map((ip) => [ip, lease(600 * S)]));
    expect(
      decide(gone, {
        window: [],
        previous: { outages: [], fleetWide: false, fleetSilent: true },
      }).fleetSilent,
    ).toBe(true);
  });

  it('forgets an IP silent for longer than one interval past the limit: it was judged already, or is gone', () => {
    expect(
      silentBans(decide(leasesWith({ [ipOf(7)]: lease(191 * S) }))),
    ).toEqual([]);
  });

  it('never bans a fleet of one for silence: with nothing to compare, the observer may be at fault', () => {
    const result = decideMinute(
      input({ leases: { [ipOf(1)]: lease(131 * S) } }),
      KNOBS,
    );
    expect(result.decisions.map((d) => d.type)).toEqual(['fleet_silence']);
  });

  it('bans within the cap shared with the fail-ratio rule, longest silence first, and records the rest as capped once', () => {
    const knobs = knobsWith({ maxBanFraction: 0.2 });
    const leases = leasesWith({
      [ipOf(2)]: lease(140 * S),
      [ipOf(3)]: lease(135 * S),
    });
    const window = fleetRows(
      TEN.filter((ip) => ![ipOf(2), ipOf(3)].includes(ip)),
      ORIGINS,
      failing(ipOf(9)),
    );
    const result = decideMinute(input({ window, leases }), knobs);
    expect(
      result.decisions.map((d) => [d.type, 'ip' in d ? d.ip : '']),
    ).toEqual([
      ['ban', ipOf(9)],
      ['ban', ipOf(2)],
      ['capped', ipOf(3)],
    ]);
    // At the next live decision, 10 s on, the capped IP is not recorded again.
    const later = decideMinute(
      input({
        window,
        leases,
        previous: { outages: [], fleetWide: false, at: NOW },
        now: NOW + 10 * S,
      }),
      knobs,
    );
    expect(later.decisions.filter((d) => d.type === 'capped')).toEqual([]);
  });

  it('escalates a silent IP banned before within 24 h', () => {
    const result = decide(leasesWith({ [ipOf(7)]: lease(131 * S) }), {
      offenses: { [ipOf(7)]: [NOW - 3 * 3_600_000] },
    });
    expect(silentBans(result)[0]).toMatchObject({
      decision: {
        type: 'escalation',
        ban: { rule: 'silent-escalated', offense: 2 },
      },
    });
  });

  it('leaves an IP alone while its ban is in force, and spares allowlisted IPs', () => {
    const banned = decide(leasesWith({ [ipOf(7)]: lease(131 * S) }), {
      bans: [automaticBan(ipOf(7), NOW - 60 * S)],
    });
    expect(silentBans(banned)).toEqual([]);
    const allowlisted = decide(
      leasesWith({ [ipOf(7)]: lease(131 * S) }),
      {},
      knobsWith({ allowlist: [parseCidr(ipOf(7))!] }),
    );
    expect(silentBans(allowlisted)).toEqual([]);
    expect(allowlisted.verdicts).toMatchObject([
      {
        decision: { type: 'allowlisted', ip: ipOf(7) },
        event: { rule: 'allowlist' },
      },
    ]);
  });
});
