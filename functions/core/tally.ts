import type { Heartbeat, HeartbeatKind, HeartbeatStatus } from './heartbeat.js';
import { canonicalIp } from './ip.js';
import { getOrInsert } from './maps.js';
import { isMinuteOpen, minuteOf } from './minutes.js';

export type StatusCounts = Record<HeartbeatStatus, number>;

/** Counts of one (origin, kind) pair, as one machine saw it in one minute. */
export type OriginTally = {
  origin: string;
  kind: HeartbeatKind;
  counts: StatusCounts;
};

/** Everything one request said about one IP in one minute. */
export type MinuteTally = {
  minute: number;
  ip: string;
  origins: OriginTally[];
  /** When the request arrived (epoch ms); absent on rows written before it was recorded. */
  receivedAt?: number;
  /** The newest heartbeat `ts` of the row (epoch ms): when the report was observed. */
  observedAt?: number;
  /** The report interval the agent declared (its lease, seconds); absent for older agents. */
  leaseSeconds?: number;
};

export const UNKNOWN_ORIGIN = '';

export function emptyCounts(): StatusCounts {
  return { ok: 0, connect_failed: 0, origin_error: 0, error: 0 };
}

export function addCounts(
  into: StatusCounts,
  from: StatusCounts,
): StatusCounts {
  into.ok += from.ok;
  into.connect_failed += from.connect_failed;
  into.origin_error += from.origin_error;
  into.error += from.error;
  return into;
}

export function totalOf(counts: StatusCounts): number {
  return counts.ok + counts.connect_failed + counts.origin_error + counts.error;
}

/**
 * The origin a heartbeat is evidence about: scheme and host of its URL, since
 * reachability is a property of the host, not of one stream path on it.
 * @example originKey('rtmp://Origin.example.com:1935/live/abc') // 'rtmp://origin.example.com:1935'
 */
export function originKey(origin: string | undefined): string {
  if (origin === undefined) return UNKNOWN_ORIGIN;
  const text = origin.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const url = new URL(text);
      if (url.host) return `${url.protocol}//${url.host}`.toLowerCase();
    } catch {
      // not a URL after all: fall through and key by the text itself
    }
  }
  return text.toLowerCase();
}

/** `accepted` is every heartbeat of the request; `stale` says how many of them were too late to count. */
export type TallyResult = {
  tallies: MinuteTally[];
  accepted: number;
  stale: number;
};

/**
 * Pre-combines a request's heartbeats per (minute, ip), so that storage cost
 * grows with requests, not heartbeats. Heartbeats of a minute that has already
 * closed are accepted but not counted (`stale`): an agent delivering a backlog
 * after an outage is not refused, and closed buckets never change.
 */
export function tallyHeartbeats(
  heartbeats: readonly Heartbeat[],
  options: {
    now: number;
    graceMs: number;
    receivedAt?: number;
    leaseSeconds?: number | undefined;
    ip?: string | undefined;
  },
): TallyResult {
  const byMinuteAndIp = new Map<
    string,
    {
      minute: number;
      ip: string;
      observedAt: number;
      origins: Map<string, OriginTally>;
    }
  >();
  let stale = 0;
  for (const heartbeat of heartbeats) {
    const observedAt = heartbeat.ts ?? options.now;
    const minute = minuteOf(observedAt);
    if (!isMinuteOpen(minute, options)) {
      stale++;
      continue;
    }
    const ip = canonicalIp(heartbeat.ip) ?? heartbeat.ip;
    const key = `${minute} ${ip}`;
    const tally = getOrInsert(byMinuteAndIp, key, () => ({
      minute,
      ip,
      observedAt,
      origins: new Map<string, OriginTally>(),
    }));
    tally.observedAt = Math.max(tally.observedAt, observedAt);
    const kind = heartbeat.kind ?? 'relay';
    const origin = originKey(heartbeat.origin);
    const originTally = getOrInsert(tally.origins, `${kind} ${origin}`, () => ({
      origin,
      kind,
      counts: emptyCounts(),
    }));
    originTally.counts[heartbeat.status]++;
  }
  // A lease renewal of an idle agent: a row of its IP that says "alive, running nothing".
  if (
    heartbeats.length === 0 &&
    options.ip !== undefined &&
    options.leaseSeconds !== undefined
  ) {
    const ip = canonicalIp(options.ip) ?? options.ip;
    const at = options.receivedAt ?? options.now;
    byMinuteAndIp.set(`renewal ${ip}`, {
      minute: minuteOf(at),
      ip,
      observedAt: at,
      origins: new Map(),
    });
  }
  const tallies = [...byMinuteAndIp.values()].map(
    ({ minute, ip, observedAt, origins }): MinuteTally => ({
      minute,
      ip,
      origins: [...origins.values()],
      receivedAt: options.receivedAt ?? options.now,
      observedAt,
      ...(options.leaseSeconds === undefined
        ? {}
        : { leaseSeconds: options.leaseSeconds }),
    }),
  );
  return { tallies, accepted: heartbeats.length, stale };
}

/**
 * A 48-bit identity of an origin (cyrb53's two lanes, 12 hex digits). Rows
 * store this instead of the name: with a few hundred thousand distinct origins
 * in a minute a collision stays below one in a million.
 * @example originId('rtmp://origin.example.com') // '3f0c9a1be27d'
 */
export function originId(origin: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < origin.length; i++) {
    const code = origin.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 =
    Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^
    Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 =
    Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^
    Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (
    (h2 & 0xffff).toString(16).padStart(4, '0') +
    (h1 >>> 0).toString(16).padStart(8, '0')
  );
}

/**
 * How an origin whose name no row of the read carried is keyed. originKey only
 * yields lower case, so the upper-case H keeps it apart from every real name.
 */
export const unnamedOrigin = (id: string) => `#H${id}`;
