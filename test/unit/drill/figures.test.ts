import { describe, expect, it } from 'vitest';
import type {
  BanSighting,
  JobRecord,
  ScenarioObservation,
} from '../../drill/figures.js';
import {
  avoidSeconds,
  computeFigures,
  formatTable,
  spread,
  summarize,
  targetsFor,
} from '../../drill/figures.js';

const CUT = '198.18.7.100';
const OTHER = '198.18.7.101';
const T0 = 1_764_000_000_000;
const at = (seconds: number) => T0 + seconds * 1000;

/** A job sent `seconds` after the cut, whose turn was `turn`, landing on `landedOn`. */
function job(
  seconds: number,
  turn: string,
  landedOn?: string,
  sinkBytes = 5_000,
): JobRecord {
  return {
    id: `j${seconds}`,
    sentAt: at(seconds),
    turn,
    landedOn,
    attempts: [{ ip: landedOn ?? turn, status: landedOn ? 201 : 502 }],
    sinkBytes: landedOn ? sinkBytes : undefined,
  };
}

function observation(
  overrides: Partial<ScenarioObservation>,
): ScenarioObservation {
  return {
    startAt: at(-30),
    faultAt: at(0),
    repairAt: at(200),
    endAt: at(320),
    cutIps: [CUT],
    mayBan: [CUT],
    jobs: [],
    bans: [],
    minAvoidedTurns: 2,
    ...overrides,
  };
}

describe('t_avoid', () => {
  it('is the first turn of the cut machine after its last landing', () => {
    const jobs = [
      job(5, CUT, CUT),
      job(10, OTHER, OTHER),
      job(20, CUT, CUT),
      job(35, CUT, OTHER),
      job(50, CUT, OTHER),
    ];
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs,
        minAvoidedTurns: 2,
      }),
    ).toBe(35);
  });

  it('is not reached while fewer avoided turns than the minimum followed the last landing', () => {
    const jobs = [job(5, CUT, CUT), job(20, CUT, CUT), job(35, CUT, OTHER)];
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs,
        minAvoidedTurns: 2,
      }),
    ).toBeNull();
  });

  it('counts a landing on the cut machine outside its turn (panic) as a landing', () => {
    const jobs = [
      job(10, CUT, OTHER),
      job(25, OTHER, CUT),
      job(40, CUT, OTHER),
      job(55, CUT, OTHER),
    ];
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs,
        minAvoidedTurns: 2,
      }),
    ).toBe(40);
  });

  it('does not count a landing answered after the repair (a job sent just before it may start on the mended machine)', () => {
    const lastMinute = { ...job(195, CUT, CUT), answeredAt: at(203) };
    const jobs = [job(10, CUT, OTHER), job(25, CUT, OTHER), lastMinute];
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs,
        minAvoidedTurns: 2,
      }),
    ).toBe(10);
    const whileCut = { ...job(195, CUT, CUT), answeredAt: at(198) };
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs: [job(10, CUT, OTHER), job(25, CUT, OTHER), whileCut],
        minAvoidedTurns: 2,
      }),
    ).toBeNull();
  });

  it('ignores jobs sent before the cut or after the repair', () => {
    const jobs = [
      job(-10, CUT, CUT),
      job(10, CUT, OTHER),
      job(25, CUT, OTHER),
      job(210, CUT, CUT),
    ];
    expect(
      avoidSeconds({
        ip: CUT,
        cutAt: at(0),
        until: at(200),
        jobs,
        minAvoidedTurns: 2,
      }),
    ).toBe(10);
  });
});

