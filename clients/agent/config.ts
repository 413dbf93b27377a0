/**
 * Every setting of the agent, named once: its environment variable, its flag,
 * its default and its help text. Parsed once at start; a bad value stops the
 * agent with a message naming the variable.
 */
import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';
import { canonicalIp } from '#contract/ip';
import type { LogLevel } from '#contract/log';
import { LOG_LEVELS } from '#contract/log';
import { parseWith } from '#contract/validation';
import {
  DURATION_FORMS,
  parseDurationMs,
  withRenamedEnv,
} from '../settings.js';
import { JOB_LIMITS } from './job.js';

/** Change reports the budget lets out back to back (a token bucket's size). */
export const CHANGE_BURST = 5;

type Setting = {
  env: string;
  flag: string;
  help: string;
  /** Text default; absent means required or detected. */
  fallback?: string;
  secret?: boolean;
};

export const SETTINGS = {
  statusUrl: {
    env: 'RELAYWATCH_URL',
    flag: 'url',
    help: 'Status center base URL; heartbeats go to <url>/v1/heartbeats. Required. (Formerly RELAYWATCH_STATUS_URL / --status-url, still read with a warning.)',
  },
  reporterToken: {
    env: 'RELAYWATCH_REPORTER_TOKEN',
    flag: 'reporter-token',
    secret: true,
    help: "Bearer token of the status center's reporter role. Required.",
  },
  agentToken: {
    env: 'RELAYWATCH_AGENT_TOKEN',
    flag: 'agent-token',
    secret: true,
    help: 'Bearer token the dispatcher must send to this agent (at least 16 characters). Required.',
  },
  host: {
    env: 'RELAYWATCH_AGENT_HOST',
    flag: 'host',
    fallback: '127.0.0.1',
    help: 'Address the job API listens on.',
  },
  port: {
    env: 'RELAYWATCH_AGENT_PORT',
    flag: 'port',
    fallback: '8787',
    help: 'Port the job API listens on (0: any free port).',
  },
  ip: {
    env: 'RELAYWATCH_AGENT_IP',
    flag: 'ip',
    help: "This machine's IP as the status center should know it. Default: detected from the interfaces (IPv4 first, virtual bridges last).",
  },
  intervalSeconds: {
    env: 'RELAYWATCH_AGENT_INTERVAL',
    flag: 'interval',
    fallback: '60',
    help: "Seconds between periodic reports (every process's status, plus probes).",
  },
  changeGapSeconds: {
    env: 'RELAYWATCH_AGENT_CHANGE_GAP',
    flag: 'change-gap',
    fallback: '5',
    help: 'Least seconds between two immediate reports sent because a process changed status.',
  },
  changeBudget: {
    env: 'RELAYWATCH_AGENT_CHANGE_BUDGET',
    flag: 'change-budget',
    fallback: '15',
    help: `Immediate change reports allowed per hour on average (bursts of up to ${CHANGE_BURST}); beyond it, changes wait for the next periodic report. 0: periodic reports only.`,
  },
  probes: {
    env: 'RELAYWATCH_AGENT_PROBES',
    flag: 'probes',
    fallback: '',
    help: 'Comma-separated host:port canaries reached by TCP every interval ([v6]:port for IPv6).',
  },
  probeOrigins: {
    env: 'RELAYWATCH_AGENT_PROBE_ORIGINS',
    flag: 'probe-origins',
    fallback: 'true',
    help: 'Also probe the host:port of origins used in the last 10 minutes (true/false).',
  },
  probeTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_PROBE_TIMEOUT',
    flag: 'probe-timeout',
    fallback: '5',
    help: 'Seconds a probe waits for the TCP connect.',
  },
  ffmpegPath: {
    env: 'RELAYWATCH_AGENT_FFMPEG',
    flag: 'ffmpeg',
    fallback: 'ffmpeg',
    help: 'ffmpeg executable.',
  },
  ioTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_IO_TIMEOUT',
    flag: 'io-timeout',
    fallback: '10',
    help: 'ffmpeg read/write timeout in seconds (-rw_timeout; also -timeout on http, rtsp, srt inputs).',
  },
  progressPeriodSeconds: {
    env: 'RELAYWATCH_AGENT_PROGRESS_PERIOD',
    flag: 'progress-period',
    fallback: '1',
    help: 'Seconds between ffmpeg progress reports (-stats_period).',
  },
  confirmTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_CONFIRM_TIMEOUT',
    flag: 'confirm-timeout',
    fallback: '10',
    help: 'Seconds POST /relays waits for the first frame (201 flowing) or the first failure (502 relay_failed, job dropped); then it answers 202 starting and keeps the job. 0: answer 202 at once.',
  },
  originCheckTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_ORIGIN_CHECK_TIMEOUT',
    flag: 'origin-check-timeout',
    fallback: '3',
    help: "Seconds the TCP connect to a relay's origin host:port may take, when a relay starts, stalls or loses its input (no answer: connect_failed; refused: origin_error).",
  },
  stallCheckSeconds: {
    env: 'RELAYWATCH_AGENT_STALL_CHECK',
    flag: 'stall-check',
    fallback: '4',
    help: 'A flowing relay whose progress has not advanced for this many seconds gets its origin checked; an origin that does not accept the connect is reported at once (ffmpeg keeps running until the stall timeout).',
  },
  stallTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_STALL_TIMEOUT',
    flag: 'stall-timeout',
    fallback: '15',
    help: 'A relay whose progress has not advanced for this many seconds is reported as error and restarted.',
  },
  startupTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_STARTUP_TIMEOUT',
    flag: 'startup-timeout',
    fallback: '30',
    help: 'A relay that shows no frame this many seconds after start is reported as error and restarted.',
  },
  retryMinSeconds: {
    env: 'RELAYWATCH_AGENT_RETRY_MIN',
    flag: 'retry-min',
    fallback: '1',
    help: 'First delay before restarting a failed relay; doubles per failure, with jitter.',
  },
  retryMaxSeconds: {
    env: 'RELAYWATCH_AGENT_RETRY_MAX',
    flag: 'retry-max',
    fallback: '60',
    help: 'Longest delay before restarting a failed relay.',
  },
  stopGraceSeconds: {
    env: 'RELAYWATCH_AGENT_STOP_GRACE',
    flag: 'stop-grace',
    fallback: '5',
    help: 'Seconds between SIGTERM and SIGKILL when a relay is stopped.',
  },
  maxRelays: {
    env: 'RELAYWATCH_AGENT_MAX_RELAYS',
    flag: 'max-relays',
    fallback: '100',
    help: 'Most relays this agent runs at once; more are refused with 409.',
  },
  bufferHeartbeats: {
    env: 'RELAYWATCH_AGENT_BUFFER',
    flag: 'buffer',
    fallback: '20000',
    help: 'Most heartbeats held while the status center is unreachable; the oldest batches are dropped (and counted) beyond it.',
  },
  reportTimeoutSeconds: {
    env: 'RELAYWATCH_AGENT_REPORT_TIMEOUT',
    flag: 'report-timeout',
    fallback: '10',
    help: 'Seconds one POST to the status center may take.',
  },
  reportRetryMaxSeconds: {
    env: 'RELAYWATCH_AGENT_REPORT_RETRY_MAX',
    flag: 'report-retry-max',
    fallback: '60',
    help: 'Longest delay between two delivery attempts (exponential backoff with jitter from 1 s).',
  },
  logLevel: {
    env: 'RELAYWATCH_AGENT_LOG_LEVEL',
    flag: 'log-level',
    fallback: 'info',
    help: `Least level logged: ${LOG_LEVELS.join(', ')}.`,
  },
} as const satisfies Record<string, Setting>;

