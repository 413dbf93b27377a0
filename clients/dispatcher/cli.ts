/**
 * relaywatch-dispatch: the reference dispatcher. It reads the blocklist once,
 * starts at a random healthy agent and moves on to the next until one takes
 * the job (dispatch()), then prints one JSON line saying where it landed and
 * why. Kept apart from bin.ts so tests can run it in process with their own
 * fetch, clock and output.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createLogger } from '#contract/log';
import packageJson from '../../package.json' with { type: 'json' };
import type { Setting, SettingTexts } from '../settings.js';
import { readSettings, UsageError } from '../settings.js';
import type { Agent } from './agents.js';
import { parseAgentSpec, parseAgentsFile } from './agents.js';
import type { BlocklistClientState, Decision } from './blocklist-client.js';
import { createBlocklistClient } from './blocklist-client.js';
import type { Attempt, DispatchResult } from './dispatch.js';
import { dispatch as dispatchJob } from './dispatch.js';
import type { FlagKey } from './flags.js';
import { FLAGS, flagAndVariable, flagSections } from './flags.js';
import type { DispatcherLogger, FetchLike } from './options.js';
import {
  BLOCKLIST_CLIENT_DEFAULTS,
  BlocklistClientOptionsError,
  MAX_TIMER_MS,
} from './options.js';
import type { BlocklistSnapshot } from './snapshot.js';
import { parseSnapshot } from './snapshot.js';

export const EXIT = {
  /** An agent took the job (flowing, starting or unknown), or --dry-run chose an agent. */
  dispatched: 0,
  /** A bug: an unexpected exception. */
  internal: 1,
  /** Bad flags, environment or agents file; nothing was sent. */
  usage: 2,
  /** No agent could be chosen: none given, or all blocked with panic off. */
  noAgent: 3,
  /** Every agent tried refused the job (401/403, 409, 429, 5xx, …). */
  refused: 4,
  /** Every agent tried was unreachable or did not answer in time. */
  unreachable: 5,
  /** No agent started the job: failed starts (502 relay_failed), or a mix of failures. */
  notStarted: 6,
  /** An agent refused the job itself as invalid (400); no other agent was tried. */
  badJob: 7,
} as const;

export const VERSION: string = packageJson.version;

export const HELP = `relaywatch-dispatch: send one relay job to a relay agent that the status center does not block,
moving on to the next agent until one takes it.

Usage:
  relaywatch-dispatch --id <id> --source <url> --target <url> --agent <url>=<ip> [--agent ...] [options]

It reads GET /v1/blocklist once, drops blocked agents (unless too few would be left: panic), starts at
one of the rest at random and sends POST <agent>/relays {"id","source","target"}. When that agent
refuses (non-2xx), fails to start the relay (502 relay_failed), cannot be reached or does not answer
within --post-timeout, it tries the next usable agent in turn, up to --max-attempts agents and
--total-timeout in all; after a timeout it first sends DELETE <agent>/relays/<id> so the job cannot
run twice. A 400 (the job itself is invalid) stops at once. 201 "flowing", 202 "starting" and a 201
without a state ("unknown") all count as landed. Each attempt is logged as it ends (a JSON line on
stderr, message "attempt"); stdout gets one JSON line with where the job landed, every attempt and the
reasons. If the status center cannot be reached it uses the list saved by --cache-file while that is
younger than --max-stale (fail-static), and otherwise treats no agent as blocked (fail-open): a
status center outage never stops dispatching.

${flagSections()}

Durations take units (500ms, 10s, 2m, 1h); a plain number is seconds, as in the agent and the CLI.

Flags win over environment variables. Prefer the environment for tokens: command lines are visible to
other users of the machine.

Output (stdout, one line): {"outcome": "dispatched" | "dry-run" | "no-agent" | "refused" | "unreachable"
  | "not-started" | "bad-job", "job": {"id"},
  "agent": {"url","ip"} (where it landed; when nothing landed, the last agent tried) | null,
  "state": "flowing" | "starting" | "unknown" | null, "reason": "<in words>",
  "agentStatus", "agentResponse" (the last attempt's HTTP status and answer), "error",
  "attempts": [{"agent": {"url","ip"}, "outcome": "landed" | "failed_start" | "refused" | "bad_job"
                | "unreachable" | "timeout", "httpStatus", "code", "status", "detail", "state",
                "networkError", "reason", "cancel", "durationMs"}], "durationMs" (all attempts),
  "why": {"reason", "candidates", "healthy", "blocked": [{"url","ip","reason","until","manual"}],
          "panic", "minHealthyShare"},
  "blocklist": {"status": "fresh" | "stale" | "failed-open", "lastSuccessAt", "ageMs", "generatedAt",
                "etag", "activeEntries", "lastError"}}

Exit codes:
  ${EXIT.dispatched}  an agent took the job (flowing, starting or unknown), or --dry-run chose an agent
  ${EXIT.internal}  unexpected internal error
  ${EXIT.usage}  usage error (flags, environment, agents file); nothing was sent
  ${EXIT.noAgent}  no agent could be chosen (all blocked with --min-healthy-share 0)
  ${EXIT.refused}  every agent tried refused the job (401/403, 409, 429, 5xx, ...)
  ${EXIT.unreachable}  every agent tried was unreachable or timed out
  ${EXIT.notStarted}  no agent could start the job (failed starts, or a mix of failures)
  ${EXIT.badJob}  an agent refused the job as invalid (400); no other agent was tried
`;

