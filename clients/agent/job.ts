/**
 * A relay job as the dispatcher sends it: which stream to pull and where to
 * push it. Every limit is named once here; the HTTP API and --help quote them.
 */

import * as z from 'zod/mini';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';

export const JOB_LIMITS = {
  /** The id is the heartbeat's `process`, so it obeys that field's limit. */
  maxIdLength: HEARTBEAT_LIMITS.maxProcessLength,
  maxUrlLength: 2048,
  /** POST /relays body bytes; over this the answer is 413. */
  maxBodyBytes: 16_384,
} as const;

/**
 * Only network protocols: a job must never make ffmpeg read or write local
 * files (`file:`, `pipe:`, `concat:` …) on the dispatcher's say-so.
 */
export const SOURCE_SCHEMES = [
  'http',
  'https',
  'rtmp',
  'rtmps',
  'rtsp',
  'srt',
] as const;
export const TARGET_SCHEMES = [
  'rtmp',
  'rtmps',
  'srt',
  'http',
  'https',
] as const;

/** Reserved for the agent's own reachability checks (`probe:<host>:<port>`). */
const PROBE_PREFIX = 'probe:';

/** One check per field, so each refusal names one precise problem. */
function singleIssue<T>(problem: (value: T) => string | undefined) {
  return z.check<T>((context) => {
    const message = problem(context.value);
    if (message !== undefined)
      context.issues.push({ code: 'custom', message, input: context.value });
  });
}

/**
 * The only options an SRT URL may carry (ffmpeg reads them from the query).
 * Anything else is refused: `mode=listener` or `rendezvous` would make the
 * agent open a port for whoever connects, `localport`/`localip` bind one.
 */
export const SRT_OPTIONS = [
  'streamid',
  'passphrase',
  'pbkeylen',
  'latency',
  'rcvlatency',
  'peerlatency',
  'connect_timeout',
  'mode',
] as const;

function srtProblem(url: URL): string | undefined {
  const names = [...url.searchParams.keys()];
  const unknown = names.find(
    (name) => !(SRT_OPTIONS as readonly string[]).includes(name),
  );
  if (unknown !== undefined)
    return `SRT option "${unknown}" is not allowed; allowed: ${SRT_OPTIONS.join(', ')}`;
  if (new Set(names).size !== names.length)
    return 'must not repeat an SRT option';
  const mode = url.searchParams.get('mode');
  if (mode !== null && mode !== 'caller')
    return 'SRT mode must be caller (the agent never listens)';
  return undefined;
}

function urlProblem(
  text: string,
  schemes: readonly string[],
): string | undefined {
  if (text.length > JOB_LIMITS.maxUrlLength)
    return `must be at most ${JOB_LIMITS.maxUrlLength} characters`;
  if (/[\s\p{Cc}]/u.test(text))
    return 'must not contain spaces or control characters';
  const url = parseUrl(text);
  if (url === undefined || !schemes.includes(url.protocol.slice(0, -1))) {
    return `must be a URL with scheme ${schemes.join(', ')}`;
  }
  // URL lower-cases the scheme, ffmpeg does not: "HTTP://" would pass here and fail there.
  if (!text.startsWith(url.protocol))
    return `scheme must be lower-case (${url.protocol}//…)`;
  if (url.hostname === '') return 'must name a host';
  if (url.protocol === 'srt:') return srtProblem(url);
  return undefined;
}

function idProblem(id: string): string | undefined {
  if (id.length === 0) return 'must not be empty';
  if (id.length > JOB_LIMITS.maxIdLength)
    return `must be at most ${JOB_LIMITS.maxIdLength} characters`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id)) {
    return 'must be letters, digits, ".", "_", ":" or "-", starting with a letter or digit';
  }
  if (id.startsWith(PROBE_PREFIX))
    return `must not start with "${PROBE_PREFIX}" (reserved for probes)`;
  return undefined;
}

export const relayJobSchema = z.strictObject({
  id: z.string().check(singleIssue(idProblem)),
  source: z
    .string()
    .check(singleIssue((text: string) => urlProblem(text, SOURCE_SCHEMES))),
  target: z
    .string()
    .check(singleIssue((text: string) => urlProblem(text, TARGET_SCHEMES))),
});
export type RelayJob = z.infer<typeof relayJobSchema>;

export function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

const DEFAULT_PORTS: Record<string, number> = {
  'http:': 80,
  'https:': 443,
  'rtmp:': 1935,
  'rtmps:': 443,
  'rtsp:': 554,
  'tcp:': 0,
};

/** Host (without brackets) and port a URL connects to, with the scheme's default port. */
export function endpointOf(url: URL): { host: string; port: number } {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port =
    url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
  return { host, port };
}

/**
 * What the heartbeat names as the origin: scheme, host and port only. The
 * status center keys origins the same way, and paths, queries and userinfo
 * often carry stream keys that must not leave the machine.
 * @example originOf('rtmp://user:pw@Origin.example:1935/live/key') // 'rtmp://origin.example:1935'
 */
export function originOf(source: string): string {
  const url = parseUrl(source);
  if (url === undefined) return 'unknown';
  return `${url.protocol}//${url.host}`.toLowerCase();
}

/** A URL safe to log: no userinfo, no query, and no path beyond the first segment. */
export function redactUrl(text: string): string {
  const url = parseUrl(text);
  if (url === undefined) return '(invalid url)';
  const [, first = '', ...rest] = url.pathname.split('/');
  const path = rest.length > 0 ? `/${first}/…` : `/${first}`;
  return `${url.protocol}//${url.host}${path}`;
}
