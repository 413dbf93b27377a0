/**
 * In-process stand-ins for the dispatcher tests: the job they send, a clock
 * moved by hand, a logger that keeps its lines, a fetch that answers from a
 * script, and blocklist clients built on them.
 */

import type {
  BlocklistClientOptions,
  DispatcherLogger,
  FetchLike,
} from '../../clients/dispatcher/index.js';
import { createBlocklistClient } from '../../clients/dispatcher/index.js';
import type { BlocklistEntry } from '../../functions/core/blocklist.js';
import { blocklistEtag } from '../../functions/core/blocklist.js';

export const T0 = Date.parse('2026-09-01T12:00:00.000Z');
export const HOUR = 3_600_000;
/** A machine the blocklist bans, and one it does not. */
export const BANNED = '203.0.113.7';
export const OTHER = '203.0.113.8';

/** The relay job the dispatcher tests send. */
export const JOB = {
  id: 'job-42',
  source: 'rtmp://origin.example/live/a',
  target: 'rtmp://cdn.example/live/a',
};

/** The token the fake agents take, and the dispatcher tests send. */
export const AGENT_TOKEN = 'agent-fake-token';

/** An hour from now on the real clock, for bans served by the loopback servers. */
export const inAnHour = () => Date.now() + HOUR;

export function manualClock(start = T0) {
  let at = start;
  return {
    now: () => at,
    advance: (ms: number) => {
      at += ms;
    },
    set: (ms: number) => {
      at = ms;
    },
  };
}

export type LogLine = {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
};

export function recordingLogger(): DispatcherLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (message: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, message, fields });
    };
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** A blocklist entry banning `ip` from `since` until `until` (epoch ms). */
export function ban(
  ip: string,
  options: { since?: number; until: number; reason?: string; manual?: boolean },
) {
  return {
    ip,
    reason: options.reason ?? 'connect failures',
    since: new Date(options.since ?? T0 - 60_000).toISOString(),
    until: new Date(options.until).toISOString(),
    failRatio: options.manual ? null : 0.9,
    samples: options.manual ? null : 20,
    manual: options.manual ?? false,
  } satisfies BlocklistEntry;
}

export function blocklistBody(entries: BlocklistEntry[], generatedAt = T0) {
  return { generatedAt: new Date(generatedAt).toISOString(), entries };
}

/** A scripted answer listing bans of `ips` for an hour from T0. */
export const listOf = (...ips: string[]): Reply => ({
  kind: 'list',
  entries: ips.map((ip) => ban(ip, { until: T0 + HOUR })),
});

export type Reply =
  | { kind: 'list'; entries: BlocklistEntry[]; etag?: string | null }
  | { kind: 'not-modified' }
  | { kind: 'status'; status: number }
  | { kind: 'body'; status: number; text: string }
  | { kind: 'network-error' }
  | { kind: 'hang' };

export type SeenRequest = { url: string; headers: Record<string, string> };

/**
 * fetch that answers each call with the next scripted reply (the last one
 * repeats) and records what was asked. `hang` waits for the abort signal, as
 * a dead server would, so poll timeouts are exercised without a network.
 */
export function scriptedFetch(
  ...script: Reply[]
): FetchLike & { requests: SeenRequest[]; setReply: (r: Reply) => void } {
  const queue = [...script];
  const requests: SeenRequest[] = [];
  const fetch = async (url: string, init: RequestInit): Promise<Response> => {
    requests.push({
      url,
      headers: { ...(init.headers as Record<string, string>) },
    });
    const reply = queue.length > 1 ? queue.shift() : queue[0];
    if (reply === undefined)
      throw new Error('scriptedFetch: no reply scripted');
    switch (reply.kind) {
      case 'list': {
        const etag =
          reply.etag === undefined ? blocklistEtag(reply.entries) : reply.etag;
        const headers: Record<string, string> = {
          'content-type': 'application/json',
        };
        if (etag !== null) headers.etag = etag;
        return new Response(JSON.stringify(blocklistBody(reply.entries)), {
          status: 200,
          headers,
        });
      }
      case 'not-modified':
        return new Response(null, { status: 304 });
      case 'status':
        return new Response(JSON.stringify({ error: 'scripted' }), {
          status: reply.status,
        });
      case 'body':
        return new Response(reply.text, { status: reply.status });
      case 'network-error':
        throw new TypeError('fetch failed', {
          cause: new Error('connect ECONNREFUSED 127.0.0.1:9'),
        });
      case 'hang':
        return new Promise<Response>((_, reject) => {
          const signal = init.signal;
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener('abort', () => reject(signal.reason), {
            once: true,
          });
        });
    }
  };
  return Object.assign(fetch, {
    requests,
    /** Replaces the rest of the script with one reply. */
    setReply: (reply: Reply) => {
      queue.splice(0, queue.length, reply);
    },
  });
}

/**
 * A blocklist client on a clock moved by hand (from T0) with a logger that
 * keeps its lines; `options` name the status center (by default none that
 * answers) or replace anything else.
 */
export function clientOnClock(options: Partial<BlocklistClientOptions> = {}) {
  const clock = manualClock();
  const logger = recordingLogger();
  const client = createBlocklistClient({
    url: 'http://127.0.0.1:9',
    token: 'reader-token',
    now: clock.now,
    logger,
    ...options,
  });
  return { client, clock, logger };
}

/** clientOnClock whose polls are answered by `script` (scriptedFetch). */
export function scriptedClient(
  script: Reply[],
  options: Partial<BlocklistClientOptions> = {},
) {
  const fetch = scriptedFetch(...script);
  return { ...clientOnClock({ fetch, ...options }), fetch };
}
