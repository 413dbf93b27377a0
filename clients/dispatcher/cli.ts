/**
 * relaywatch-dispatch: the reference dispatcher. It reads the blocklist once,
 * picks a healthy agent and sends it one relay job, then prints one JSON line
 * saying what it chose and why. Kept apart from bin.ts so tests can run it in
 * process with their own fetch, clock and output.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createLogger } from '../../functions/log.js';
import type { Agent } from './agents.js';
import { parseAgentSpec, parseAgentsFile, relaysUrlOf } from './agents.js';
import type { BlocklistClientState, Decision } from './blocklist-client.js';
import { createBlocklistClient } from './blocklist-client.js';
import type { DispatcherLogger, FetchLike } from './options.js';
import { BLOCKLIST_CLIENT_DEFAULTS, BlocklistClientOptionsError } from './options.js';
import type { BlocklistSnapshot } from './snapshot.js';
import { parseSnapshot } from './snapshot.js';

export const EXIT = {
  /** The agent accepted the job (2xx), or --dry-run chose an agent. */
  dispatched: 0,
  /** A bug: an unexpected exception. */
  internal: 1,
  /** Bad flags, environment or agents file; nothing was sent. */
  usage: 2,
  /** No agent could be chosen: none given, or all blocked with panic off. */
  noAgent: 3,
  /** The chosen agent answered with a non-2xx status. */
  refused: 4,
  /** The chosen agent could not be reached or did not answer in time. */
  unreachable: 5,
} as const;

export const CLI_DEFAULTS = { postTimeoutMs: 10_000 } as const;

export const HELP = `relaywatch-dispatch: send one relay job to a relay agent that the status center does not block.

Usage:
  relaywatch-dispatch --id <id> --source <url> --target <url> --agent <url>=<ip> [--agent ...] [options]

It reads GET /v1/blocklist once, drops blocked agents (unless too few would be left: panic), picks one
of the rest at random and sends POST <agent>/relays {"id","source","target"}. It prints one JSON line on
stdout with the choice and the reasons; logs go to stderr as JSON lines. If the status center cannot be
reached it uses the list saved by --cache-file while that is younger than --max-stale-ms (fail-static),
and otherwise treats no agent as blocked (fail-open): a status center outage never stops dispatching.

Job:
  --id <id>                  job id; the agent reports it as the heartbeat's process
  --source <url>             stream the agent pulls
  --target <url>             where the agent pushes it

Agents (at least one; both forms can be combined):
  --agent <url>=<ip>         agent base URL and the machine IP it reports heartbeats as, e.g.
                             --agent http://127.0.0.1:7001=203.0.113.7; repeatable
  --agents-file <path>       JSON array of {"url": "<agent base URL>", "ip": "<machine IP>"}

Status center:
  --url <url>                base URL of the status center         env RELAYWATCH_URL
  --reader-token <token>     token of the reader role              env RELAYWATCH_READER_TOKEN
  --timeout-ms <ms>          limit on the blocklist request (default ${BLOCKLIST_CLIENT_DEFAULTS.timeoutMs})
  --cache-file <path>        save the last good blocklist here and start from it next run: enables
                             If-None-Match and fail-static across runs (default: no cache, so an
                             unreachable status center means fail-open)
  --max-stale-ms <ms>        how old a cached list may be and still block (default ${BLOCKLIST_CLIENT_DEFAULTS.maxStaleMs})
  --min-healthy-share <0-1>  panic threshold: below this share of healthy agents, use all of them
                             (default ${BLOCKLIST_CLIENT_DEFAULTS.minHealthyShare}; 0 turns panic off)

Agent:
  --agent-token <token>      bearer token the agents accept            env RELAYWATCH_AGENT_TOKEN
  --post-timeout-ms <ms>     limit on the POST to the agent (default ${CLI_DEFAULTS.postTimeoutMs})

Other:
  --dry-run                  choose and print, send nothing (no agent token needed)
  --help                     this text

Flags win over environment variables. Prefer the environment for tokens: command lines are visible to
other users of the machine.

Output (stdout, one line): {"outcome": "dispatched" | "dry-run" | "refused" | "unreachable" | "no-agent",
  "job": {"id"}, "agent": {"url","ip"} | null, "agentStatus", "agentResponse", "error",
  "why": {"reason", "candidates", "healthy", "blocked": [{"url","ip","reason","until","manual"}],
          "panic", "minHealthyShare"},
  "blocklist": {"status": "fresh" | "stale" | "failed-open", "lastSuccessAt", "ageMs", "generatedAt",
                "etag", "activeEntries", "lastError"}}

Exit codes:
  ${EXIT.dispatched}  the agent accepted the job (2xx), or --dry-run chose an agent
  ${EXIT.internal}  unexpected internal error
  ${EXIT.usage}  usage error (flags, environment, agents file); nothing was sent
  ${EXIT.noAgent}  no agent could be chosen (all blocked with --min-healthy-share 0)
  ${EXIT.refused}  the agent answered with a non-2xx status
  ${EXIT.unreachable}  the agent could not be reached or timed out
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

class UsageError extends Error {
  override name = 'UsageError';
}

type Settings = {
  url: string;
  readerToken: string;
  agentToken: string | undefined;
  agents: Agent[];
  job: { id: string; source: string; target: string };
  timeoutMs: number | undefined;
  maxStaleMs: number | undefined;
  minHealthyShare: number | undefined;
  postTimeoutMs: number;
  cacheFile: string | undefined;
  dryRun: boolean;
};

/** Which flag (or variable) the user sets for each library option, for error messages. */
const FLAG_OF_OPTION: Record<string, string> = {
  url: '--url (or RELAYWATCH_URL)',
  token: '--reader-token (or RELAYWATCH_READER_TOKEN)',
  timeoutMs: '--timeout-ms',
  maxStaleMs: '--max-stale-ms',
  minHealthyShare: '--min-healthy-share',
};

function numberFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${flag} must be a number (got "${text}")`);
  return value;
}

