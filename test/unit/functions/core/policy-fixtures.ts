import type { Ban } from '../../../../functions/core/blocklist.js';
import { parseConfig } from '../../../../functions/core/config.js';
import type { HeartbeatKind } from '../../../../functions/core/heartbeat.js';
import {
  minuteClosesAt,
  minuteOf,
} from '../../../../functions/core/minutes.js';
import type {
  PolicyInput,
  PolicyKnobs,
} from '../../../../functions/core/policy.js';
import type {
  MinuteTally,
  StatusCounts,
} from '../../../../functions/core/tally.js';

/** Shared fixtures of the policy and per-rule tests: the shipped defaults and a minute of rows. */
export const KNOBS: PolicyKnobs = parseConfig({});
export const MINUTE = minuteOf(Date.parse('2026-11-24T14:03:00Z'));
export const NOW = minuteClosesAt(MINUTE, { graceMs: 10_000 });
export const ORIGINS = [
  'rtmp://origin-a.example.net:1935',
  'rtmp://origin-b.example.net:1935',
];
export const CANARY = 'tcp://canary.example.net:443';
export const ipOf = (n: number) => `198.51.100.${n}`;
export const TEN = Array.from({ length: 10 }, (_, i) => ipOf(i + 1));

type Part = { origin: string; kind?: HeartbeatKind } & Partial<StatusCounts>;

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

/** Every IP relays both origins (6 heartbeats each); `status` picks per IP. */
export function fleet(
  ips: readonly string[],
  status: (ip: string) => keyof StatusCounts = () => 'ok',
): MinuteTally[] {
  return ips.map((ip) =>
    row(
      ip,
      ORIGINS.map((origin) => ({ origin, [status(ip)]: 6 })),
    ),
  );
}

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

export function automaticBan(
  ip: string,
  since: number,
  extra: Partial<Ban> = {},
): Ban {
  return {
    ip,
    reason: 'test',
    since,
    until: since + 3_600_000,
    manual: false,
    failRatio: 1,
    samples: 12,
    offense: 1,
    rule: 'fail-ratio',
    ...extra,
  };
}