type SettingKey = keyof typeof SETTINGS;

export type ProbeTarget = { host: string; port: number };

export type AgentConfig = Readonly<{
  statusUrl: string;
  reporterToken: string;
  agentToken: string;
  host: string;
  port: number;
  ip: string;
  intervalMs: number;
  changeGapMs: number;
  changeBudgetPerHour: number;
  probes: readonly ProbeTarget[];
  probeOrigins: boolean;
  probeTimeoutMs: number;
  ffmpegPath: string;
  ioTimeoutMs: number;
  progressPeriodMs: number;
  confirmTimeoutMs: number;
  originCheckTimeoutMs: number;
  stallCheckMs: number;
  stallTimeoutMs: number;
  startupTimeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  stopGraceMs: number;
  maxRelays: number;
  bufferHeartbeats: number;
  reportTimeoutMs: number;
  reportRetryMaxMs: number;
  logLevel: LogLevel;
}>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `host:port` or `[v6]:port`; undefined when the text is neither. */
export function parseProbeTarget(text: string): ProbeTarget | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(
    text.trim(),
  );
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  if (match[1] !== undefined && canonicalIp(host) === undefined)
    return undefined;
  return {
    host:
      match[1] !== undefined ? (canonicalIp(host) ?? host) : host.toLowerCase(),
    port,
  };
}

