/**
 * The drill's command line (pure): flags → options, the help text and the
 * exit codes.
 */
import { parseArgs } from 'node:util';
import type { ScenarioKind, Topology } from './figures.js';

export const EXIT = {
  /** Every scenario ran; no false ban (figures over target are printed, not failed, unless --strict). */
  ok: 0,
  internal: 1,
  usage: 2,
  /** The world could not be built: not root, a missing program, a namespace or server that would not start. */
  world: 3,
  /** A machine was banned that no correct status center would ban. */
  falseBan: 4,
  /** --strict only: a figure was over its target or not reached. */
  overTarget: 5,
} as const;

export type ScenarioSpec = {
  name: string;
  kind: ScenarioKind;
  topology: Topology;
  about: string;
};

export const SCENARIOS: readonly ScenarioSpec[] = [
  {
    name: 'cut-internal',
    kind: 'cut',
    topology: 'internal',
    about:
      "one machine's external link cut, then repaired; status center over the internal link",
  },
  {
    name: 'cut-silenced',
    kind: 'cut',
    topology: 'external',
    about:
      'the same, status center only over the external link: the cut silences the agent',
  },
  {
    name: 'origin-blackhole',
    kind: 'origin-outage',
    topology: 'internal',
    about:
      'every packet to the origin dropped, then restored: nobody may be banned',
  },
  {
    name: 'origin-stopped',
    kind: 'origin-outage',
    topology: 'internal',
    about:
      'the origin (nginx) stopped, then started again: nobody may be banned',
  },
  {
    name: 'fleet-cut',
    kind: 'fleet-cut',
    topology: 'internal',
    about:
      "every machine's external link cut, then repaired: nobody may be banned",
  },
  {
    name: 'fleet-cut-silenced',
    kind: 'fleet-cut',
    topology: 'external',
    about:
      'the same with the status center only over the external links: every agent silent',
  },
];

const SHORT_SCENARIOS = ['cut-internal', 'cut-silenced'];

export type DrillOptions = {
  scenarios: ScenarioSpec[];
  repeat: number;
  machines: number;
  short: boolean;
  reportFile: string | undefined;
  keepLogs: string | undefined;
  agentIntervalSeconds: number;
  jobEverySeconds: number;
  jobSeconds: number;
  strict: boolean;
};

export const LIMITS = {
  machines: { min: 4, max: 20, fallback: 6 },
  repeat: { min: 1, max: 20, fallback: 3 },
  agentIntervalSeconds: { min: 1, max: 60, fallback: 15 },
  jobEverySeconds: { min: 0.5, max: 30, fallback: 2.5 },
  jobSeconds: { min: 5, max: 120, fallback: 20 },
} as const;