export type DispatchIo = {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch?: FetchLike;
  now?: () => number;
  random?: () => number;
};

type Settings = {
  url: string;
  readerToken: string;
  agentToken: string | undefined;
  agents: Agent[];
  job: { id: string; source: string; target: string };
  timeoutMs: number;
  maxStaleMs: number;
  minHealthyShare: number;
  postTimeoutMs: number;
  totalTimeoutMs: number;
  maxAttempts: number;
  cacheFile: string | undefined;
  dryRun: boolean;
  /** How an error message names a flag: as the user gave it. */
  nameOf: (key: FlagKey) => string;
};

type Read = SettingTexts<typeof FLAGS>;

/** The flag each library option comes from, so its errors name that flag. */
const FLAG_OF_OPTION: Record<string, FlagKey> = Object.fromEntries(
  (Object.keys(FLAGS) as FlagKey[]).flatMap((key) => {
    const flag: Setting & { option?: string } = FLAGS[key];
    return flag.option === undefined ? [] : [[flag.option, key]];
  }),
);

function numberFlag(
  flag: string,
  text: string | undefined,
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new UsageError(`${flag} must be a number (got "${text}")`);
  return value;
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === '')
    throw new UsageError(`${what} is required`);
  return value;
}

/** A whole number from 1 to `max`. */
function whole(flag: string, value: number, what: string, max: number) {
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new UsageError(
      `${flag} must be a whole number of ${what} above 0 and at most ${max} (got ${value})`,
    );
  }
  return value;
}

/**
 * What the CLI reads from its flags and variables, checked. The library
 * options (URL, reader token, blocklist timeout, staleness, panic share) are
 * checked by createBlocklistClient, whose errors name the flag (dispatch).
 */
