/**
 * dispatch(): hands one relay job to the first agent that takes it. Agents are
 * tried in the order given, blocked ones left out (with the panic rule of
 * filterHealthy); a refusal, a failed start, a timeout or an unreachable agent
 * moves on to the next one. A 400 stops at once: the job itself is bad, and
 * every agent would say so.
 */
import { readRefusal } from '#contract/errors';
import type { Agent } from './agents.js';
import { relaysUrlOf } from './agents.js';
import type { BlocklistClient } from './blocklist-client.js';
import type { FetchLike } from './options.js';
import {
  BlocklistClientOptionsError,
  describeValue,
  fn,
  milliseconds,
} from './options.js';
import type { BlockedCandidate } from './selection.js';

export type DispatchJob = { id: string; source: string; target: string };

export const DISPATCH_DEFAULTS = {
  /** A little above the agent's 10 s confirm timeout, so a 202 "starting" arrives before we give up. */
  attemptTimeoutMs: 15_000,
  totalTimeoutMs: 60_000,
  maxAttempts: 10,
} as const;

/** After a POST that timed out, the most the DELETE that cancels it may take. */
export const CANCEL_TIMEOUT_MS = 2_000;

/** The most of a non-JSON answer kept in an attempt. */
const MAX_TEXT_ANSWER = 500;

export type DispatchOptions = {
  /** The agents' bearer token; without it no Authorization header is sent. */
  token?: string;
  /** Leaves blocked agents out (all of them are tried in panic); without it every agent is tried. */
  blocklist?: Pick<BlocklistClient, 'decide'>;
  /** Limit on one agent's answer (POST, and the GET that checks an existing job). Default 15 000 ms. */
  attemptTimeoutMs?: number;
  /** Limit on the whole call; an attempt never runs past it. Default 60 000 ms. */
  totalTimeoutMs?: number;
  /** Most agents tried. Default 10. */
  maxAttempts?: number;
  /** Default globalThis.fetch. */
  fetch?: FetchLike;
  /** Called after each attempt, before the next one starts; what it throws is ignored. */
  onAttempt?: (attempt: Attempt) => void;
};

/** flowing: the agent saw frames; starting: accepted, not yet confirmed; unknown: the agent did not say. */
export type LandedState = 'flowing' | 'starting' | 'unknown';

/**
 * - `landed`: the agent took the job (2xx, or the same job already runs there).
 * - `failed_start`: the relay failed before flowing (502 relay_failed); the agent did not keep the job.
 * - `refused`: any other answer that is not a 2xx or a 400 (token, limit, busy, HTTP errors).
 * - `bad_job`: 400, the job is invalid; no other agent is tried.
 * - `unreachable`: a network error. `timeout`: no answer within the attempt's limit.
 */
export type AttemptOutcome =
  | 'landed'
  | 'failed_start'
  | 'refused'
  | 'bad_job'
  | 'unreachable'
  | 'timeout';

export type Attempt = {
  agent: Agent;
  outcome: AttemptOutcome;
  /** HTTP status of the POST; null without an answer. */
  httpStatus: number | null;
  /** The agent's error code (`relay_failed`, `relay_limit`, …, the contract's `code`); null without one. */
  code: string | null;
  /** The relay's status from the agent: connect_failed, origin_error or error on a failed start; the relay's status when landed. */
  status: string | null;
  /** The agent's detail (or its issues, joined); null without one. */
  detail: string | null;
  /** Landed only. */
  state: LandedState | null;
  /** The network error or timeout, in words; null when the agent answered. */
  networkError: string | null;
  /** The answer: parsed JSON, or the start of a text body; null without one. */
  answer: unknown;
  /** What happened, in words. */
  reason: string;
  /** After a timeout, the DELETE sent so that a job the agent may still start does not run twice. */
  cancel: 'deleted' | 'not_found' | 'failed' | null;
  durationMs: number;
};