function required(value: string | undefined, what: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${what} is required`);
  return value;
}

async function parseSettings(argv: readonly string[], env: DispatchIo['env']): Promise<Settings | 'help'> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return 'help';
  const agents: Agent[] = [];
  for (const spec of values.agent ?? []) {
    const parsed = parseAgentSpec(spec);
    if (!parsed.ok) throw new UsageError(parsed.message);
    agents.push(parsed.agent);
  }
  if (values['agents-file'] !== undefined) {
    let text: string;
    try {
      text = await readFile(values['agents-file'], 'utf8');
    } catch (error) {
      throw new UsageError(`--agents-file ${values['agents-file']}: cannot read it (${(error as Error).message})`);
    }
    const parsed = parseAgentsFile(text, values['agents-file']);
    if (!parsed.ok) throw new UsageError(parsed.message);
    agents.push(...parsed.agents);
  }
  if (agents.length === 0) throw new UsageError('at least one --agent <url>=<ip> or --agents-file is required');
  const dryRun = values['dry-run'] ?? false;
  const agentToken = values['agent-token'] ?? env.RELAYWATCH_AGENT_TOKEN;
  if (!dryRun) required(agentToken, '--agent-token (or RELAYWATCH_AGENT_TOKEN)');
  const postTimeoutMs = numberFlag('--post-timeout-ms', values['post-timeout-ms']) ?? CLI_DEFAULTS.postTimeoutMs;
  if (!Number.isInteger(postTimeoutMs) || postTimeoutMs <= 0) {
    throw new UsageError(`--post-timeout-ms must be a whole number of milliseconds above 0 (got ${postTimeoutMs})`);
  }
  return {
    url: required(values.url ?? env.RELAYWATCH_URL, '--url (or RELAYWATCH_URL)'),
    readerToken: required(values['reader-token'] ?? env.RELAYWATCH_READER_TOKEN, '--reader-token (or RELAYWATCH_READER_TOKEN)'),
    agentToken,
    agents,
    job: {
      id: required(values.id, '--id'),
      source: required(values.source, '--source'),
      target: required(values.target, '--target'),
    },
    timeoutMs: numberFlag('--timeout-ms', values['timeout-ms']),
    maxStaleMs: numberFlag('--max-stale-ms', values['max-stale-ms']),
    minHealthyShare: numberFlag('--min-healthy-share', values['min-healthy-share']),
    postTimeoutMs,
    cacheFile: values['cache-file'],
    dryRun,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      id: { type: 'string' },
      source: { type: 'string' },
      target: { type: 'string' },
      agent: { type: 'string', multiple: true },
      'agents-file': { type: 'string' },
      url: { type: 'string' },
      'reader-token': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'cache-file': { type: 'string' },
      'max-stale-ms': { type: 'string' },
      'min-healthy-share': { type: 'string' },
      'agent-token': { type: 'string' },
      'post-timeout-ms': { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

function jsonLineLogger(write: (text: string) => void, component: string): DispatcherLogger {
  return createLogger({ level: 'info', fields: { component }, write });
}

async function readCache(path: string, log: DispatcherLogger): Promise<BlocklistSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn('cannot read the blocklist cache; starting without it', { cacheFile: path, error: String(error) });
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
  log.warn('ignoring a blocklist cache that is not a saved blocklist', { cacheFile: path });
  return undefined;
}

/** Write-then-rename, so a concurrent run never reads half a file. */
async function writeCache(path: string, snapshot: BlocklistSnapshot, log: DispatcherLogger): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(snapshot)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  } catch (error) {
    log.warn('cannot save the blocklist cache', { cacheFile: path, error: String(error) });
  }
}

function describeState(state: BlocklistClientState) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    status: state.status,
    lastSuccessAt: iso(state.lastSuccessAt),
    ageMs: state.ageMs,
    generatedAt: state.generatedAt,
    etag: state.etag,
    activeEntries: state.activeEntries,
    lastError:
      state.lastError === null || (state.lastSuccessAt !== null && state.lastError.at < state.lastSuccessAt)
        ? null
        : { kind: state.lastError.kind, status: state.lastError.status, message: state.lastError.message },
  };
}

function why(decision: Decision<Agent>, minHealthyShare: number | undefined, status: string) {
  const total = decision.healthy.length + decision.blocked.length;
  const blockedIps = decision.blocked.map(({ candidate }) => candidate.ip).join(', ');
  const parts = [
    `${decision.healthy.length} of ${total} agents healthy${blockedIps ? ` (blocked: ${blockedIps})` : ''}`,
  ];
  if (decision.panic) parts.push('panic: too few healthy, so picked at random among all agents');
  else if (decision.choice !== undefined) parts.push('picked at random among the healthy agents');
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
    minHealthyShare: minHealthyShare ?? BLOCKLIST_CLIENT_DEFAULTS.minHealthyShare,
  };
}

async function readAnswer(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 500);
  }
}

async function dispatch(settings: Settings, io: DispatchIo): Promise<number> {
  const log = jsonLineLogger(io.stderr, 'relaywatch-dispatch');
  const fetch = io.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init));
  const snapshot = settings.cacheFile === undefined ? undefined : await readCache(settings.cacheFile, log);
  const maxStaleMs = settings.maxStaleMs ?? BLOCKLIST_CLIENT_DEFAULTS.maxStaleMs;
  let client: ReturnType<typeof createBlocklistClient>;
  try {
    client = createBlocklistClient({
      url: settings.url,
      token: settings.readerToken,
      // One-shot: refreshMs only sets when a cached list stops counting as fresh.
      refreshMs: Math.max(1, Math.min(BLOCKLIST_CLIENT_DEFAULTS.refreshMs, Math.trunc(maxStaleMs))),
      ...(settings.maxStaleMs === undefined ? {} : { maxStaleMs: settings.maxStaleMs }),
      ...(settings.timeoutMs === undefined ? {} : { timeoutMs: settings.timeoutMs }),
      ...(settings.minHealthyShare === undefined ? {} : { minHealthyShare: settings.minHealthyShare }),
      ...(snapshot === undefined ? {} : { snapshot }),
      ...(io.now === undefined ? {} : { now: io.now }),
      ...(io.random === undefined ? {} : { random: io.random }),
      fetch,
      logger: jsonLineLogger(io.stderr, 'blocklist-client'),
    });
  } catch (error) {
    if (error instanceof BlocklistClientOptionsError) {
      const flag = FLAG_OF_OPTION[error.option] ?? error.option;
      throw new UsageError(`${flag}: ${error.message.replace(/^createBlocklistClient: \S+ /, '')}`);
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

  const agent = decision.choice;
  if (agent === undefined) {
    report({ outcome: 'no-agent', error: 'every agent is blocked and panic is off (--min-healthy-share 0)' });
    return EXIT.noAgent;
  }
  if (settings.dryRun) {
    report({ outcome: 'dry-run' });
    return EXIT.dispatched;
  }
  let response: Response;
  try {
    response = await fetch(relaysUrlOf(agent), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${settings.agentToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(settings.job),
      redirect: 'manual',
      signal: AbortSignal.timeout(settings.postTimeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    const message = timedOut ? `no answer within ${settings.postTimeoutMs} ms` : describeError(error);
    report({ outcome: 'unreachable', error: message });
    return EXIT.unreachable;
  }
  let answer: unknown;
  try {
    answer = await readAnswer(response);
  } catch (error) {
    answer = null;
    log.warn('could not read the agent answer', { error: describeError(error) });
  }
  const accepted = response.status >= 200 && response.status < 300;
  report({ outcome: accepted ? 'dispatched' : 'refused', agentStatus: response.status, agentResponse: answer });
  return accepted ? EXIT.dispatched : EXIT.refused;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runDispatch(io: DispatchIo): Promise<number> {
  try {
    const settings = await parseSettings(io.argv, io.env);
    if (settings === 'help') {
      io.stdout(HELP);
      return EXIT.dispatched;
    }
    return await dispatch(settings, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`relaywatch-dispatch: ${error.message}\nRun relaywatch-dispatch --help for usage.\n`);
      return EXIT.usage;
    }
    jsonLineLogger(io.stderr, 'relaywatch-dispatch').error('internal error', { error: describeError(error) });
    return EXIT.internal;
  }
}
