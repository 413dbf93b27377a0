/**
 * The drill's figures, computed from what it observed (pure: no clock, no
 * I/O). Times are epoch milliseconds in, seconds out.
 */

/** How a job sent by the drill's dispatcher ended up. */
export type JobRecord = {
  id: string;
  sentAt: number;
  /** When the dispatcher had its answer (where the job landed, or that it landed nowhere). */
  answeredAt?: number | undefined;
  /** The machine whose turn it was (first in the dispatcher's rotation). */
  turn: string;
  /** The machine whose agent answered "started" (201 flowing, 202 starting); undefined when none did. */
  landedOn?: string | undefined;
  /** What the agent said of the landed relay: flowing, starting (or unknown). */
  state?: string | undefined;
  /** Every agent asked, in order: the dispatcher's outcome, the HTTP status, the relay status it named. */
  attempts: Attempt[];
  /** Bytes the sink received for this job by the time the job ended; undefined until checked. */
  sinkBytes?: number | undefined;
  /** The agent's relay status when the job ended (GET /relays/{id}). */
  finalStatus?: string | undefined;
};

export type Attempt = {
  ip: string;
  outcome?: string;
  status?: number;
  relayStatus?: string;
};

/** One stretch of time an IP was on the blocklist, as the drill's poller saw it. */
export type BanSighting = {
  ip: string;
  reason: string;
  firstSeen: number;
  /** First poll that no longer listed it; undefined while still listed. */
  goneAt?: number | undefined;
};

export type ScenarioObservation = {
  startAt: number;
  /** The fault: a fiber cut, an origin outage or a fleet-wide cut. */
  faultAt: number;
  /** The repair; undefined when the run ended before it. */
  repairAt?: number | undefined;
  endAt: number;
  /** IPs whose external link was cut (empty for an origin outage). */
  cutIps: string[];
  /** IPs a correct status center may ban in this scenario. */
  mayBan: string[];
  jobs: JobRecord[];
  bans: BanSighting[];
  /** Least avoided turns (after the last landing) before t_avoid counts as reached. */
  minAvoidedTurns: number;
};

export type Figures = {
  /** Cut → the first of the cut machine's turns after which no job landed on it (s); null: not reached. */
  tAvoid: number | null;
  /** Cut → the cut IP first listed on /v1/blocklist (s); null: not banned during the cut. */
  tBan: number | null;
  /** Repair → the cut IP gone from the blocklist (s); null: still listed at the end, or never banned. */
  tRelease: number | null;
  /** The repaired machine banned again after the repair (s after it), e.g. on reports delivered late. */
  banAfterRepair: number | null;
  /** IPs banned that no correct status center would ban here. */
  falseBans: string[];
  /** Jobs answered "started" whose relay never delivered a byte to the sink. */
  startedNeverFlowed: number;
  jobs: {
    sent: number;
    started: number;
    notStarted: number;
    /** Jobs that landed on a cut machine while it was cut. */
    landedOnCut: number;
  };
};

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** True when the job's "started" answer was followed by no byte at the sink. */
export function neverFlowed(job: JobRecord): boolean {
  return (
    job.landedOn !== undefined &&
    job.sinkBytes !== undefined &&
    job.sinkBytes === 0
  );
}

/**
 * t_avoid for one cut machine: every job sent during the cut whose first choice was that machine is a
 * turn; a turn is avoided when the job did not land there (blocklist filter, refusal, move-on). It is
 * reached at the first turn after the last landing, once at least `minAvoidedTurns` turns followed the
 * last landing. Its resolution is the rotation period (machines × job interval).
 */