/** Why dispatch() stopped trying. */
export type DispatchStop =
  | 'landed'
  | 'bad_job'
  | 'exhausted'
  | 'max_attempts'
  | 'total_timeout'
  | 'no_usable_agent';

export type DispatchSelection = {
  candidates: number;
  healthy: number;
  blocked: BlockedCandidate<Agent>[];
  panic: boolean;
  /** Agents that could be tried, in the order they would be. */
  usable: Agent[];
};

type DispatchCommon = {
  stoppedBy: DispatchStop;
  /** The outcome in words, e.g. "origin unreachable from 5 of 5 agents". */
  reason: string;
  attempts: Attempt[];
  selection: DispatchSelection;
  /** Usable agents left untried because a bound was reached. */
  notTried: Agent[];
  durationMs: number;
};

export type DispatchResult =
  | (DispatchCommon & {
      landed: true;
      agent: Agent;
      state: LandedState;
      relay: unknown;
    })
  | (DispatchCommon & { landed: false; agent: null; state: null; relay: null });

const SOURCE = 'dispatch';

const KNOWN_OPTIONS = new Set<string>([
  'token',
  'blocklist',
  'attemptTimeoutMs',
  'totalTimeoutMs',
  'maxAttempts',
  'fetch',
  'onAttempt',
]);

type Resolved = {
  token: string | undefined;
  blocklist: Pick<BlocklistClient, 'decide'> | undefined;
  attemptTimeoutMs: number;
  totalTimeoutMs: number;
  maxAttempts: number;
  fetch: FetchLike;
  onAttempt: ((attempt: Attempt) => void) | undefined;
};

const refuse = (option: string, message: string) =>
  new BlocklistClientOptionsError(option, message, SOURCE);

/** Validates dispatch()'s options and fills in the defaults; throws BlocklistClientOptionsError naming the option. */
export function resolveDispatchOptions(
  options: DispatchOptions = {},
): Resolved {
  if (typeof options !== 'object' || options === null)
    throw refuse('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key))
      throw refuse(
        key,
        `is not an option (known: ${[...KNOWN_OPTIONS].join(', ')})`,
      );
  }
  // A token with whitespace or control characters would break (or inject into) the header.
  if (
    options.token !== undefined &&
    (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token))
  ) {
    throw refuse(
      'token',
      'must be a non-empty agent token of printable characters without spaces',
    );
  }
  if (
    options.blocklist !== undefined &&
    typeof options.blocklist?.decide !== 'function'
  ) {
    throw refuse(
      'blocklist',
      'must be a blocklist client (from createBlocklistClient)',
    );
  }
  const maxAttempts = options.maxAttempts ?? DISPATCH_DEFAULTS.maxAttempts;
  if (
    typeof maxAttempts !== 'number' ||
    !Number.isInteger(maxAttempts) ||
    maxAttempts < 1
  ) {
    throw refuse(
      'maxAttempts',
      `must be a whole number from 1 (got ${describeValue(options.maxAttempts)})`,
    );
  }
  return {
    token: options.token,
    blocklist: options.blocklist,
    attemptTimeoutMs: milliseconds(
      'attemptTimeoutMs',
      options.attemptTimeoutMs,
      DISPATCH_DEFAULTS.attemptTimeoutMs,
      SOURCE,
    ),
    totalTimeoutMs: milliseconds(
      'totalTimeoutMs',
      options.totalTimeoutMs,
      DISPATCH_DEFAULTS.totalTimeoutMs,
      SOURCE,
    ),
    maxAttempts,
    fetch: fn<FetchLike>(
      'fetch',
      options.fetch,
      (input, init) => globalThis.fetch(input, init),
      SOURCE,
    ),
    onAttempt: fn<((attempt: Attempt) => void) | undefined>(
      'onAttempt',
      options.onAttempt,
      undefined,
      SOURCE,
    ),
  };
}

