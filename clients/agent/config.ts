/**
 * Every setting of the agent, named once in SETTINGS: its environment
 * variable, its flag, its default, its help text and the zod schema that turns
 * its text into the value the agent uses. Parsing, --help, the README table
 * and the type AgentConfig are derived from that one table. Parsed once at
 * start; a bad value stops the agent with a message naming the setting as
 * the user gave it (an old name when it came under one).
 */
import * as z from 'zod/mini';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';
import { canonicalIp } from '#contract/ip';
import { LOG_LEVELS } from '#contract/log';
import { ConfigError, parseWith } from '#contract/validation';
import type { Setting } from '../settings.js';
import {
  DURATION_FORMS,
  defaultText,
  formerNote,
  parseDurationMs,
  readSettings,
  STATUS_URL,
} from '../settings.js';
import { JOB_LIMITS } from './job.js';

export { ConfigError } from '#contract/validation';

/** Change reports the budget lets out back to back (a token bucket's size). */
export const CHANGE_BURST = 5;

export type ProbeTarget = { host: string; port: number };

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

/** The text of a setting as read: undefined when neither given nor defaulted. */
type Text = string | undefined;

const DECIMAL = /^\d+(\.\d+)?$/;
const orEmpty = () => z.transform((text: Text) => text ?? '');
/** A duration in milliseconds, bounded in seconds as the help says. */
const seconds = (min: number, max: number) => {
  const message = `must be ${DURATION_FORMS}, from ${min}s to ${max}s`;
  return z.pipe(
    z.transform((text: Text) =>
      text === undefined ? Number.NaN : (parseDurationMs(text) ?? Number.NaN),
    ),
    z
      .number(message)
      .check(
        z.refine((ms) => ms / 1000 >= min && ms / 1000 <= max, { message }),
      ),
  );
};
const integer = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return z.pipe(
    z.transform((text: Text) =>
      text !== undefined && DECIMAL.test(text.trim())
        ? Number(text)
        : Number.NaN,
    ),
    z.number(message).check(
      z.refine((n) => Number.isInteger(n) && n >= min && n <= max, {
        message,
      }),
    ),
  );
};
const token = (minLength: number) =>
  z.pipe(
    orEmpty(),
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
      ),
  );
const nonEmpty = () =>
  z.pipe(orEmpty(), z.string().check(z.minLength(1, 'must not be empty')));
const statusUrl = () =>
  z.pipe(
    z.pipe(
      orEmpty(),
      z
        .string()
        .check(
          z.refine(
            (text) => /^https?:\/\/[^\s/]+/.test(text) && URL.canParse(text),
            { message: "is required: the status center's http(s) base URL" },
          ),
        ),
    ),
    z.transform((text) => text.replace(/\/+$/, '')),
  );
/** Given or not; when not, the agent detects it (parseAgentConfig). */
const address = () =>
  z.pipe(
    z.transform((text: Text) => (text === '' ? undefined : text)),
    z.optional(
      z.string().check(
        z.refine((text) => canonicalIp(text) !== undefined, {
          message: 'must be an IPv4 or IPv6 address',
        }),
      ),
    ),
  );
const probeList = () =>
  z.pipe(
    z.pipe(
      z.transform((text: Text) =>
        (text ?? '')
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean),
      ),
      z.array(z.string()).check(
        z.maxLength(100, 'lists at most 100 targets'),
        z.refine(
          (items) =>
            items.every((item) => parseProbeTarget(item) !== undefined),
          {
            message:
              'must be comma-separated host:port items ([v6]:port for IPv6), ports 1–65535',
          },
        ),
      ),
    ),
    z.transform((items): readonly ProbeTarget[] =>
      items.map((item) => parseProbeTarget(item) as ProbeTarget),
    ),
  );
const trueOrFalse = () =>
  z.pipe(
    z.pipe(orEmpty(), z.enum(['true', 'false'], 'must be true or false')),
    z.transform((text) => text === 'true'),
  );