export const HELP = `npm run drill -- [options]      (as root)

The fiber-cut drill: builds a relay fleet on this host and breaks it on purpose.
Network namespaces for N relay machines, each with an internal and an external
link; an origin (nginx-rtmp fed by ffmpeg) and TCP canaries on the external
segment; the status center (DynamoDB Local embedded) and the ingest sink on the
internal one; a real relaywatch-agent and real ffmpeg relays on every machine;
a dispatcher (the dispatcher client library, blocklist-filtered) sending a job
every --job-every seconds. Addresses from 198.18.0.0/15 only; nothing leaves
the host. Everything it starts is removed on exit, on Ctrl-C and on failure.

Scenarios (--scenario, repeatable or comma-separated; default: all):
${SCENARIOS.map((spec) => `  ${spec.name.padEnd(20)}${spec.about}`).join('\n')}

Options:
  --short               one cut and repair per topology (${SHORT_SCENARIOS.join(', ')}), once,
                        with shorter phase bounds: the CI variant (7-11 min)
  --repeat N            repetitions of every scenario (${LIMITS.repeat.min}-${LIMITS.repeat.max}, default ${LIMITS.repeat.fallback}; 1 with --short)
  --machines N          relay machines (${LIMITS.machines.min}-${LIMITS.machines.max}, default ${LIMITS.machines.fallback})
  --scenario NAME       run only these scenarios
  --report FILE         write the JSON report here (default: a file in the temp directory, printed)
  --keep-logs DIR       keep every process's log (agents, nginx, ffmpeg, status center) in DIR
  --agent-interval S    the agents' report interval (${LIMITS.agentIntervalSeconds.min}-${LIMITS.agentIntervalSeconds.max}, default ${LIMITS.agentIntervalSeconds.fallback}); the drill's machines
                        are small, so at 60 s they would send fewer samples than RELAYWATCH_MIN_SAMPLES
  --job-every S         seconds between two jobs (${LIMITS.jobEverySeconds.min}-${LIMITS.jobEverySeconds.max}, default ${LIMITS.jobEverySeconds.fallback})
  --job-seconds S       how long each job's relay runs before the dispatcher stops it
                        (${LIMITS.jobSeconds.min}-${LIMITS.jobSeconds.max}, default ${LIMITS.jobSeconds.fallback})
  --strict              also fail (exit ${EXIT.overTarget}) when a figure is over its target or not reached
  --version             print the version
  --help                this text

Figures (per scenario, then min/median/max over the repetitions), with issue 8's targets:
  t_avoid     cut → the cut machine's first turn after which no job landed on it    ≤ 20 s
  t_ban       cut → its IP listed on /v1/blocklist                ≤ 75 s internal, ≤ 150 s silenced
  t_release   repair → its IP gone from the blocklist                                ≤ 120 s
  false bans  any other IP banned (any IP at all in origin and fleet-wide scenarios)  0
  started, never flowed   jobs answered 201/202 whose relay sent no byte to the sink  0

Exit codes:
  ${EXIT.ok}  done, no false ban (figures over target are printed loudly, not failed)
  ${EXIT.internal}  internal error
  ${EXIT.usage}  usage error
  ${EXIT.world}  the world could not be built (not root, a program missing, a server that would not start)
  ${EXIT.falseBan}  a false ban happened
  ${EXIT.overTarget}  --strict: a figure over its target or not reached
`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function numberFlag(
  flag: string,
  text: string | undefined,
  limits: { min: number; max: number; fallback: number },
  integer: boolean,
): number {
  if (text === undefined) return limits.fallback;
  const value = Number(text);
  const ok =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value));
  if (!ok || value < limits.min || value > limits.max) {
    const what = integer ? 'a whole number' : 'a number';
    throw new UsageError(
      `--${flag} must be ${what} from ${limits.min} to ${limits.max} (got "${text}")`,
    );
  }
  return value;
}

/** Flags → options; throws UsageError naming the flag. */
export function parseDrillArgs(
  argv: readonly string[],
): DrillOptions | 'help' | 'version' {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  const short = values.short ?? false;
  const requested = (values.scenario ?? [])
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
  for (const name of requested) {
    if (!SCENARIOS.some((spec) => spec.name === name)) {
      throw new UsageError(
        `--scenario ${JSON.stringify(name)} is not one of ${SCENARIOS.map((spec) => spec.name).join(', ')}`,
      );
    }
  }
  const names =
    requested.length > 0
      ? requested
      : short
        ? SHORT_SCENARIOS
        : SCENARIOS.map((spec) => spec.name);
  const repeat =
    short && values.repeat === undefined
      ? 1
      : numberFlag('repeat', values.repeat, LIMITS.repeat, true);
  return {
    scenarios: SCENARIOS.filter((spec) => names.includes(spec.name)),
    repeat,
    machines: numberFlag('machines', values.machines, LIMITS.machines, true),
    short,
    reportFile: values.report,
    keepLogs: values['keep-logs'],
    agentIntervalSeconds: numberFlag(
      'agent-interval',
      values['agent-interval'],
      LIMITS.agentIntervalSeconds,
      false,
    ),
    jobEverySeconds: numberFlag(
      'job-every',
      values['job-every'],
      LIMITS.jobEverySeconds,
      false,
    ),
    jobSeconds: numberFlag(
      'job-seconds',
      values['job-seconds'],
      LIMITS.jobSeconds,
      false,
    ),
    strict: values.strict ?? false,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      short: { type: 'boolean' },
      repeat: { type: 'string' },
      machines: { type: 'string' },
      scenario: { type: 'string', multiple: true },
      report: { type: 'string' },
      'keep-logs': { type: 'string' },
      'agent-interval': { type: 'string' },
      'job-every': { type: 'string' },
      'job-seconds': { type: 'string' },
      strict: { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
