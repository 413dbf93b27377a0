/**
 * Options of createBlocklistClient: defaults, and validation at construction
 * so that a bad knob fails at start-up with its name, not as a silent
 * fail-open hours later.
 */

import { createLogger, toStderr } from '#contract/log';
import type { BlocklistSnapshot } from './snapshot.js';
import { parseSnapshot } from './snapshot.js';

/** Where the client writes what it does; structurally compatible with console-like JSON loggers. */
export type DispatcherLogger = {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
};

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export type BlocklistClientOptions = {
  /** Base URL of the status center (the client appends `/v1/blocklist`). */
  url: string;
  /** A token of the `reader` role, sent as `Authorization: Bearer …`. */
  token: string;
  /** Time between polls once start() is called. Default 10 000 ms. */
  refreshMs?: number;
  /**
   * How long the last good list is trusted while the status center cannot be
   * reached; past it nothing is treated as blocked (fail-open). Must be at
   * least refreshMs. Default 600 000 ms (10 min).
   */
  maxStaleMs?: number;
  /** Limit on each poll, response body included. Default 5 000 ms. */
  timeoutMs?: number;
  /**
   * Panic threshold: when fewer than this share of the candidates is
   * healthy, every candidate is used. 0 turns panic off. Default 0.5.
   */
  minHealthyShare?: number;
  /** Default globalThis.fetch. */
  fetch?: FetchLike;
  /** Clock in epoch ms. Default Date.now. */
  now?: () => number;
  /** Uniform [0, 1) source for pick() and poll jitter. Default Math.random. */
  random?: () => number;
  /** Default: one JSON line per event on stderr. */
  logger?: DispatcherLogger;
  /** A list saved earlier with client.snapshot(), used until the first poll answers. */
  snapshot?: BlocklistSnapshot;
};

export type ResolvedOptions = Required<
  Omit<BlocklistClientOptions, 'snapshot'>
> & {
  blocklistUrl: string;
  snapshot: BlocklistSnapshot | undefined;
};

export const BLOCKLIST_CLIENT_DEFAULTS = {
  refreshMs: 10_000,
  maxStaleMs: 600_000,
  timeoutMs: 5_000,
  minHealthyShare: 0.5,
} as const;

/** setTimeout fires at once for delays above 2^31 − 1 ms, so no knob may exceed it. */
export const MAX_TIMER_MS = 2_147_483_647;

const KNOWN_OPTIONS = new Set<string>([
  'url',
  'token',
  'refreshMs',
  'maxStaleMs',
  'timeoutMs',
  'minHealthyShare',
  'fetch',
  'now',
  'random',
  'logger',
  'snapshot',
]);

/**
 * A construction-time mistake; `option` names the offending option. `source`
 * is the function that refused it (createBlocklistClient or dispatch).
 */
export class BlocklistClientOptionsError extends Error {
  readonly option: string;

  constructor(
    option: string,
    message: string,
    source = 'createBlocklistClient',
  ) {
    super(`${source}: ${option} ${message}`);
    this.name = 'BlocklistClientOptionsError';
    this.option = option;
  }
}

const describe = (value: unknown): string => {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value;
};

/** A value as it appears in an options error message. */
export const describeValue = (value: unknown): string => describe(value);

export function milliseconds(
  option: string,
  value: unknown,
  fallback: number,
  source?: string,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value <= 0 ||
    value > MAX_TIMER_MS
  ) {
    throw new BlocklistClientOptionsError(
      option,
      `must be a whole number of milliseconds between 1 and ${MAX_TIMER_MS} (got ${describe(value)})`,
      source,
    );
  }
  return value;
}

export function fn<T>(
  option: string,
  value: unknown,
  fallback: T,
  source?: string,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') {
    throw new BlocklistClientOptionsError(
      option,
      `must be a function (got ${describe(value)})`,
      source,
    );
  }
  return value as T;
}

