import type { Ban } from '../../../../functions/core/blocklist.js';
import { parseConfig } from '../../../../functions/core/config.js';
import type { HeartbeatKind } from '../../../../functions/core/heartbeat.js';
import type { Lease } from '../../../../functions/core/leases.js';
import {
  minuteClosesAt,
  minuteOf,
} from '../../../../functions/core/minutes.js';
import type {
  Decision,
  PolicyInput,
  PolicyKnobs,
  PolicyResult,
} from '../../../../functions/core/policy.js';
import type {
  MinuteTally,
  StatusCounts,
} from '../../../../functions/core/tally.js';

/**
 * Inputs of decideMinute shared by the policy tests and the per-rule tests:
 * the shipped defaults, one minute of a fleet of ten, and one builder for
 * each kind of input (rows, probe rows, bans, leases, knobs).
 */

/** The shipped defaults: these tests read what an unconfigured status center does. */
export const KNOBS: PolicyKnobs = parseConfig({});
/** The shipped defaults with some knobs changed. */
export const knobsWith = (
  overrides: Partial<PolicyKnobs> = {},
): PolicyKnobs => ({
  ...KNOBS,
  ...overrides,
});

export const S = 1000;
export const HOUR = 3_600_000;
export const MINUTE = minuteOf(Date.parse('2026-11-24T14:03:00Z'));
export const NOW = minuteClosesAt(MINUTE, { graceMs: 10_000 });

export const ORIGIN_A = 'rtmp://origin-a.example.net:1935';
export const ORIGIN_B = 'rtmp://origin-b.example.net:1935';
export const ORIGIN_C = 'https://origin-c.example.net';
/** The origins a fleet relays unless a test names others. */
export const ORIGINS = [ORIGIN_A, ORIGIN_B];
export const CANARY = 'tcp://canary.example.net:443';

export const ipOf = (n: number) => `198.51.100.${n}`;
export const TEN = Array.from({ length: 10 }, (_, i) => ipOf(i + 1));

type Part = { origin: string; kind?: HeartbeatKind } & Partial<StatusCounts>;

/** One row of `ip` in MINUTE; `extra` sets another minute, observedAt, receivedAt, leaseSeconds. */
export function row(
  ip: string,
  parts: Part[],
  extra: Partial<MinuteTally> = {},
): MinuteTally {
  return {
    minute: MINUTE,
    ip,
    origins: parts.map(
      ({
        origin,
        kind,
        ok = 0,
        connect_failed = 0,
        origin_error = 0,
        error = 0,
      }) => ({
        origin,
        kind: kind ?? 'relay',
        counts: { ok, connect_failed, origin_error, error },
      }),
    ),
    ...extra,
  };
}

/** A fleet minute: every IP sends 12 heartbeats spread over `origins`; `status` picks one per (ip, origin). */
export function fleetRows(
  ips: readonly string[],
  origins: readonly string[] = ORIGINS,
  status: (ip: string, origin: string) => keyof StatusCounts = () => 'ok',
): MinuteTally[] {
  const each = Math.ceil(12 / origins.length);
  return ips.map((ip) =>
    row(
      ip,
      origins.map((origin) => ({ origin, [status(ip, origin)]: each })),
    ),
  );
}

/** A `status` for fleetRows: these IPs fail to connect, every other one is ok. */
export const failing =
  (...ips: readonly string[]) =>
  (ip: string): keyof StatusCounts =>
    ips.includes(ip) ? 'connect_failed' : 'ok';

/** A row of `ip` probing the canary: `ok` healthy and `failed` failing probes. */
export const probes = (
  ip: string,
  ok: number,
  failed = 0,
  extra: Partial<MinuteTally> = {},
) =>
  row(
    ip,
    [{ origin: CANARY, kind: 'probe', ok, connect_failed: failed }],
    extra,
  );

/** A live decision at NOW on nothing: no rows, bans, offenses or outages. */
export function input(overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    minute: MINUTE,
    now: NOW,
    window: [],
    recent: [],
    bans: [],
    offenses: {},
    previous: { outages: [], fleetWide: false },
    ...overrides,
  };
}

/** A first automatic fail-ratio ban of an hour from `since`. */
export function automaticBan(
  ip: string,
  since: number,
  extra: Partial<Ban> = {},
): Ban {
  return {
    ip,
    reason: 'test',
    since,
    until: since + HOUR,
    manual: false,
    failRatio: 1,
    samples: 12,
    offense: 1,
    rule: 'fail-ratio',
    ...extra,
  };
}

/** A lease last seen `ago` ms before NOW (60 s interval, relaying unless `active` is 0), returned `returnedAgo` ms before NOW if given. */
export function lease(
  ago: number,
  interval = 60,
  active: 0 | 1 = 1,
  returnedAgo?: number,
): Lease {
  return returnedAgo === undefined
    ? [NOW - ago, interval, active]
    : [NOW - ago, interval, active, NOW - returnedAgo];
}

/** The IPs of the decisions of these types, sorted. */
export const ipsWith = (result: PolicyResult, ...types: Decision['type'][]) =>
  result.decisions
    .flatMap((d) => (types.includes(d.type) && 'ip' in d ? [d.ip] : []))
    .sort();
/** The IPs banned now, first time or escalated, sorted. */
export const banned = (result: PolicyResult) =>
  ipsWith(result, 'ban', 'escalation');
