import { describe, expect, it } from 'vitest';
import { decideMinute, RULES } from '../../../../../functions/core/policy.js';
import { gatherEvidence } from '../../../../../functions/core/rules/evidence.js';
import { failRatioRule } from '../../../../../functions/core/rules/fail-ratio.js';
import { fleetWideRule } from '../../../../../functions/core/rules/fleet-wide.js';
import { originOutageRule } from '../../../../../functions/core/rules/origin-outage.js';
import { probeReleaseRule } from '../../../../../functions/core/rules/probe-release.js';
import {
  automaticBan,
  failing,
  fleetRows,
  input,
  ipOf,
  KNOBS,
  knobsWith,
  MINUTE,
  NOW,
  ORIGINS,
  probes,
  row,
  TEN,
} from '../policy-fixtures.js';

const run = (
  rule: (typeof RULES)[number],
  overrides: Parameters<typeof input>[0],
  knobs = KNOBS,
) => rule.decide(gatherEvidence(input(overrides), knobs), knobs, []);

describe('RULES', () => {
  it('decides in a fixed order: origin outage, fleet-wide, fail ratio, silence, then releases', () => {
    expect(RULES.map((rule) => rule.name)).toEqual([
      'origin-outage',
      'fleet-wide',
      'fail-ratio',
      'silent',
      'silent-release',
      'probe-release',
    ]);
  });

  it('counts each decision in its rule\u2019s metric and logs every declared metric, zero when nothing fired', () => {
    const quiet = decideMinute(input({ window: fleetRows(TEN) }), KNOBS);
    expect(quiet.metrics).toMatchObject({
      ReportingIps: 10,
      BansDecided: 0,
      CappedBans: 0,
      Releases: 0,
      OriginOutages: 0,
      FleetWideFailure: 0,
    });
    const one = decideMinute(
      input({
        window: fleetRows(TEN, ORIGINS, failing(ipOf(3))),
      }),
      KNOBS,
    );
    expect(one.metrics).toMatchObject({ BansDecided: 1 });
  });
});

describe('rule origin-outage', () => {
  it('records the outage as an origin_outage event under the origin-evidence rule', () => {
    const [verdict, ...rest] = run(originOutageRule, {
      window: TEN.map((ip) =>
        row(ip, [
          { origin: ORIGINS[0]!, connect_failed: 6 },
          { origin: ORIGINS[1]!, ok: 6 },
        ]),
      ),
    });
    expect(rest).toEqual([]);
    expect(verdict).toMatchObject({
      by: 'origin-outage',
      event: {
        type: 'origin_outage',
        origin: ORIGINS[0],
        rule: 'origin-evidence',
      },
    });
  });
});

describe('rule fleet-wide', () => {
  it('records fleet_failure with the IPs it spared', () => {
    // Heartbeats without an origin: no outage can excuse them, so all ten qualify and are spared.
    const [verdict] = run(fleetWideRule, {
      window: TEN.map((ip) => row(ip, [{ origin: '', connect_failed: 12 }])),
    });
    expect(verdict).toMatchObject({
      by: 'fleet-wide',
      event: { type: 'fleet_failure', rule: 'fleet-wide' },
    });
    expect((verdict!.event.evidence.suppressed as unknown[]).length).toBe(10);
  });
});

describe('rule fail-ratio', () => {
  it('bans the failing IP with an event that carries the evidence and the ban, counted in BansDecided', () => {
    const [verdict] = run(failRatioRule, {
      window: fleetRows(TEN, ORIGINS, failing(ipOf(4))),
    });
    expect(verdict).toMatchObject({
      decision: { type: 'ban', ip: ipOf(4) },
      by: 'fail-ratio',
      metric: 'BansDecided',
      event: {
        type: 'ban',
        ip: ipOf(4),
        rule: 'fail-ratio',
        evidence: { connectFailed: 12, ban: { until: NOW + 3_600_000 } },
      },
    });
  });

  it('shares the cap with the bans of earlier rules', () => {
    const knobs = knobsWith({ maxBanFraction: 0.1 });
    const evidence = gatherEvidence(
      input({
        window: fleetRows(TEN, ORIGINS, failing(ipOf(4))),
      }),
      knobs,
    );
    const earlier = run(
      failRatioRule,
      {
        window: fleetRows(TEN, ORIGINS, failing(ipOf(5))),
      },
      knobs,
    );
    const [verdict] = failRatioRule.decide(evidence, knobs, earlier);
    expect(verdict).toMatchObject({
      decision: { type: 'capped', ip: ipOf(4) },
      metric: 'CappedBans',
      event: { rule: 'max-ban-fraction' },
    });
  });
});

describe('rule probe-release', () => {
  it('releases on three healthy probe minutes, recorded under probes-healthy', () => {
    const ban = automaticBan(ipOf(2), NOW - 10 * 60_000);
    const recent = [MINUTE - 2, MINUTE - 1, MINUTE].map((minute) =>
      probes(ipOf(2), 4, 0, { minute }),
    );
    const [verdict] = run(probeReleaseRule, { bans: [ban], recent });
    expect(verdict).toMatchObject({
      decision: { type: 'release', ip: ipOf(2) },
      metric: 'Releases',
      event: { type: 'release', rule: 'probes-healthy' },
    });
  });
});