function statusCenterUrl(value: unknown): URL {
  const url = typeof value === 'string' ? URL.parse(value) : null;
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new BlocklistClientOptionsError(
      'url',
      `must be an http(s) URL of the status center (got ${describe(value)})`,
    );
  }
  // Credentials in the URL would end up in logs and error messages; the token option carries them.
  if (url.username !== '' || url.password !== '') {
    throw new BlocklistClientOptionsError(
      'url',
      'must not contain a user or password; pass the token option',
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new BlocklistClientOptionsError(
      'url',
      `must not have a query or fragment (got ${describe(value)})`,
    );
  }
  return url;
}

/** `https://api.example/prod` → `https://api.example/prod/v1/blocklist` (keeps a stage prefix). */
export function blocklistUrlOf(base: URL): string {
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}/v1/blocklist`;
}

export function defaultLogger(): DispatcherLogger {
  return createLogger({
    level: 'info',
    fields: { component: 'blocklist-client' },
    write: toStderr,
  });
}

/** Validates every option and fills in the documented defaults. */
export function resolveOptions(
  options: BlocklistClientOptions,
): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new BlocklistClientOptionsError(
      'options',
      'must be an object with at least url and token',
    );
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new BlocklistClientOptionsError(
        key,
        `is not an option (known: ${[...KNOWN_OPTIONS].join(', ')})`,
      );
    }
  }
  const url = statusCenterUrl(options.url);
  // A token with whitespace or control characters would break (or inject into) the header.
  if (
    typeof options.token !== 'string' ||
    !/^[\x21-\x7e]+$/.test(options.token)
  ) {
    throw new BlocklistClientOptionsError(
      'token',
      'must be a non-empty reader token of printable characters without spaces',
    );
  }
  const refreshMs = milliseconds(
    'refreshMs',
    options.refreshMs,
    BLOCKLIST_CLIENT_DEFAULTS.refreshMs,
  );
  const maxStaleMs = milliseconds(
    'maxStaleMs',
    options.maxStaleMs,
    BLOCKLIST_CLIENT_DEFAULTS.maxStaleMs,
  );
  if (maxStaleMs < refreshMs) {
    // Otherwise the list would fail open between two healthy polls.
    throw new BlocklistClientOptionsError(
      'maxStaleMs',
      `must be at least refreshMs (${refreshMs}) (got ${maxStaleMs})`,
    );
  }
  const timeoutMs = milliseconds(
    'timeoutMs',
    options.timeoutMs,
    BLOCKLIST_CLIENT_DEFAULTS.timeoutMs,
  );
  const share =
    options.minHealthyShare ?? BLOCKLIST_CLIENT_DEFAULTS.minHealthyShare;
  if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
    throw new BlocklistClientOptionsError(
      'minHealthyShare',
      `must be a number from 0 to 1, where 0 turns panic off (got ${describe(options.minHealthyShare)})`,
    );
  }
  const logger = options.logger ?? defaultLogger();
  for (const method of ['info', 'warn', 'error'] as const) {
    if (typeof logger?.[method] !== 'function') {
      throw new BlocklistClientOptionsError(
        'logger',
        `must have info, warn and error methods (${method} is missing)`,
      );
    }
  }
  let snapshot: BlocklistSnapshot | undefined;
  if (options.snapshot !== undefined) {
    const parsed = parseSnapshot(options.snapshot);
    if (!parsed.ok)
      throw new BlocklistClientOptionsError(
        'snapshot',
        `is not a saved blocklist: ${parsed.message}`,
      );
    snapshot = parsed.value;
  }
  return {
    url: url.href,
    blocklistUrl: blocklistUrlOf(url),
    token: options.token,
    refreshMs,
    maxStaleMs,
    timeoutMs,
    minHealthyShare: share,
    fetch: fn<FetchLike>('fetch', options.fetch, (input, init) =>
      globalThis.fetch(input, init),
    ),
    now: fn('now', options.now, Date.now),
    random: fn('random', options.random, Math.random),
    logger,
    snapshot,
  };
}