describe('computeFigures', () => {
  const ban = (
    ip: string,
    firstSeen: number,
    goneAt?: number,
    reason = 'connect_failed',
  ): BanSighting => ({
    ip,
    reason,
    firstSeen: at(firstSeen),
    goneAt: goneAt === undefined ? undefined : at(goneAt),
  });

  it('times the ban from the cut and the release from the repair', () => {
    const figures = computeFigures(
      observation({ bans: [ban(CUT, 64.7, 214.2)] }),
    );
    expect(figures.tBan).toBe(64.7);
    expect(figures.tRelease).toBe(14.2);
    expect(figures.falseBans).toEqual([]);
  });

  it('leaves t_ban and t_release unreached when the cut machine was never listed', () => {
    const figures = computeFigures(observation({ bans: [] }));
    expect(figures.tBan).toBeNull();
    expect(figures.tRelease).toBeNull();
  });

  it('leaves t_release unreached while the ban outlives the run', () => {
    const figures = computeFigures(observation({ bans: [ban(CUT, 70)] }));
    expect(figures.tBan).toBe(70);
    expect(figures.tRelease).toBeNull();
  });

  it('reports a ban that starts after the repair as a ban after repair, not as t_ban', () => {
    const figures = computeFigures(observation({ bans: [ban(CUT, 237, 400)] }));
    expect(figures.tBan).toBeNull();
    expect(figures.banAfterRepair).toBe(37);
  });

  it('counts every other banned IP as a false ban, and any IP where nobody may be banned', () => {
    const cut = computeFigures(
      observation({ bans: [ban(CUT, 60), ban(OTHER, 90), ban(OTHER, 150)] }),
    );
    expect(cut.falseBans).toEqual([OTHER]);
    const outage = computeFigures(
      observation({ cutIps: [], mayBan: [], bans: [ban(CUT, 60)] }),
    );
    expect(outage.falseBans).toEqual([CUT]);
  });

  it('counts started jobs whose sink received nothing, and jobs that landed on the cut machine during the cut', () => {
    const jobs = [
      job(-5, OTHER, OTHER),
      job(5, CUT, CUT, 0),
      job(8, OTHER, OTHER, 0),
      job(12, CUT, undefined),
      job(15, OTHER, OTHER),
    ];
    const figures = computeFigures(observation({ jobs }));
    expect(figures.startedNeverFlowed).toBe(2);
    expect(figures.jobs).toEqual({
      sent: 5,
      started: 4,
      notStarted: 1,
      landedOnCut: 1,
    });
  });

  it('computes no per-machine times when several machines were cut', () => {
    const figures = computeFigures(
      observation({ cutIps: [CUT, OTHER], mayBan: [], bans: [ban(CUT, 60)] }),
    );
    expect(figures.tBan).toBeNull();
    expect(figures.tAvoid).toBeNull();
    expect(figures.falseBans).toEqual([CUT]);
  });
});

describe('spread', () => {
  it('gives min, median and max of the runs', () => {
    expect(spread([86, 59, 64])).toEqual({
      min: 59,
      median: 64,
      max: 86,
      runs: 3,
      notReached: 0,
    });
    expect(spread([10, 20])).toMatchObject({ median: 15 });
  });

  it('ranks a run that never reached the figure above every number', () => {
    expect(spread([70, null, 60])).toEqual({
      min: 60,
      median: 70,
      max: null,
      runs: 3,
      notReached: 1,
    });
    expect(spread([null, null, 60])).toMatchObject({
      min: 60,
      median: null,
      max: null,
      notReached: 2,
    });
  });
});

describe('summarize and formatTable', () => {
  const base = computeFigures(observation({}));

  it('marks a figure over target when its worst run is above the target or never reached', () => {
    const rows = summarize([
      {
        scenario: 'cut-internal',
        topology: 'internal',
        kind: 'cut',
        figures: { ...base, tBan: 60, tAvoid: 10, tRelease: 100 },
      },
      {
        scenario: 'cut-internal',
        topology: 'internal',
        kind: 'cut',
        figures: { ...base, tBan: 80, tAvoid: 12, tRelease: null },
      },
    ]);
    const row = (figure: string) =>
      rows.find((candidate) => candidate.figure === figure);
    expect(row('tBan')).toMatchObject({
      over: true,
      spread: { min: 60, max: 80 },
    });
    expect(row('tAvoid')).toMatchObject({ over: false });
    expect(row('tRelease')).toMatchObject({
      over: true,
      spread: { notReached: 1 },
    });
    expect(row('falseBans')).toMatchObject({ over: false, spread: { max: 0 } });
  });

  it('uses the silenced target for t_ban when the status center is reached over the external link', () => {
    expect(
      targetsFor('external', 'cut').find((target) => target.figure === 'tBan')
        ?.max,
    ).toBe(150);
    expect(
      targetsFor('internal', 'cut').find((target) => target.figure === 'tBan')
        ?.max,
    ).toBe(75);
    expect(
      targetsFor('internal', 'fleet-cut').map((target) => target.figure),
    ).toEqual(['falseBans', 'startedNeverFlowed']);
  });

  it('prints one line per scenario and figure with its target, over-target lines marked', () => {
    const rows = summarize([
      {
        scenario: 'cut-silenced',
        topology: 'external',
        kind: 'cut',
        figures: { ...base, tBan: null, tAvoid: 30 },
      },
    ]);
    const lines = formatTable(rows).split('\n');
    expect(lines).toHaveLength(1 + 5);
    expect(lines.find((line) => line.includes('t_ban'))).toMatch(
      /not reached.*≤ 150s.*OVER TARGET/,
    );
    expect(lines.find((line) => line.includes('false bans'))).toMatch(
      /≤ 0\s+ok$/,
    );
  });
});