export function avoidSeconds(options: {
  ip: string;
  cutAt: number;
  until: number;
  jobs: readonly JobRecord[];
  minAvoidedTurns: number;
}): number | null {
  const during = options.jobs
    .filter((job) => job.sentAt >= options.cutAt && job.sentAt < options.until)
    .sort((a, b) => a.sentAt - b.sentAt);
  // A job sent just before the repair may start once the machine is whole again: that landing is no
  // failure to avoid a cut machine, so only landings answered while the cut lasted count.
  const landedWhileCut = (job: JobRecord) =>
    job.landedOn === options.ip &&
    (job.answeredAt ?? job.sentAt) < options.until;
  const lastLanding =
    during.findLast(landedWhileCut)?.sentAt ?? Number.NEGATIVE_INFINITY;
  const avoidedTurns = during.filter(
    (job) => job.turn === options.ip && job.sentAt > lastLanding,
  );
  const first = avoidedTurns[0];
  if (first === undefined || avoidedTurns.length < options.minAvoidedTurns)
    return null;
  return seconds(first.sentAt - options.cutAt);
}

export function computeFigures(observation: ScenarioObservation): Figures {
  const { faultAt, repairAt, endAt, cutIps, jobs, bans } = observation;
  const cutEnd = repairAt ?? endAt;
  const single = cutIps.length === 1 ? cutIps[0] : undefined;
  let tBan: number | null = null;
  let tRelease: number | null = null;
  let banAfterRepair: number | null = null;
  if (single !== undefined) {
    const own = bans
      .filter((ban) => ban.ip === single)
      .sort((a, b) => a.firstSeen - b.firstSeen);
    const duringCut = own.find(
      (ban) => ban.firstSeen >= faultAt && ban.firstSeen < cutEnd,
    );
    if (duringCut) tBan = seconds(duringCut.firstSeen - faultAt);
    if (repairAt !== undefined) {
      const inForce = own.find(
        (ban) =>
          ban.firstSeen < repairAt &&
          (ban.goneAt === undefined || ban.goneAt > repairAt),
      );
      if (inForce?.goneAt !== undefined)
        tRelease = seconds(inForce.goneAt - repairAt);
      const late = own.find((ban) => ban.firstSeen >= repairAt);
      if (late) banAfterRepair = seconds(late.firstSeen - repairAt);
    }
  }
  const allowed = new Set(observation.mayBan);
  const falseBans = [
    ...new Set(
      bans
        .filter(
          (ban) =>
            !allowed.has(ban.ip) &&
            ban.firstSeen >= observation.startAt &&
            ban.firstSeen <= endAt,
        )
        .map((ban) => ban.ip),
    ),
  ].sort();
  const cut = new Set(cutIps);
  const started = jobs.filter((job) => job.landedOn !== undefined);
  return {
    tAvoid:
      single === undefined
        ? null
        : avoidSeconds({
            ip: single,
            cutAt: faultAt,
            until: cutEnd,
            jobs,
            minAvoidedTurns: observation.minAvoidedTurns,
          }),
    tBan,
    tRelease,
    banAfterRepair,
    falseBans,
    startedNeverFlowed: started.filter(neverFlowed).length,
    jobs: {
      sent: jobs.length,
      started: started.length,
      notStarted: jobs.length - started.length,
      landedOnCut: started.filter(
        (job) =>
          cut.has(job.landedOn as string) &&
          job.sentAt >= faultAt &&
          job.sentAt < cutEnd,
      ).length,
    },
  };
}

export type FigureName =
  | 'tAvoid'
  | 'tBan'
  | 'tRelease'
  | 'falseBans'
  | 'startedNeverFlowed';

/** A figure's target: at most `max` (seconds or a count). */
export type Target = { figure: FigureName; max: number; unit: 's' | '' };

/** Issue 8's targets, with the agent's and the status center's defaults. */
export function targetsFor(topology: Topology, kind: ScenarioKind): Target[] {
  const counts: Target[] = [
    { figure: 'falseBans', max: 0, unit: '' },
    { figure: 'startedNeverFlowed', max: 0, unit: '' },
  ];
  if (kind !== 'cut') return counts;
  return [
    { figure: 'tAvoid', max: 20, unit: 's' },
    { figure: 'tBan', max: topology === 'internal' ? 75 : 150, unit: 's' },
    { figure: 'tRelease', max: 120, unit: 's' },
    ...counts,
  ];
}