const logLevel = () =>
  z.pipe(
    orEmpty(),
    z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`),
  );

type AgentSetting = Setting & { schema: z.ZodMiniType<unknown, Text> };

export const SETTINGS = {
  statusUrl: {
    ...STATUS_URL,
    help: 'Status center base URL; heartbeats go to <url>/v1/heartbeats. Required.',
    schema: statusUrl(),
  },
  reporterToken: {
    env: 'RELAYWATCH_REPORTER_TOKEN',
    flag: 'reporter-token',
    secret: true,
    help: "Bearer token of the status center's reporter role. Required.",
    schema: token(1),
  },
  agentToken: {
    env: 'RELAYWATCH_AGENT_TOKEN',
    flag: 'agent-token',
    secret: true,
    help: 'Bearer token the dispatcher must send to this agent (at least 16 characters). Required.',
    schema: token(16),
  },
  host: {
    env: 'RELAYWATCH_AGENT_HOST',
    flag: 'host',
    fallback: '127.0.0.1',
    help: 'Address the job API listens on.',
    schema: nonEmpty(),
  },
  port: {
    env: 'RELAYWATCH_AGENT_PORT',
    flag: 'port',
    fallback: '8787',
    help: 'Port the job API listens on (0: any free port).',
    schema: integer(0, 65_535),
  },
  ip: {
    env: 'RELAYWATCH_AGENT_IP',
    flag: 'ip',
    help: "This machine's IP as the status center should know it. Default: detected from the interfaces (IPv4 first, virtual bridges last).",
    schema: address(),
  },
  intervalMs: {
    env: 'RELAYWATCH_AGENT_INTERVAL',
    flag: 'interval',
    fallback: '60',
    help: "Seconds between periodic reports (every process's status, plus probes).",
    schema: seconds(0.2, 3_600),
  },
  changeGapMs: {
    env: 'RELAYWATCH_AGENT_CHANGE_GAP',
    flag: 'change-gap',
    fallback: '5',
    help: 'Least seconds between two immediate reports sent because a process changed status.',
    schema: seconds(0, 3_600),
  },
  changeBudgetPerHour: {
    env: 'RELAYWATCH_AGENT_CHANGE_BUDGET',
    flag: 'change-budget',
    fallback: '15',
    help: `Immediate change reports allowed per hour on average (bursts of up to ${CHANGE_BURST}); beyond it, changes wait for the next periodic report. 0: periodic reports only.`,
    schema: integer(0, 3_600),
  },
  probes: {
    env: 'RELAYWATCH_AGENT_PROBES',
    flag: 'probes',
    fallback: '',
    help: 'Comma-separated host:port canaries reached by TCP every interval ([v6]:port for IPv6).',
    schema: probeList(),
  },
  probeOrigins: {
    env: 'RELAYWATCH_AGENT_PROBE_ORIGINS',
    flag: 'probe-origins',
    fallback: 'true',
    help: 'Also probe the host:port of origins used in the last 10 minutes (true/false).',
    schema: trueOrFalse(),
  },
  probeTimeoutMs: {
    env: 'RELAYWATCH_AGENT_PROBE_TIMEOUT',
    flag: 'probe-timeout',
    fallback: '5',
    help: 'Seconds a probe waits for the TCP connect.',
    schema: seconds(0.1, 60),
  },
  ffmpegPath: {
    env: 'RELAYWATCH_AGENT_FFMPEG',
    flag: 'ffmpeg',
    fallback: 'ffmpeg',
    help: 'ffmpeg executable.',
    schema: nonEmpty(),
  },
  ioTimeoutMs: {
    env: 'RELAYWATCH_AGENT_IO_TIMEOUT',
    flag: 'io-timeout',
    fallback: '10',
    help: 'ffmpeg read/write timeout in seconds (-rw_timeout; also -timeout on http, rtsp, srt inputs).',
    schema: seconds(0.5, 300),
  },
  progressPeriodMs: {
    env: 'RELAYWATCH_AGENT_PROGRESS_PERIOD',
    flag: 'progress-period',
    fallback: '1',
    help: 'Seconds between ffmpeg progress reports (-stats_period).',
    schema: seconds(0.1, 60),
  },
  confirmTimeoutMs: {
    env: 'RELAYWATCH_AGENT_CONFIRM_TIMEOUT',
    flag: 'confirm-timeout',
    fallback: '10',
    help: 'Seconds POST /relays waits for the first frame (201 flowing) or the first failure (502 relay_failed, job dropped); then it answers 202 starting and keeps the job. 0: answer 202 at once.',
    schema: seconds(0, 60),
  },
  originCheckTimeoutMs: {
    env: 'RELAYWATCH_AGENT_ORIGIN_CHECK_TIMEOUT',
    flag: 'origin-check-timeout',
    fallback: '3',
    help: "Seconds the TCP connect to a relay's origin host:port may take, when a relay starts, stalls or loses its input (no answer: connect_failed; refused: origin_error).",
    schema: seconds(0.1, 60),
  },
  stallCheckMs: {
    env: 'RELAYWATCH_AGENT_STALL_CHECK',
    flag: 'stall-check',
    fallback: '4',
    help: 'A flowing relay whose progress has not advanced for this many seconds gets its origin checked; an origin that does not accept the connect is reported at once (ffmpeg keeps running until the stall timeout).',
    schema: seconds(0.2, 3_600),
  },
  stallTimeoutMs: {
    env: 'RELAYWATCH_AGENT_STALL_TIMEOUT',
    flag: 'stall-timeout',
    fallback: '15',
    help: 'A relay whose progress has not advanced for this many seconds is reported as error and restarted.',
    schema: seconds(0.5, 3_600),
  },
  startupTimeoutMs: {
    env: 'RELAYWATCH_AGENT_STARTUP_TIMEOUT',
    flag: 'startup-timeout',
    fallback: '30',
    help: 'A relay that shows no frame this many seconds after start is reported as error and restarted.',
    schema: seconds(1, 3_600),
  },
  retryMinMs: {
    env: 'RELAYWATCH_AGENT_RETRY_MIN',
    flag: 'retry-min',
    fallback: '1',
    help: 'First delay before restarting a failed relay; doubles per failure, with jitter.',
    schema: seconds(0.05, 3_600),
  },
  retryMaxMs: {
    env: 'RELAYWATCH_AGENT_RETRY_MAX',
    flag: 'retry-max',
    fallback: '60',
    help: 'Longest delay before restarting a failed relay.',
    schema: seconds(0.05, 3_600),
  },
  stopGraceMs: {
    env: 'RELAYWATCH_AGENT_STOP_GRACE',
    flag: 'stop-grace',
    fallback: '5',
    help: 'Seconds between SIGTERM and SIGKILL when a relay is stopped.',
    schema: seconds(0.1, 300),
  },
  maxRelays: {
    env: 'RELAYWATCH_AGENT_MAX_RELAYS',
    flag: 'max-relays',
    fallback: '100',
    help: 'Most relays this agent runs at once; more are refused with 409.',
    schema: integer(1, 10_000),
  },
  bufferHeartbeats: {
    env: 'RELAYWATCH_AGENT_BUFFER',
    flag: 'buffer',
    fallback: '20000',
    help: 'Most heartbeats held while the status center is unreachable; the oldest batches are dropped (and counted) beyond it.',
    schema: integer(HEARTBEAT_LIMITS.maxBatch, 10_000_000),
  },
  reportTimeoutMs: {
    env: 'RELAYWATCH_AGENT_REPORT_TIMEOUT',
    flag: 'report-timeout',
    fallback: '10',
    help: 'Seconds one POST to the status center may take.',
    schema: seconds(0.1, 300),
  },
  reportRetryMaxMs: {
    env: 'RELAYWATCH_AGENT_REPORT_RETRY_MAX',
    flag: 'report-retry-max',
    fallback: '60',
    help: 'Longest delay between two delivery attempts (exponential backoff with jitter from 1 s).',
    schema: seconds(0.1, 3_600),
  },
  logLevel: {
    env: 'RELAYWATCH_AGENT_LOG_LEVEL',
    flag: 'log-level',
    fallback: 'info',
    help: `Least level logged: ${LOG_LEVELS.join(', ')}.`,
    schema: logLevel(),
  },
} as const satisfies Record<string, AgentSetting>;

type SettingKey = keyof typeof SETTINGS;
type Values = {
  [K in SettingKey]: z.output<(typeof SETTINGS)[K]['schema']>;
};

/** What the agent runs with: SETTINGS' values, the IP detected when not set. */
export type AgentConfig = Readonly<Omit<Values, 'ip'> & { ip: string }>;

const SCHEMA = z.object(
  Object.fromEntries(
    Object.entries(SETTINGS).map(([key, setting]) => [key, setting.schema]),
  ) as { [K in SettingKey]: (typeof SETTINGS)[K]['schema'] },
);

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
  let read: ReturnType<typeof readSettings<typeof SETTINGS>>;
  try {
    read = readSettings(SETTINGS, options);
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  for (const warning of read.warnings) options.warn?.(warning);
  const nameOf = (key: SettingKey): string => read.nameOf(key);
  const raw = Object.fromEntries(
    (Object.keys(SETTINGS) as SettingKey[]).map((key) => [key, read.text(key)]),
  );
  const parsed = parseWith(SCHEMA, raw);
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
        : ` (got ${JSON.stringify(read.text(key) ?? '')})`;
      problems.push(`${nameOf(key)} ${issue.message}${shown}`);
    }
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const value = parsed.value as Values;
  if (value.retryMaxMs < value.retryMinMs) {
    problems.push(
      `${nameOf('retryMaxMs')} must not be less than ${nameOf('retryMinMs')}`,
    );
  }
  if (value.stallTimeoutMs < 2 * value.progressPeriodMs) {
    problems.push(
      `${nameOf('stallTimeoutMs')} must be at least twice ${nameOf('progressPeriodMs')}`,
    );
  }
  const ip = value.ip ?? options.detectIp();
  if (ip === undefined)
    problems.push(
      `${nameOf('ip')} is required: no global address found on the interfaces`,
    );
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze({ ...value, ip: canonicalIp(ip ?? '') ?? '' });
}

/** The --help text, generated from SETTINGS so it cannot drift. */
export function helpText(): string {
  const rows = (Object.keys(SETTINGS) as SettingKey[]).map((key) => {
    const setting: Setting = SETTINGS[key];
    const shown = defaultText(setting);
    const fallback = shown === undefined ? '' : ` [default: ${shown}]`;
    const meaning = [setting.help, ...formerNote(setting)].join(' ');
    return `  --${setting.flag} <value>\n  ${setting.env}\n      ${meaning}${fallback}`;
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