const DECIMAL = /^\d+(\.\d+)?$/;
const toNumber = (text: string) =>
  DECIMAL.test(text.trim()) ? Number(text) : Number.NaN;
const seconds = (min: number, max: number) => {
  const message = `must be ${DURATION_FORMS}, from ${min}s to ${max}s`;
  return z
    .number(message)
    .check(z.refine((n) => n >= min && n <= max, { message }));
};
const integer = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return z
    .number(message)
    .check(
      z.refine((n) => Number.isInteger(n) && n >= min && n <= max, { message }),
    );
};
const token = (minLength: number) =>
  z
    .string()
    .check(
      z.minLength(
        minLength,
        minLength > 1
          ? `is required, at least ${minLength} characters`
          : 'is required',
      ),
      z.regex(/^[\x21-\x7e]*$/, 'must be printable ASCII without spaces'),
    );

const rawSchema = z.object({
  statusUrl: z.string().check(
    z.refine((text) => /^https?:\/\/[^\s/]+/.test(text) && URL.canParse(text), {
      message: "is required: the status center's http(s) base URL",
    }),
  ),
  reporterToken: token(1),
  agentToken: token(16),
  host: z.string().check(z.minLength(1, 'must not be empty')),
  port: integer(0, 65_535),
  ip: z.optional(
    z.string().check(
      z.refine((text) => canonicalIp(text) !== undefined, {
        message: 'must be an IPv4 or IPv6 address',
      }),
    ),
  ),
  intervalSeconds: seconds(0.2, 3_600),
  changeGapSeconds: seconds(0, 3_600),
  changeBudget: integer(0, 3_600),
  probes: z.array(z.string()).check(
    z.maxLength(100, 'lists at most 100 targets'),
    z.refine(
      (items) => items.every((item) => parseProbeTarget(item) !== undefined),
      {
        message:
          'must be comma-separated host:port items ([v6]:port for IPv6), ports 1–65535',
      },
    ),
  ),
  probeOrigins: z.enum(['true', 'false'], 'must be true or false'),
  probeTimeoutSeconds: seconds(0.1, 60),
  ffmpegPath: z.string().check(z.minLength(1, 'must not be empty')),
  ioTimeoutSeconds: seconds(0.5, 300),
  progressPeriodSeconds: seconds(0.1, 60),
  confirmTimeoutSeconds: seconds(0, 60),
  originCheckTimeoutSeconds: seconds(0.1, 60),
  stallCheckSeconds: seconds(0.2, 3_600),
  stallTimeoutSeconds: seconds(0.5, 3_600),
  startupTimeoutSeconds: seconds(1, 3_600),
  retryMinSeconds: seconds(0.05, 3_600),
  retryMaxSeconds: seconds(0.05, 3_600),
  stopGraceSeconds: seconds(0.1, 300),
  maxRelays: integer(1, 10_000),
  bufferHeartbeats: integer(HEARTBEAT_LIMITS.maxBatch, 10_000_000),
  reportTimeoutSeconds: seconds(0.1, 300),
  reportRetryMaxSeconds: seconds(0.1, 3_600),
  logLevel: z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`),
});

const NUMERIC = new Set<SettingKey>([
  'port',
  'intervalSeconds',
  'changeGapSeconds',
  'changeBudget',
  'probeTimeoutSeconds',
  'ioTimeoutSeconds',
  'progressPeriodSeconds',
  'confirmTimeoutSeconds',
  'originCheckTimeoutSeconds',
  'stallCheckSeconds',
  'stallTimeoutSeconds',
  'startupTimeoutSeconds',
  'retryMinSeconds',
  'retryMaxSeconds',
  'stopGraceSeconds',
  'maxRelays',
  'bufferHeartbeats',
  'reportTimeoutSeconds',
  'reportRetryMaxSeconds',
]);

/** Flags that were renamed: the old ones still work, with a warning. */
const RENAMED_FLAGS = [{ old: 'status-url', now: 'url' }] as const;

function nameOf(key: SettingKey): string {
  const setting = SETTINGS[key];
  return `${setting.env} (--${setting.flag})`;
}

/**
 * Reads flags over environment over defaults, validates everything at once and
 * throws a ConfigError listing each bad setting by name.
 * @example parseAgentConfig({ argv: ['--port', '9000'], env: process.env, detectIp: () => '192.0.2.7' })
 */
export function parseAgentConfig(options: {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  detectIp: () => string | undefined;
  /** Told about each renamed setting still in use (old variable or flag). */
  warn?: (message: string) => void;
}): AgentConfig {
  const keys = Object.keys(SETTINGS) as SettingKey[];
  const renamed = withRenamedEnv(options.env);
  const env = renamed.env;
  const warnings = [...renamed.warnings];
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: [...options.argv],
      options: Object.fromEntries([
        ...keys.map((key) => [SETTINGS[key].flag, { type: 'string' as const }]),
        ...RENAMED_FLAGS.map(({ old }) => [old, { type: 'string' as const }]),
      ]),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  for (const { old, now } of RENAMED_FLAGS) {
    if (flags[old] === undefined) continue;
    warnings.push(`--${old} is deprecated; use --${now} instead`);
    flags[now] ??= flags[old];
  }
  for (const warning of warnings) options.warn?.(warning);
  const text = (key: SettingKey): string | undefined => {
    const setting: Setting = SETTINGS[key];
    const value = flags[setting.flag] ?? env[setting.env] ?? setting.fallback;
    return typeof value === 'string' ? value : undefined;
  };
  const raw: Record<string, unknown> = {};
  for (const key of keys) {
    const value = text(key);
    if (key === 'probes')
      raw[key] = (value ?? '')
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean);
    else if (NUMERIC.has(key) && key.endsWith('Seconds'))
      raw[key] =
        value === undefined
          ? Number.NaN
          : (parseDurationMs(value) ?? Number.NaN) / 1000;
    else if (NUMERIC.has(key))
      raw[key] = value === undefined ? Number.NaN : toNumber(value);
    else if (key === 'ip') raw[key] = value === '' ? undefined : value;
    else raw[key] = value ?? '';
  }
  const parsed = parseWith(rawSchema, raw);
  const problems: string[] = [];
  if (!parsed.ok) {
    const named = new Set<SettingKey>();
    for (const issue of parsed.issues) {
      const key = issue.path.split('.')[0] as SettingKey;
      // One message per setting: the first is the one to fix.
      if (named.has(key)) continue;
      named.add(key);
      const setting: Setting = SETTINGS[key];
      const shown = setting.secret
        ? ''
        : ` (got ${JSON.stringify(text(key) ?? '')})`;
      problems.push(`${nameOf(key)} ${issue.message}${shown}`);
    }
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const value = parsed.value;
  if (value.retryMaxSeconds < value.retryMinSeconds) {
    problems.push(
      `${nameOf('retryMaxSeconds')} must not be less than ${nameOf('retryMinSeconds')}`,
    );
  }
  if (value.stallTimeoutSeconds < 2 * value.progressPeriodSeconds) {
    problems.push(
      `${nameOf('stallTimeoutSeconds')} must be at least twice ${nameOf('progressPeriodSeconds')}`,
    );
  }
  const ip = value.ip ?? options.detectIp();
  if (ip === undefined)
    problems.push(
      `${nameOf('ip')} is required: no global address found on the interfaces`,
    );
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);

  const ms = (s: number) => Math.round(s * 1000);
  return Object.freeze({
    statusUrl: value.statusUrl.replace(/\/+$/, ''),
    reporterToken: value.reporterToken,
    agentToken: value.agentToken,
    host: value.host,
    port: value.port,
    ip: canonicalIp(ip ?? '') ?? '',
    intervalMs: ms(value.intervalSeconds),
    changeGapMs: ms(value.changeGapSeconds),
    changeBudgetPerHour: value.changeBudget,
    probes: value.probes.map((item) => parseProbeTarget(item) as ProbeTarget),
    probeOrigins: value.probeOrigins === 'true',
    probeTimeoutMs: ms(value.probeTimeoutSeconds),
    ffmpegPath: value.ffmpegPath,
    ioTimeoutMs: ms(value.ioTimeoutSeconds),
    progressPeriodMs: ms(value.progressPeriodSeconds),
    confirmTimeoutMs: ms(value.confirmTimeoutSeconds),
    originCheckTimeoutMs: ms(value.originCheckTimeoutSeconds),
    stallCheckMs: ms(value.stallCheckSeconds),
    stallTimeoutMs: ms(value.stallTimeoutSeconds),
    startupTimeoutMs: ms(value.startupTimeoutSeconds),
    retryMinMs: ms(value.retryMinSeconds),
    retryMaxMs: ms(value.retryMaxSeconds),
    stopGraceMs: ms(value.stopGraceSeconds),
    maxRelays: value.maxRelays,
    bufferHeartbeats: value.bufferHeartbeats,
    reportTimeoutMs: ms(value.reportTimeoutSeconds),
    reportRetryMaxMs: ms(value.reportRetryMaxSeconds),
    logLevel: value.logLevel,
  });
}

/** The --help text, generated from SETTINGS so it cannot drift. */
export function helpText(): string {
  const rows = (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const setting: Setting = SETTINGS[key];
    const fallback =
      setting.fallback === undefined
        ? ''
        : ` [default: ${setting.fallback === '' ? 'none' : setting.fallback}]`;
    return `  --${setting.flag} <value>\n  ${setting.env}\n      ${setting.help}${fallback}`;
  });
  return [
    'relaywatch-agent: runs relay jobs (ffmpeg pull → push, stream copy), watches each ffmpeg, and',
    "reports every process's status and TCP probe results to the relaywatch status center.",
    '',
    'Usage: relaywatch-agent [--flag value]…   (flags override environment variables)',
    '',
    `Durations (the settings in seconds) take ${DURATION_FORMS}.`,
    '',
    'Settings:',
    ...rows,
    '  -h, --help',
    '      Print this text and exit.',
    '  --version',
    '      Print the version and exit.',
    '',
    'Tokens given as flags are visible to other users of the machine (ps); prefer the variables.',
    '',
    'Job API (every request needs "Authorization: Bearer <RELAYWATCH_AGENT_TOKEN>"):',
    '  POST   /relays        {"id","source","target"}; answers when the truth is known:',
    '                        201 {relay…, "state":"flowing"} once frames flow;',
    '                        502 {"code":"relay_failed","error":sentence,"status":"connect_failed"|',
    '                        "origin_error"|"error","cause","detail"} when it fails before flowing',
    '                        (the job is dropped, not retried);',
    '                        202 {relay…, "state":"starting"} after --confirm-timeout without either (kept);',
    '                        200 if the same job exists; 409 if the id runs something else, the relay',
    '                        limit is reached, or a DELETE came first (relay_stopped)',
    '  GET    /relays        every job with its state (starting, flowing, failing) and status',
    '  GET    /relays/{id}   one job',
    '  DELETE /relays/{id}   stop it (SIGTERM, then SIGKILL after the stop grace) → 204',
    '  GET    /status        machine IP, relay counts by status, probes, report delivery counters',
    '  GET    /metrics       the same counters in Prometheus text format',
    `  Limits: body ${JOB_LIMITS.maxBodyBytes} bytes, id ${JOB_LIMITS.maxIdLength} characters`,
    `  ([A-Za-z0-9._:-]), URLs ${JOB_LIMITS.maxUrlLength} characters; sources http(s), rtmp(s), rtsp, srt;`,
    '  targets rtmp(s), srt, http(s). Errors: {"code", "error": sentence, "issues": [{"path","message"}]}.',
    '',
    'Statuses: ok (progress advancing), connect_failed (this machine cannot reach the origin: connect',
    'timeout, no route, network unreachable, resolver unreachable), origin_error (the origin refuses:',
    'connection refused, HTTP 4xx/5xx, RTMP server error, unknown host), error (anything else: stall,',
    'mid-stream loss, push target failure). When a relay starts, stalls or loses its input, a TCP connect',
    'to the origin host:port (--origin-check-timeout) decides: no answer → connect_failed, refused →',
    "origin_error, connected → ffmpeg's verdict. Every report declares reportIntervalSeconds (the lease).",
    'Logs are JSON lines on stderr.',
    '',
  ].join('\n');
}
