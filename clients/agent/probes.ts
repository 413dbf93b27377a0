/**
 * Active evidence: a TCP connect to each canary and recently used origin, so
 * a machine with no relays still tells the status center whether its paths
 * work. A connect proves the path; the payload never matters.
 */
import { connect } from 'node:net';
import type { HeartbeatStatus } from '#contract/heartbeat';
import { classifyProbeError, truncateDetail } from './classify.js';
import { endpointOf, originOf, parseUrl } from './job.js';

export type ProbeTarget = {
  host: string;
  port: number;
  /** What the heartbeat names as origin: `tcp://host:port` or the relay origin it stands for. */
  origin: string;
};

export type ProbeResult = ProbeTarget & {
  status: HeartbeatStatus;
  cause: string;
  detail: string;
  at: number;
};

/** Schemes ffmpeg opens over its http protocol, which honours `http_proxy`. */
const PROXIED_SCHEMES = new Set(['http:', 'https:', 'rtmpt:', 'rtmpts:']);

/**
 * Whether ffmpeg, started with this environment, reaches `host` through an
 * HTTP proxy. ffmpeg reads only the lower-case `http_proxy` (an `http://` URL,
 * also for https sources) and skips it for hosts listed in `no_proxy`: `*`, a
 * name, or a domain that matches itself and its subdomains.
 */
export function viaHttpProxy(
  scheme: string,
  host: string,
  env: Record<string, string | undefined>,
): boolean {
  if (!PROXIED_SCHEMES.has(scheme)) return false;
  if (!env.http_proxy?.startsWith('http://')) return false;
  const name = host.toLowerCase();
  return !(env.no_proxy ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((entry) => {
      const domain = entry.toLowerCase().replace(/^\./, '');
      return entry === '*' || name === domain || name.endsWith(`.${domain}`);
    });
}

/**
 * The TCP endpoint of a relay's source, or undefined when a TCP connect
 * proves nothing about it: SRT runs over UDP, the port is unknown, or ffmpeg
 * reaches the source through an HTTP proxy (a direct connect could fail where
 * ffmpeg's path works, and refuse a relay that would flow).
 * @example originTarget('rtmp://origin.example/live/key') // { host: 'origin.example', port: 1935, origin: 'rtmp://origin.example' }
 */
export function originTarget(
  source: string,
  env: Record<string, string | undefined> = process.env,
): ProbeTarget | undefined {
  const url = parseUrl(source);
  if (url === undefined || url.protocol === 'srt:') return undefined;
  const { host, port } = endpointOf(url);
  if (port === 0) return undefined;
  if (viaHttpProxy(url.protocol, host, env)) return undefined;
  return { host, port, origin: originOf(source) };
}

/** `probe:<host>:<port>`, with brackets around an IPv6 host. */
export function probeProcessName(target: {
  host: string;
  port: number;
}): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `probe:${host}:${target.port}`;
}

export function probeTcp(
  target: ProbeTarget,
  options: { timeoutMs: number; now?: () => number },
): Promise<ProbeResult> {
  const now = options.now ?? Date.now;
  const startedAt = now();
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port });
    let settled = false;
    const finish = (outcome: {
      status: HeartbeatStatus;
      cause: string;
      detail: string;
    }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        ...target,
        ...outcome,
        detail: truncateDetail(outcome.detail),
        at: now(),
      });
    };
    const timer = setTimeout(() => {
      finish({
        ...classifyProbeError('PROBE_TIMEOUT'),
        detail: `connect to ${probeProcessName(target).slice(6)} timed out after ${options.timeoutMs} ms`,
      });
    }, options.timeoutMs);
    socket.once('connect', () => {
      finish({
        status: 'ok',
        cause: 'connected',
        detail: `connected in ${now() - startedAt} ms`,
      });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      finish({ ...classifyProbeError(error.code), detail: error.message });
    });
  });
}
