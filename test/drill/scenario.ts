/**
 * One scenario run: lead-in with jobs flowing, the fault, the repair, each
 * phase bounded; a timeline printed as it happens; the figures at the end.
 */
import { createBlocklistClient } from '../../clients/dispatcher/index.js';
import { createLogger } from '../../functions/log.js';
import type { ScenarioSpec } from './cli.js';
import type {
  Attempt,
  Figures,
  ScenarioObservation,
  Target,
} from './figures.js';
import { computeFigures, figureValue, targetsFor } from './figures.js';
import { startJobStream, watchBlocklist } from './jobs.js';
import type { Machine, World } from './world.js';

/** How long each phase may last. Every wait in a scenario is bounded by one of these. */
export type PhaseBounds = {
  /** Jobs flowing before the fault. */
  leadMs: number;
  /** A cut ends early once the machine is banned and avoided; at the latest after this. */
  cutMaxMs: Record<'internal' | 'external', number>;
  /** After a repair: at least this long (a late ban shows up here), at most the max. */
  repairMinMs: number;
  repairMaxMs: number;
  /** Origin outage and fleet-wide cut: fixed lengths. */
  outageMs: number;
  recoveryMs: number;
};

export const BOUNDS: Record<'full' | 'short', PhaseBounds> = {
  full: {
    leadMs: 45_000,
    cutMaxMs: { internal: 240_000, external: 240_000 },
    repairMinMs: 90_000,
    repairMaxMs: 300_000,
    outageMs: 180_000,
    recoveryMs: 120_000,
  },
  // Each target plus a margin: enough to measure a passing figure, and the run stays short.
  short: {
    leadMs: 20_000,
    cutMaxMs: { internal: 110_000, external: 165_000 },
    repairMinMs: 75_000,
    repairMaxMs: 130_000,
    outageMs: 150_000,
    recoveryMs: 90_000,
  },
};

const PROGRESS_EVERY_MS = 15_000;
const POLL_MS = 1_000;
/** Avoided turns after the last landing before t_avoid counts as settled. */
const MIN_AVOIDED_TURNS = 2;

export type TimelineEntry = { t: number; at: string; event: string };

export type ScenarioReport = {
  scenario: string;
  kind: ScenarioSpec['kind'];
  topology: ScenarioSpec['topology'];
  repetition: number;
  cutIps: string[];
  startedAt: string;
  faultAt: string;
  repairAt: string | null;
  endedAt: string;
  figures: Figures;
  targets: Array<Target & { value: number | null; over: boolean }>;
  timeline: TimelineEntry[];
  /** Status center events in the scenario's window (bans, releases, outages, fleet-wide failures). */
  events: Array<{
    type: string;
    at: string;
    ip?: string;
    origin?: string;
    rule?: string;
  }>;
  jobs: Array<{
    id: string;
    t: number;
    turn: string;
    landedOn: string | null;
    state: string | null;
    attempts: Attempt[];
    sinkBytes: number | null;
    finalStatus: string | null;
  }>;
};

export type ScenarioContext = {
  world: World;
  spec: ScenarioSpec;
  repetition: number;
  /** The machine to cut (single-cut scenarios). */
  machine: Machine;
  bounds: PhaseBounds;
  agentIntervalMs: number;
  jobEveryMs: number;
  jobMs: number;
  say: (line: string) => void;
  /** The dispatcher library's own log lines. */
  libraryLog: (line: string) => void;
};

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function admin(
  world: World,
  method: string,
  path: string,
): Promise<Response> {
  return fetch(`${world.statusCenter.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${world.statusCenter.tokens.admin}` },
    signal: AbortSignal.timeout(10_000),
  });
}

/** Lifts every ban left by an earlier scenario, so each scenario starts from an empty blocklist. */
async function clearBans(
  world: World,
  note: (event: string) => void,
): Promise<void> {
  const response = await admin(world, 'GET', '/v1/blocklist');
  const body = (await response.json()) as {
    entries?: Array<{ ip: string; until: string }>;
  };
  for (const entry of body.entries ?? []) {
    if (Date.parse(entry.until) <= Date.now()) continue;
    const deleted = await admin(
      world,
      'DELETE',
      `/v1/bans/${encodeURIComponent(entry.ip)}`,
    );
    await deleted.body?.cancel();
    note(
      `left over from an earlier scenario: ban of ${entry.ip} lifted (DELETE ${deleted.status})`,
    );
  }
}