/** internal: the status center is reached over the internal link; external: only over the cut one. */
export type Topology = 'internal' | 'external';
export type ScenarioKind = 'cut' | 'origin-outage' | 'fleet-cut';

/** A figure's value for the table: null (not reached) sorts above every number. */
export function figureValue(
  figures: Figures,
  figure: FigureName,
): number | null {
  if (figure === 'falseBans') return figures.falseBans.length;
  return figures[figure];
}

export type Spread = {
  min: number | null;
  median: number | null;
  max: number | null;
  runs: number;
  notReached: number;
};

/** min/median/max over repetitions; a null (not reached) counts as above every number. */
export function spread(values: ReadonlyArray<number | null>): Spread {
  const sorted = values
    .map((value) => value ?? Number.POSITIVE_INFINITY)
    .sort((a, b) => a - b);
  const at = (index: number) => {
    const value = sorted[index];
    return value === undefined || value === Number.POSITIVE_INFINITY
      ? null
      : value;
  };
  const middle = sorted.length / 2;
  let median: number | null;
  if (sorted.length === 0) median = null;
  else if (sorted.length % 2 === 1) median = at(Math.floor(middle));
  else {
    const low = sorted[middle - 1] as number;
    const high = sorted[middle] as number;
    median =
      high === Number.POSITIVE_INFINITY
        ? null
        : Math.round(((low + high) / 2) * 10) / 10;
  }
  return {
    min: at(0),
    median,
    max: at(sorted.length - 1),
    runs: values.length,
    notReached: values.filter((value) => value === null).length,
  };
}

export type SummaryRow = {
  scenario: string;
  figure: FigureName;
  target: Target;
  spread: Spread;
  /** Over target: the worst run is above the target or was not reached. */
  over: boolean;
};

export type ScenarioRun = {
  scenario: string;
  topology: Topology;
  kind: ScenarioKind;
  figures: Figures;
};

/** One row per scenario and targeted figure, over every repetition of the scenario. */
export function summarize(runs: readonly ScenarioRun[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const names = [...new Set(runs.map((run) => run.scenario))];
  for (const scenario of names) {
    const mine = runs.filter((run) => run.scenario === scenario);
    const first = mine[0] as ScenarioRun;
    for (const target of targetsFor(first.topology, first.kind)) {
      const values = mine.map((run) => figureValue(run.figures, target.figure));
      const figureSpread = spread(values);
      rows.push({
        scenario,
        figure: target.figure,
        target,
        spread: figureSpread,
        over:
          figureSpread.notReached > 0 ||
          (figureSpread.max !== null && figureSpread.max > target.max),
      });
    }
  }
  return rows;
}

const LABEL: Record<FigureName, string> = {
  tAvoid: 't_avoid',
  tBan: 't_ban',
  tRelease: 't_release',
  falseBans: 'false bans',
  startedNeverFlowed: 'started, never flowed',
};

/** The table printed at the end: one line per scenario and figure, over-target rows marked loudly. */
export function formatTable(rows: readonly SummaryRow[]): string {
  const cell = (value: number | null, unit: string) =>
    value === null ? 'not reached' : `${value}${unit}`;
  const lines = [
    ['scenario', 'figure', 'runs', 'min', 'median', 'max', 'target', ''],
  ];
  for (const row of rows) {
    const { unit } = row.target;
    lines.push([
      row.scenario,
      LABEL[row.figure],
      String(row.spread.runs),
      cell(row.spread.min, unit),
      cell(row.spread.median, unit),
      cell(row.spread.max, unit),
      `≤ ${row.target.max}${unit}`,
      row.over ? '<<< OVER TARGET' : 'ok',
    ]);
  }
  const widths = (lines[0] as string[]).map((_, column) =>
    Math.max(...lines.map((line) => (line[column] ?? '').length)),
  );
  return lines
    .map((line) =>
      line
        .map((text, column) => text.padEnd(widths[column] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