function checkJob(job: unknown): DispatchJob {
  const record =
    typeof job === 'object' && job !== null
      ? (job as Record<string, unknown>)
      : undefined;
  for (const field of ['id', 'source', 'target'] as const) {
    const value = record?.[field];
    if (typeof value !== 'string' || value === '') {
      throw refuse(
        `job.${field}`,
        `must be a non-empty string (got ${describeValue(value)})`,
      );
    }
  }
  return job as DispatchJob;
}

function checkAgents(agents: unknown): Agent[] {
  if (!Array.isArray(agents))
    throw refuse(
      'agents',
      `must be an array of {url, ip} (got ${describeValue(agents)})`,
    );
  for (const [index, agent] of agents.entries()) {
    const url = typeof agent?.url === 'string' ? URL.parse(agent.url) : null;
    if (
      url === null ||
      (url.protocol !== 'http:' && url.protocol !== 'https:')
    ) {
      throw refuse(
        `agents[${index}].url`,
        `must be an http(s) URL (got ${describeValue(agent?.url)})`,
      );
    }
    if (typeof agent.ip !== 'string')
      throw refuse(
        `agents[${index}].ip`,
        `must be a string (got ${describeValue(agent.ip)})`,
      );
  }
  return agents as Agent[];
}

type Answer = Record<string, unknown> | undefined;

const text = (value: unknown): string | null =>
  typeof value === 'string' && value !== '' ? value : null;
const asRecord = (value: unknown): Answer =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;

/** `{"issues": [{"path", "message"}]}` → "source must be …; target …". */
function issuesText(issues: unknown): string | null {
  if (!Array.isArray(issues)) return null;
  const parts = issues
    .map((issue) => asRecord(issue))
    .filter((issue) => issue !== undefined)
    .map((issue) =>
      [text(issue.path), text(issue.message)]
        .filter((part) => part !== null)
        .join(' '),
    )
    .filter((part) => part !== '');
  return parts.length === 0 ? null : parts.join('; ');
}

