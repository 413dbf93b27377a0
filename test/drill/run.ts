/**
 * `npm run drill`: builds the fiber-cut drill's world, runs the scenarios,
 * prints each timeline and the table of figures, writes the JSON report, and
 * removes everything it built (also on Ctrl-C and on failure). See --help.
 */
import { appendFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DrillOptions } from './cli.js';
import { EXIT, HELP, parseDrillArgs, UsageError } from './cli.js';
import { formatTable, summarize } from './figures.js';
import type { ScenarioReport } from './scenario.js';
import { BOUNDS, runScenario } from './scenario.js';
import type { World } from './world.js';
import { buildWorld, checkPrerequisites, WorldError } from './world.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');
const started = Date.now();

function say(line: string): void {
  const elapsed = Math.round((Date.now() - started) / 1000);
  const stamp = `${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}`;
  process.stdout.write(`[${stamp}] ${line}\n`);
}

async function version(): Promise<string> {
  const pkg = JSON.parse(
    await readFile(join(REPO, 'package.json'), 'utf8'),
  ) as { version: string };
  return pkg.version;
}

let world: World | undefined;
let logDir: string | undefined;
let keepLogs = false;
let cleaning: Promise<void> | undefined;

function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    if (world) {
      say(
        'removing the world (agents, relays, nginx, namespaces, status center)…',
      );
      await world.destroy();
    }
    if (logDir && !keepLogs) await rm(logDir, { recursive: true, force: true });
  })();
  return cleaning;
}

function onSignal(signal: NodeJS.Signals): void {
  say(`${signal}: stopping`);
  // A second signal during the cleanup ends the process at once.
  process.once(signal, () => process.exit(130));
  cleanUp().finally(() => process.exit(130));
}

async function main(argv: string[]): Promise<number> {
  let options: DrillOptions;
  try {
    const parsed = parseDrillArgs(argv);
    if (parsed === 'help') {
      process.stdout.write(HELP);
      return EXIT.ok;
    }
    if (parsed === 'version') {
      process.stdout.write(`relaywatch drill ${await version()}\n`);
      return EXIT.ok;
    }
    options = parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(
      `drill: ${error.message}\n\nRun with --help for every flag.\n`,
    );
    return EXIT.usage;
  }

  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  keepLogs = options.keepLogs !== undefined;
  if (options.keepLogs !== undefined) {
    logDir = resolve(options.keepLogs);
    await mkdir(logDir, { recursive: true });
  } else {
    logDir = await mkdtemp(join(tmpdir(), 'relaywatch-drill-'));
  }
  const libraryLog = join(logDir, 'dispatcher.log');
  const bounds = BOUNDS[options.short ? 'short' : 'full'];

  try {
    await checkPrerequisites();
    world = await buildWorld({
      machines: options.machines,
      agentIntervalSeconds: options.agentIntervalSeconds,
      logDir,
      say,
    });
  } catch (error) {
    if (!(error instanceof WorldError)) throw error;
    say(`the world could not be built: ${error.message}`);
    return EXIT.world;
  }

  // One report interval, so every machine has reported (and probed) before the first scenario.
  say(`warming up for one report interval (${options.agentIntervalSeconds} s)`);
  await new Promise((resolve) =>
    setTimeout(resolve, options.agentIntervalSeconds * 1000 + 5_000),
  );

  const reports: ScenarioReport[] = [];
  let cuts = 0;
  for (let repetition = 1; repetition <= options.repeat; repetition++) {
    for (const spec of options.scenarios) {
      // Each single cut hits the next machine, so no cut inherits an earlier ban's probation.
      const machine =
        world.machines[
          spec.kind === 'cut' ? cuts++ % world.machines.length : 0
        ];
      if (machine === undefined) throw new Error('no machine to cut');
      reports.push(
        await runScenario({
          world,
          spec,
          repetition,
          machine,
          bounds,
          agentIntervalMs: options.agentIntervalSeconds * 1000,
          jobEveryMs: options.jobEverySeconds * 1000,
          jobMs: options.jobSeconds * 1000,
          say,
          libraryLog: (line) => appendFileSync(libraryLog, line),
        }),
      );
    }
  }

  const rows = summarize(
    reports.map(({ scenario, topology, kind, figures }) => ({
      scenario,
      topology,
      kind,
      figures,
    })),
  );
  const table = formatTable(rows);
  process.stdout.write(
    `\nFigures over ${options.repeat} repetition(s), with issue 8's targets:\n\n${table}\n\n`,
  );
  const falseBans = reports.filter(
    (report) => report.figures.falseBans.length > 0,
  );
  const over = rows.filter((row) => row.over);
  if (over.length > 0) {
    say(
      `!!! ${over.length} figure(s) OVER TARGET: ${over.map((row) => `${row.scenario} ${row.figure}`).join(', ')}`,
    );
  }
  const lateBans = reports.filter(
    (report) => report.figures.banAfterRepair !== null,
  );
  if (lateBans.length > 0) {
    say(
      `!!! a repaired machine was banned again after its repair in: ${lateBans.map((report) => `${report.scenario}#${report.repetition}`).join(', ')}`,
    );
  }

  const reportFile = options.reportFile
    ? resolve(options.reportFile)
    : join(
        tmpdir(),
        `relaywatch-drill-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`,
      );
  const report = {
    drill: 'relaywatch fiber-cut drill',
    version: await version(),
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    options: {
      ...options,
      scenarios: options.scenarios.map((spec) => spec.name),
    },
    bounds,
    world: world.describe(),
    summary: rows,
    table,
    scenarios: reports,
  };
  await writeFile(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  say(`JSON report: ${reportFile}${keepLogs ? `; logs in ${logDir}` : ''}`);

  if (falseBans.length > 0) {
    say(
      `!!! FALSE BAN in ${falseBans.map((report) => `${report.scenario}#${report.repetition} (${report.figures.falseBans.join(', ')})`).join('; ')}`,
    );
    return EXIT.falseBan;
  }
  if (options.strict && over.length > 0) return EXIT.overTarget;
  return EXIT.ok;
}

main(process.argv.slice(2))
  .catch((error: unknown) => {
    say(
      `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return EXIT.internal;
  })
  .then(async (code) => {
    await cleanUp();
    process.exit(code);
  });