async function parseSettings(read: Read): Promise<Settings> {
  /** The old flag when the value came under one, else the flag and its variable. */
  const nameOf = (key: FlagKey): string =>
    read.nameOf(key, () => flagAndVariable(key));
  /** The value came under an old flag, as a plain number of milliseconds. */
  const inOldMs = (key: FlagKey) => read.given(key)?.unit === 'ms';
  /**
   * A duration flag in milliseconds, one setTimeout can wait: a duration above
   * 0 and at most MAX_TIMER_MS. An old flag's plain number is not checked here
   * but where it is used, in milliseconds as before: by agentTimerMs for the
   * agent timeouts, by createBlocklistClient for the others.
   */
  const timerMs = (key: FlagKey): number => {
    const ms = read.durationMs(key) ?? Number.NaN;
    if (inOldMs(key) || (ms > 0 && ms <= MAX_TIMER_MS)) return ms;
    throw new UsageError(
      `${nameOf(key)} must be a duration above 0 and at most ${MAX_TIMER_MS}ms (about 24.8d) (got "${read.text(key)}")`,
    );
  };
  /**
   * An agent timeout: a duration checked by timerMs, or under its old flag a
   * whole number of milliseconds in the same range. Each value is checked once.
   */
  const agentTimerMs = (key: FlagKey): number =>
    inOldMs(key)
      ? whole(nameOf(key), timerMs(key), 'milliseconds', MAX_TIMER_MS)
      : timerMs(key);
  const timeoutMs = timerMs('timeout');
  const maxStaleMs = timerMs('maxStale');
  const postTimeoutMs = agentTimerMs('postTimeout');
  const totalTimeoutMs = agentTimerMs('totalTimeout');
  const agents: Agent[] = [];
  const specs = read.flags[FLAGS.agent.flag];
  for (const spec of Array.isArray(specs) ? specs : []) {
    const parsed = parseAgentSpec(spec);
    if (!parsed.ok) throw new UsageError(parsed.message);
    agents.push(parsed.agent);
  }
  const agentsFile = read.text('agentsFile');
  if (agentsFile !== undefined) {
    let text: string;
    try {
      text = await readFile(agentsFile, 'utf8');
    } catch (error) {
      throw new UsageError(
        `${nameOf('agentsFile')} ${agentsFile}: cannot read it (${(error as Error).message})`,
      );
    }
    const parsed = parseAgentsFile(text, agentsFile);
    if (!parsed.ok) throw new UsageError(parsed.message);
    agents.push(...parsed.agents);
  }
  if (agents.length === 0)
    throw new UsageError(
      'at least one --agent <url>=<ip> or --agents-file is required',
    );
  const dryRun = read.flags[FLAGS.dryRun.flag] === true;
  const agentToken = read.text('agentToken');
  if (!dryRun) required(agentToken, nameOf('agentToken'));
  const maxAttempts = whole(
    nameOf('maxAttempts'),
    numberFlag(nameOf('maxAttempts'), read.text('maxAttempts')) ?? Number.NaN,
    'agents',
    10_000,
  );
  return {
    url: required(read.text('url'), nameOf('url')),
    readerToken: required(read.text('readerToken'), nameOf('readerToken')),
    agentToken,
    agents,
    job: {
      id: required(read.text('id'), nameOf('id')),
      source: required(read.text('source'), nameOf('source')),
      target: required(read.text('target'), nameOf('target')),
    },
    timeoutMs,
    maxStaleMs,
    minHealthyShare:
      numberFlag(nameOf('minHealthyShare'), read.text('minHealthyShare')) ??
      Number.NaN,
    postTimeoutMs,
    totalTimeoutMs,
    maxAttempts,
    cacheFile: read.text('cacheFile'),
    dryRun,
    nameOf,
  };
}

function jsonLineLogger(
  write: (text: string) => void,
  component: string,
): DispatcherLogger {
  return createLogger({ level: 'info', fields: { component }, write });
}

async function readCache(
  path: string,
  log: DispatcherLogger,
): Promise<BlocklistSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn('cannot read the blocklist cache; starting without it', {
        cacheFile: path,
        error: String(error),
      });
    }
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = parseSnapshot(json);
  if (parsed.ok) return parsed.value;
  log.warn('ignoring a blocklist cache that is not a saved blocklist', {
    cacheFile: path,
  });
  return undefined;
}