async function readAnswer(response: Response): Promise<unknown> {
  const body = await response.text();
  if (body === '') return null;
  try {
    return JSON.parse(body);
  } catch {
    return body.slice(0, MAX_TEXT_ANSWER);
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error
    ? `${error.message}: ${error.cause.message}`
    : error.message;
}

/** What the agent says of a relay it keeps: its `state`, else what its status and HTTP status imply. */
function stateOf(view: Answer, httpStatus: number): LandedState {
  const state = view?.state;
  if (state === 'flowing' || state === 'starting') return state;
  if (state === undefined && view?.status === 'ok') return 'flowing';
  // 202 means accepted, not yet confirmed, whatever the body says.
  if (httpStatus === 202) return 'starting';
  return 'unknown';
}

const LANDED_REASON: Record<LandedState, string> = {
  flowing: 'landed and flowing',
  starting: 'accepted, not yet confirmed flowing (starting)',
  unknown: 'accepted; the agent did not say whether it flows',
};

const FAILED_START_REASON: Record<string, string> = {
  connect_failed: 'origin unreachable from this agent',
  origin_error: 'origin refused the relay or answered an error',
};

type Verdict = Omit<
  Attempt,
  'agent' | 'durationMs' | 'cancel' | 'networkError'
>;

type Context = {
  config: Resolved;
  job: DispatchJob;
  headers: Record<string, string>;
};

/** After 409 relay_exists: the job counts as landed only if the relay under its id is this very job. */
async function checkExisting(
  agent: Agent,
  context: Context,
  signal: AbortSignal,
  base: Verdict,
): Promise<Verdict> {
  const url = `${relaysUrlOf(agent)}/${encodeURIComponent(context.job.id)}`;
  let problem: string;
  try {
    const response = await context.config.fetch(url, {
      method: 'GET',
      headers: context.headers,
      redirect: 'manual',
      signal,
    });
    const view = asRecord(await readAnswer(response));
    if (response.status === 200 && view !== undefined) {
      if (
        view.source === context.job.source &&
        view.target === context.job.target
      ) {
        const state = stateOf(view, response.status);
        return {
          ...base,
          outcome: 'landed',
          state,
          status: text(view.status),
          answer: view,
          reason: `the same job already runs here; ${LANDED_REASON[state]}`,
        };
      }
      return { ...base, reason: 'agent already runs another job with this id' };
    }
    problem = `GET answered HTTP ${response.status}`;
  } catch (error) {
    problem = signal.aborted ? 'no answer in time' : describeError(error);
  }
  return {
    ...base,
    reason: `agent already has a job with this id and could not show it (${problem})`,
  };
}

async function judge(
  agent: Agent,
  context: Context,
  response: Response,
  signal: AbortSignal,
): Promise<Verdict> {
  const httpStatus = response.status;
  const answer = await readAnswer(response);
  const body = asRecord(answer);
  // A 2xx is a relay view, not a refusal: only other answers carry a code.
  const refusal =
    httpStatus >= 200 && httpStatus < 300 ? null : readRefusal(answer);
  const code = refusal?.code ?? null;
  const detail = text(body?.detail) ?? issuesText(body?.issues);
  const base: Verdict = {
    outcome: 'refused',
    httpStatus,
    code,
    status: null,
    detail,
    state: null,
    answer,
    reason: '',
  };
  if (httpStatus >= 200 && httpStatus < 300) {
    const state = stateOf(body, httpStatus);
    return {
      ...base,
      outcome: 'landed',
      state,
      status: text(body?.status),
      reason: LANDED_REASON[state],
    };
  }
  if (httpStatus === 400) {
    return {
      ...base,
      outcome: 'bad_job',
      reason: `the agent refused the job as invalid: ${detail ?? refusal?.error ?? code ?? 'HTTP 400'}`,
    };
  }
  if (httpStatus === 401 || httpStatus === 403) {
    return { ...base, reason: `agent refused our token (HTTP ${httpStatus})` };
  }
  if (httpStatus === 502 && code === 'relay_failed') {
    const status = text(body?.status) ?? 'error';
    const words = FAILED_START_REASON[status] ?? 'relay failed to start';
    return {
      ...base,
      outcome: 'failed_start',
      status,
      reason: detail === null ? words : `${words}: ${detail}`,
    };
  }
  if (httpStatus === 409 && code === 'relay_exists')
    return checkExisting(agent, context, signal, base);
  if (httpStatus === 409 && code === 'relay_limit')
    return { ...base, reason: 'agent at its relay limit' };
  if (httpStatus === 429 || httpStatus === 503)
    return { ...base, reason: `agent busy (HTTP ${httpStatus})` };
  return {
    ...base,
    reason: `agent answered HTTP ${httpStatus}${code === null ? '' : ` ${code}`}`,
  };
}

/** Best effort: a job whose POST timed out may still start, and we are about to send it elsewhere. */
async function cancel(
  agent: Agent,
  context: Context,
): Promise<Attempt['cancel']> {
  try {
    const response = await context.config.fetch(
      `${relaysUrlOf(agent)}/${encodeURIComponent(context.job.id)}`,
      {
        method: 'DELETE',
        headers: context.headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(
          Math.min(CANCEL_TIMEOUT_MS, context.config.attemptTimeoutMs),
        ),
      },
    );
    await response.body?.cancel();
    if (response.status === 204 || response.status === 200) return 'deleted';
    return response.status === 404 ? 'not_found' : 'failed';
  } catch {
    return 'failed';
  }
}

async function attemptOn(
  agent: Agent,
  context: Context,
  timeoutMs: number,
  cutByTotal: boolean,
): Promise<Attempt> {
  const begin = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const elapsed = () => Math.round(performance.now() - begin);
  const none = {
    httpStatus: null,
    code: null,
    status: null,
    detail: null,
    state: null,
    answer: null,
  } as const;
  try {
    const response = await context.config.fetch(relaysUrlOf(agent), {
      method: 'POST',
      headers: { ...context.headers, 'content-type': 'application/json' },
      body: JSON.stringify(context.job),
      // A redirect is an answer to report, not one to follow with the token attached.
      redirect: 'manual',
      signal,
    });
    const verdict = await judge(agent, context, response, signal);
    return {
      ...verdict,
      agent,
      networkError: null,
      cancel: null,
      durationMs: elapsed(),
    };
  } catch (error) {
    const durationMs = elapsed();
    if (signal.aborted) {
      const networkError = `no answer within ${timeoutMs} ms${cutByTotal ? ' (the overall bound)' : ''}`;
      const cancelled = await cancel(agent, context);
      return {
        ...none,
        agent,
        outcome: 'timeout',
        networkError,
        reason: networkError,
        cancel: cancelled,
        durationMs,
      };
    }
    const networkError = describeError(error);
    return {
      ...none,
      agent,
      outcome: 'unreachable',
      networkError,
      reason: `agent unreachable: ${networkError}`,
      cancel: null,
      durationMs,
    };
  }
}

const agentsWord = (total: number) => (total === 1 ? 'agent' : 'agents');

/** The group an unsuccessful attempt is counted in, and how a group reads. */
function groupOf(attempt: Attempt): {
  key: string;
  phrase: (of: string) => string;
} {
  const { httpStatus, code } = attempt;
  switch (attempt.outcome) {
    case 'failed_start':
      if (attempt.status === 'connect_failed')
        return {
          key: 'connect_failed',
          phrase: (of) => `origin unreachable from ${of}`,
        };
      if (attempt.status === 'origin_error')
        return {
          key: 'origin_error',
          phrase: (of) => `origin refused the relay at ${of}`,
        };
      return {
        key: 'start_error',
        phrase: (of) => `relay failed to start on ${of}`,
      };
    case 'unreachable':
      return { key: 'unreachable', phrase: (of) => `${of} unreachable` };
    case 'timeout':
      return { key: 'timeout', phrase: (of) => `no answer in time from ${of}` };
    default:
      if (httpStatus === 401 || httpStatus === 403)
        return { key: 'auth', phrase: (of) => `${of} refused our token` };
      if (httpStatus === 409 && code === 'relay_limit')
        return { key: 'limit', phrase: (of) => `${of} at their relay limit` };
      if (httpStatus === 409 && code === 'relay_exists') {
        return {
          key: 'exists',
          phrase: (of) => `${of} already had another job with this id`,
        };
      }
      return {
        key: `http:${httpStatus}`,
        phrase: (of) => `${of} answered HTTP ${httpStatus}`,
      };
  }
}

/** "origin unreachable from 3 of 5 agents, 2 of 5 agents unreachable". */
export function summarizeFailures(attempts: readonly Attempt[]): string {
  const total = attempts.length;
  const groups = new Map<
    string,
    { count: number; phrase: (of: string) => string }
  >();
  for (const attempt of attempts) {
    const { key, phrase } = groupOf(attempt);
    const group = groups.get(key) ?? { count: 0, phrase };
    group.count += 1;
    groups.set(key, group);
  }
  return [...groups.values()]
    .map(({ count, phrase }) =>
      phrase(`${count} of ${total} ${agentsWord(total)}`),
    )
    .join(', ');
}

function untriedText(
  stoppedBy: DispatchStop,
  notTried: number,
  config: Resolved,
): string | null {
  if (notTried === 0) return null;
  const agents = `${notTried} more ${agentsWord(notTried)} not tried`;
  if (stoppedBy === 'max_attempts')
    return `${agents} (maxAttempts ${config.maxAttempts})`;
  if (stoppedBy === 'total_timeout')
    return `${agents} (overall bound of ${config.totalTimeoutMs} ms reached)`;
  return null;
}

function selectionOf(
  agents: Agent[],
  blocklist: Resolved['blocklist'],
): DispatchSelection {
  if (blocklist === undefined) {
    return {
      candidates: agents.length,
      healthy: agents.length,
      blocked: [],
      panic: false,
      usable: [...agents],
    };
  }
  const decision = blocklist.decide(agents);
  return {
    candidates: agents.length,
    healthy: decision.healthy.length,
    blocked: decision.blocked,
    panic: decision.panic,
    usable: decision.usable,
  };
}

/**
 * Sends `job` to the first usable agent that takes it and says where it
 * landed, with every attempt and its answer. Never rejects for an agent's
 * failure; bad arguments throw BlocklistClientOptionsError naming them.
 *
 * @example
 * const result = await dispatch(
 *   { id: 'cam-7', source: 'rtmp://origin.example/live/7', target: 'rtmp://cdn.example/live/7' },
 *   agents,
 *   { blocklist, token: process.env.RELAYWATCH_AGENT_TOKEN },
 * );
 * if (result.landed) console.log(`on ${result.agent.ip}, ${result.state}`);
 * else console.error(result.reason); // e.g. "origin unreachable from 5 of 5 agents"
 */
export async function dispatch(
  job: DispatchJob,
  agents: readonly Agent[],
  options?: DispatchOptions,
): Promise<DispatchResult> {
  const config = resolveDispatchOptions(options);
  const checkedJob = checkJob(job);
  const checkedAgents = checkAgents(agents);
  const begin = performance.now();
  const deadline = begin + config.totalTimeoutMs;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (config.token !== undefined)
    headers.authorization = `Bearer ${config.token}`;
  const context: Context = { config, job: checkedJob, headers };
  const selection = selectionOf(checkedAgents, config.blocklist);
  const attempts: Attempt[] = [];
  const common = (
    stoppedBy: DispatchStop,
    reason: string,
    notTried: Agent[] = [],
  ) => ({
    stoppedBy,
    reason,
    attempts,
    selection,
    notTried,
    durationMs: Math.round(performance.now() - begin),
  });
  const failed = (
    stoppedBy: DispatchStop,
    reason: string,
    notTried?: Agent[],
  ): DispatchResult => ({
    ...common(stoppedBy, reason, notTried),
    landed: false,
    agent: null,
    state: null,
    relay: null,
  });

  if (selection.usable.length === 0) {
    const reason =
      checkedAgents.length === 0
        ? 'no agent given'
        : `every agent is blocked (${checkedAgents.length}) and panic is off`;
    return failed('no_usable_agent', reason);
  }
  let stoppedBy: DispatchStop = 'exhausted';
  for (const agent of selection.usable) {
    if (attempts.length >= config.maxAttempts) {
      stoppedBy = 'max_attempts';
      break;
    }
    const remaining = Math.ceil(deadline - performance.now());
    if (remaining <= 0) {
      stoppedBy = 'total_timeout';
      break;
    }
    const attempt = await attemptOn(
      agent,
      context,
      Math.min(config.attemptTimeoutMs, remaining),
      remaining < config.attemptTimeoutMs,
    );
    attempts.push(attempt);
    try {
      config.onAttempt?.(attempt);
    } catch {
      // The caller's hook must not turn a landed job into a rejected call.
    }
    if (attempt.outcome === 'landed') {
      const state = attempt.state ?? 'unknown';
      const before =
        attempts.length > 1
          ? `; before it: ${summarizeFailures(attempts.slice(0, -1))}`
          : '';
      return {
        ...common(
          'landed',
          `landed on ${agent.ip} (${state}) at attempt ${attempts.length}${before}`,
        ),
        landed: true,
        agent,
        state,
        relay: attempt.answer,
      };
    }
    if (attempt.outcome === 'bad_job') {
      return failed(
        'bad_job',
        `${attempt.reason}; no other agent tried`,
        selection.usable.slice(attempts.length),
      );
    }
  }
  const notTried = selection.usable.slice(attempts.length);
  const parts = [
    summarizeFailures(attempts),
    untriedText(stoppedBy, notTried.length, config),
  ];
  if (!selection.panic && selection.blocked.length > 0) {
    parts.push(
      `${selection.blocked.length} blocked ${agentsWord(selection.blocked.length)} not tried`,
    );
  }
  return failed(
    stoppedBy,
    parts.filter((part) => part !== null).join('; '),
    notTried,
  );
}
