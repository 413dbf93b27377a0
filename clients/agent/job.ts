/**
 * A relay job as the dispatcher sends it: which stream to pull and where to
 * push it. Every limit is named once here; the HTTP API and --help quote them.
 */
import * as z from 'zod/mini';
import { HEARTBEAT_LIMITS } from '../../functions/core/heartbeat.js';
import '../../functions/core/validation.js';

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
export const SOURCE_SCHEMES = ['http', 'https', 'rtmp', 'rtmps', 'rtsp', 'srt'] as const;
export const TARGET_SCHEMES = ['rtmp', 'rtmps', 'srt', 'http', 'https'] as const;

/** Reserved for the agent's own reachability checks (`probe:<host>:<port>`). */
const PROBE_PREFIX = 'probe:';

function streamUrl(schemes: readonly string[]) {
  return z.string().check(
    z.minLength(1),
    z.maxLength(JOB_LIMITS.maxUrlLength),
    z.refine((text) => !/[\s\x00-\x1f\x7f]/.test(text), {
      message: 'must not contain spaces or control characters',
    }),
    z.refine(
      (text) => {
        const url = parseUrl(text);
        return url !== undefined && schemes.includes(url.protocol.slice(0, -1));
      },
      { message: `must be a URL with scheme ${schemes.join(', ')}` },
    ),
    z.refine((text) => (parseUrl(text)?.hostname ?? '') !== '', {
      message: 'must name a host',
    }),
  );
}

export const relayJobSchema = z.strictObject({
  id: z.string().check(
    z.minLength(1),
    z.maxLength(JOB_LIMITS.maxIdLength),
    z.regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'must be letters, digits, ".", "_", ":" or "-", starting with a letter or digit'),
    z.refine((text) => !text.startsWith(PROBE_PREFIX), {
      message: `must not start with "${PROBE_PREFIX}" (reserved for probes)`,
    }),
  ),
  source: streamUrl(SOURCE_SCHEMES),
  target: streamUrl(TARGET_SCHEMES),
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
  const port = url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
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