async function statusCenterEvents(
  world: World,
  since: number,
): Promise<ScenarioReport['events']> {
  try {
    const response = await admin(
      world,
      'GET',
      `/v1/events?since=${encodeURIComponent(new Date(since).toISOString())}&limit=1000`,
    );
    const body = (await response.json()) as {
      events?: ScenarioReport['events'];
    };
    return (body.events ?? [])
      .map(({ type, at, ip, origin, rule }) => ({
        type,
        at,
        ...(ip ? { ip } : {}),
        ...(origin ? { origin } : {}),
        ...(rule ? { rule } : {}),
      }))
      .reverse();
  } catch {
    return [];
  }
}

export async function runScenario(
  context: ScenarioContext,
): Promise<ScenarioReport> {
  const { world, spec, bounds, say } = context;
  const label = `${spec.name}#${context.repetition}`;
  const timeline: TimelineEntry[] = [];
  let faultAt = Number.NaN;
  const note = (event: string) => {
    const now = Date.now();
    const t = Number.isNaN(faultAt)
      ? 0
      : Math.round((now - faultAt) / 100) / 10;
    timeline.push({ t, at: new Date(now).toISOString(), event });
    say(
      `${label} ${Number.isNaN(faultAt) ? '        ' : `t=${t.toFixed(1).padStart(6)}s`} ${event}`,
    );
  };

  if (world.topology !== spec.topology) {
    await world.setTopology(spec.topology);
    note(
      `topology: status center over the ${spec.topology} link; settling one report interval`,
    );
    await delay(context.agentIntervalMs + 5_000);
  }
  await clearBans(world, note);

  const startAt = Date.now();
  const blocklist = createBlocklistClient({
    url: world.statusCenter.url,
    token: world.statusCenter.tokens.reader,
    logger: createLogger({
      level: 'info',
      fields: { component: 'drill-dispatcher' },
      write: context.libraryLog,
    }),
  });
  blocklist.start();
  await blocklist.ready();
  const watch = watchBlocklist({
    url: world.statusCenter.url,
    readerToken: world.statusCenter.tokens.reader,
    everyMs: POLL_MS,
  });
  const agents = world.machines.map((machine) => ({
    url: machine.agentUrl,
    ip: machine.ip,
  }));
  const stream = startJobStream({
    agents,
    blocklist,
    agentToken: world.agentToken,
    sink: world.sink,
    source: world.sourceUrl,
    idPrefix: `drill-${process.pid}-${spec.name}-${context.repetition}`,
    everyMs: context.jobEveryMs,
    jobMs: context.jobMs,
  });

  const cutIps =
    spec.kind === 'cut'
      ? [context.machine.ip]
      : spec.kind === 'fleet-cut'
        ? agents.map((agent) => agent.ip)
        : [];
  const mayBan = spec.kind === 'cut' ? [context.machine.ip] : [];
  let repairAt: number | undefined;
  const observation = (): ScenarioObservation => ({
    startAt,
    faultAt,
    repairAt,
    endAt: Date.now(),
    cutIps,
    mayBan,
    jobs: stream.jobs,
    bans: watch.sightings,
    minAvoidedTurns: MIN_AVOIDED_TURNS,
  });
  // Ban sightings go on the timeline as they happen.
  const seen = new Set<string>();
  const noteBans = () => {
    for (const sighting of watch.sightings) {
      const key = `${sighting.ip}@${sighting.firstSeen}`;
      if (!seen.has(key)) {
        seen.add(key);
        const late =
          repairAt !== undefined &&
          sighting.firstSeen >= repairAt &&
          cutIps.includes(sighting.ip);
        const flag = !mayBan.includes(sighting.ip)
          ? '  <<< FALSE BAN'
          : late
            ? '  <<< BANNED AFTER ITS REPAIR'
            : '';
        note(`blocklist: ${sighting.ip} listed (${sighting.reason})${flag}`);
      }
      if (sighting.goneAt !== undefined && !seen.has(`${key}-gone`)) {
        seen.add(`${key}-gone`);
        note(`blocklist: ${sighting.ip} gone`);
      }
    }
  };
  /** Waits until `done` or `maxMs`, noting bans and printing progress on the way. */
  const phase = async (what: string, maxMs: number, done: () => boolean) => {
    const from = Date.now();
    let lastProgress = from;
    while (Date.now() - from < maxMs) {
      noteBans();
      if (done()) return;
      if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = Date.now();
        const figures = computeFigures(observation());
        say(
          `${label}   … ${what}: ${Math.round((Date.now() - from) / 1000)} of at most ${Math.round(maxMs / 1000)} s; ` +
            `jobs ${figures.jobs.sent} sent, ${figures.jobs.started} started` +
            (cutIps.length > 0
              ? `, ${figures.jobs.landedOnCut} landed on a cut machine`
              : '') +
            `; listed now: ${[...watch.listed()].join(', ') || 'nobody'}`,
        );
      }
      await delay(POLL_MS);
    }
    noteBans();
  };

  try {
    note(
      `start: ${spec.about}; jobs every ${context.jobEveryMs / 1000} s, each ${context.jobMs / 1000} s`,
    );
    await phase('lead-in', bounds.leadMs, () => false);
    faultAt = Date.now();
    switch (spec.kind) {
      case 'cut':
        await world.cut(context.machine);
        note(
          `fault: fiber cut of ${context.machine.ip} (external link dropped, internal kept)`,
        );
        await phase(
          `cut of ${context.machine.ip}`,
          bounds.cutMaxMs[spec.topology],
          () => {
            const figures = computeFigures(observation());
            return figures.tBan !== null && figures.tAvoid !== null;
          },
        );
        break;
      case 'fleet-cut':
        for (const machine of world.machines) await world.cut(machine);
        note(`fault: fiber cut of every machine (${world.machines.length})`);
        await phase('fleet-wide cut', bounds.outageMs, () => false);
        break;
      case 'origin-outage':
        if (spec.name === 'origin-stopped') {
          await world.stopOrigin();
          note('fault: origin stopped (nginx and its publisher)');
        } else {
          await world.blackholeOrigin();
          note(
            'fault: origin black-holed (every packet to and from it dropped)',
          );
        }
        await phase('origin outage', bounds.outageMs, () => false);
        break;
    }

    repairAt = Date.now();
    switch (spec.kind) {
      case 'cut':
        await world.repair(context.machine);
        note(`repair: ${context.machine.ip}'s external link restored`);
        await phase(
          `repair of ${context.machine.ip}`,
          bounds.repairMaxMs,
          () => {
            return (
              Date.now() - (repairAt as number) >= bounds.repairMinMs &&
              !watch.listed().has(context.machine.ip)
            );
          },
        );
        break;
      case 'fleet-cut':
        for (const machine of world.machines) await world.repair(machine);
        note('repair: every external link restored');
        await phase('recovery', bounds.recoveryMs, () => false);
        break;
      case 'origin-outage':
        if (spec.name === 'origin-stopped') await world.startOrigin();
        else await world.restoreOrigin();
        note('repair: origin back');
        await phase('recovery', bounds.recoveryMs, () => false);
        break;
    }
    note('end: stopping the job stream (every job runs its course)');
  } finally {
    await stream.stop();
    watch.stop();
    await blocklist.stop();
  }
  noteBans();

  const final = observation();
  const figures = computeFigures(final);
  const targets = targetsFor(spec.topology, spec.kind).map((target) => {
    const value = figureValue(figures, target.figure);
    return { ...target, value, over: value === null || value > target.max };
  });
  say(`${label} figures: ${describeFigures(figures, targets)}`);
  return {
    scenario: spec.name,
    kind: spec.kind,
    topology: spec.topology,
    repetition: context.repetition,
    cutIps,
    startedAt: new Date(startAt).toISOString(),
    faultAt: new Date(faultAt).toISOString(),
    repairAt: repairAt === undefined ? null : new Date(repairAt).toISOString(),
    endedAt: new Date(final.endAt).toISOString(),
    figures,
    targets,
    timeline,
    events: await statusCenterEvents(world, startAt),
    jobs: stream.jobs.map((job) => ({
      id: job.id,
      t: Math.round((job.sentAt - faultAt) / 100) / 10,
      turn: job.turn,
      landedOn: job.landedOn ?? null,
      state: job.state ?? null,
      attempts: job.attempts,
      sinkBytes: job.sinkBytes ?? null,
      finalStatus: job.finalStatus ?? null,
    })),
  };
}

function describeFigures(
  figures: Figures,
  targets: Array<Target & { value: number | null; over: boolean }>,
): string {
  const parts = targets.map((target) => {
    const shown =
      target.value === null ? 'not reached' : `${target.value}${target.unit}`;
    return `${target.figure}=${shown} (≤ ${target.max}${target.unit})${target.over ? ' <<< OVER TARGET' : ''}`;
  });
  if (figures.banAfterRepair !== null)
    parts.push(`banned again ${figures.banAfterRepair}s after the repair <<<`);
  if (figures.falseBans.length > 0)
    parts.push(`false bans: ${figures.falseBans.join(', ')}`);
  parts.push(
    `jobs ${figures.jobs.sent} sent / ${figures.jobs.started} started / ${figures.jobs.landedOnCut} on a cut machine`,
  );
  return parts.join('; ');
}