/** Write-then-rename, so a concurrent run never reads half a file. */
async function writeCache(
  path: string,
  snapshot: BlocklistSnapshot,
  log: DispatcherLogger,
): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(snapshot)}\n`, {
      mode: 0o600,
    });
    await rename(temporary, path);
  } catch (error) {
    log.warn('cannot save the blocklist cache', {
      cacheFile: path,
      error: String(error),
    });
  }
}

function describeState(state: BlocklistClientState) {
  const iso = (ms: number | null) =>
    ms === null ? null : new Date(ms).toISOString();
  return {
    status: state.status,
    lastSuccessAt: iso(state.lastSuccessAt),
    ageMs: state.ageMs,
    generatedAt: state.generatedAt,
    etag: state.etag,
    activeEntries: state.activeEntries,
    lastError:
      state.lastError === null ||
      (state.lastSuccessAt !== null && state.lastError.at < state.lastSuccessAt)
        ? null
        : {
            kind: state.lastError.kind,
            status: state.lastError.status,
            message: state.lastError.message,
          },
  };
}

function why(
  decision: Decision<Agent>,
  minHealthyShare: number,
  status: string,
) {
  const total = decision.healthy.length + decision.blocked.length;
  const blockedIps = decision.blocked
    .map(({ candidate }) => candidate.ip)
    .join(', ');
  const parts = [
    `${decision.healthy.length} of ${total} agents healthy${blockedIps ? ` (blocked: ${blockedIps})` : ''}`,
  ];
  if (decision.panic)
    parts.push('panic: too few healthy, so picked at random among all agents');
  else if (decision.choice !== undefined)
    parts.push('picked at random among the healthy agents');
  else parts.push('no agent usable');
  parts.push(
    status === 'fresh'
      ? 'blocklist fresh'
      : status === 'stale'
        ? 'blocklist stale: status center unreachable, using the last good list'
        : 'blocklist failed open: no usable list, nothing treated as blocked',
  );
  return {
    reason: parts.join('; '),
    candidates: total,
    healthy: decision.healthy.length,
    blocked: decision.blocked.map(({ candidate, ban }) => ({
      url: candidate.url,
      ip: candidate.ip,
      reason: ban.reason,
      until: ban.until,
      manual: ban.manual,
    })),
    panic: decision.panic,
    minHealthyShare,
  };
}

async function dispatch(settings: Settings, io: DispatchIo): Promise<number> {
  const log = jsonLineLogger(io.stderr, 'relaywatch-dispatch');
  const fetch =
    io.fetch ??
    ((input: string, init: RequestInit) => globalThis.fetch(input, init));
  const snapshot =
    settings.cacheFile === undefined
      ? undefined
      : await readCache(settings.cacheFile, log);
  let client: ReturnType<typeof createBlocklistClient>;
  try {
    client = createBlocklistClient({
      url: settings.url,
      token: settings.readerToken,
      // One-shot: refreshMs only sets when a cached list stops counting as fresh.
      refreshMs: Math.max(
        1,
        Math.min(
          BLOCKLIST_CLIENT_DEFAULTS.refreshMs,
          Math.trunc(settings.maxStaleMs),
        ),
      ),
      maxStaleMs: settings.maxStaleMs,
      timeoutMs: settings.timeoutMs,
      minHealthyShare: settings.minHealthyShare,
      ...(snapshot === undefined ? {} : { snapshot }),
      ...(io.now === undefined ? {} : { now: io.now }),
      ...(io.random === undefined ? {} : { random: io.random }),
      fetch,
      logger: jsonLineLogger(io.stderr, 'blocklist-client'),
    });
  } catch (error) {
    if (error instanceof BlocklistClientOptionsError) {
      const key = FLAG_OF_OPTION[error.option];
      const flag = key === undefined ? error.option : settings.nameOf(key);
      throw new UsageError(
        `${flag}: ${error.message.replace(/^createBlocklistClient: \S+ /, '')}`,
      );
    }
    throw error;
  }

  const refreshed = await client.refresh();
  if (settings.cacheFile !== undefined && refreshed.outcome !== 'failed') {
    const saved = client.snapshot();
    if (saved !== null) await writeCache(settings.cacheFile, saved, log);
  }
  const decision = client.decide(settings.agents);
  const blocklist = describeState(client.state());
  const report = (fields: Record<string, unknown>) =>
    io.stdout(
      `${JSON.stringify({
        outcome: fields.outcome,
        job: { id: settings.job.id },
        agent: decision.choice ?? null,
        ...fields,
        why: why(decision, settings.minHealthyShare, blocklist.status),
        blocklist,
      })}\n`,
    );

  const choice = decision.choice;
  if (choice === undefined) {
    report({
      outcome: 'no-agent',
      error: 'every agent is blocked and panic is off (--min-healthy-share 0)',
    });
    return EXIT.noAgent;
  }
  if (settings.dryRun) {
    report({ outcome: 'dry-run' });
    return EXIT.dispatched;
  }
  // Start at the random choice and go round, so that load spreads and every usable agent gets its turn.
  const at = settings.agents.indexOf(choice);
  const order = [...settings.agents.slice(at), ...settings.agents.slice(0, at)];
  let tried = 0;
  const result = await dispatchJob(settings.job, order, {
    blocklist: client,
    ...(settings.agentToken === undefined
      ? {}
      : { token: settings.agentToken }),
    attemptTimeoutMs: settings.postTimeoutMs,
    totalTimeoutMs: settings.totalTimeoutMs,
    maxAttempts: settings.maxAttempts,
    fetch,
    onAttempt: (attempt) => {
      const fields = {
        job: settings.job.id,
        attempt: ++tried,
        ...attemptFields(attempt),
      };
      if (attempt.outcome === 'landed') log.info('attempt', fields);
      else log.warn('attempt', fields);
    },
  });
  const last = result.attempts.at(-1);
  const outcome = outcomeOf(result);
  io.stdout(
    `${JSON.stringify({
      outcome,
      job: { id: settings.job.id },
      agent: result.agent ?? last?.agent ?? null,
      state: result.state,
      reason: result.reason,
      agentStatus: last?.httpStatus ?? null,
      agentResponse: last?.answer ?? null,
      ...(result.landed
        ? {}
        : {
            error:
              last?.networkError ??
              last?.detail ??
              last?.reason ??
              result.reason,
          }),
      attempts: result.attempts.map(attemptFields),
      durationMs: result.durationMs,
      why: why(decision, settings.minHealthyShare, blocklist.status),
      blocklist,
    })}\n`,
  );
  return EXIT_OF_OUTCOME[outcome];
}

type Outcome =
  | 'dispatched'
  | 'no-agent'
  | 'refused'
  | 'unreachable'
  | 'not-started'
  | 'bad-job';

const EXIT_OF_OUTCOME: Record<Outcome, number> = {
  dispatched: EXIT.dispatched,
  'no-agent': EXIT.noAgent,
  refused: EXIT.refused,
  unreachable: EXIT.unreachable,
  'not-started': EXIT.notStarted,
  'bad-job': EXIT.badJob,
};

function outcomeOf(result: DispatchResult): Outcome {
  if (result.landed) return 'dispatched';
  if (result.stoppedBy === 'bad_job') return 'bad-job';
  if (result.stoppedBy === 'no_usable_agent' || result.attempts.length === 0)
    return 'no-agent';
  if (result.attempts.every((attempt) => attempt.outcome === 'refused'))
    return 'refused';
  if (
    result.attempts.every(
      (attempt) =>
        attempt.outcome === 'unreachable' || attempt.outcome === 'timeout',
    )
  ) {
    return 'unreachable';
  }
  return 'not-started';
}

/** An attempt as printed: everything but the answer body, which can be long and holds the job's URLs. */
function attemptFields(attempt: Attempt) {
  const { answer: _answer, ...printed } = attempt;
  return printed;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error
    ? `${error.message}: ${error.cause.message}`
    : error.message;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runDispatch(io: DispatchIo): Promise<number> {
  try {
    let read: Read;
    try {
      read = readSettings(FLAGS, { argv: io.argv, env: io.env });
    } catch (error) {
      throw new UsageError(
        error instanceof Error ? error.message : String(error),
      );
    }
    for (const warning of read.warnings)
      jsonLineLogger(io.stderr, 'relaywatch-dispatch').warn(warning);
    if (read.flags[FLAGS.help.flag]) {
      io.stdout(HELP);
      return EXIT.dispatched;
    }
    if (read.flags[FLAGS.version.flag]) {
      io.stdout(`relaywatch-dispatch ${VERSION}\n`);
      return EXIT.dispatched;
    }
    return await dispatch(await parseSettings(read), io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(
        `relaywatch-dispatch: ${error.message}\nRun relaywatch-dispatch --help for usage.\n`,
      );
      return EXIT.usage;
    }
    jsonLineLogger(io.stderr, 'relaywatch-dispatch').error('internal error', {
      error: describeError(error),
    });
    return EXIT.internal;
  }
}
