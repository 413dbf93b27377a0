import type { Heartbeat, HeartbeatEnvelope } from '#contract/heartbeat';
import {
  HEARTBEAT_LIMITS,
  heartbeatEnvelopeSchema,
  heartbeatSchema,
  isHeartbeatEnvelope,
} from '#contract/heartbeat';
import { canonicalIp } from '#contract/ip';
import type { InputIssue, Parsed } from '#contract/validation';
import { parseWith } from '#contract/validation';
import { minuteOf } from './minutes.js';
import { originKey } from './tally.js';

/** The wire format is the contract's; the server adds the checks that need its clock. */
export type {
  Heartbeat,
  HeartbeatEnvelope,
  HeartbeatKind,
  HeartbeatStatus,
} from '#contract/heartbeat';
export {
  HEARTBEAT_KINDS,
  HEARTBEAT_LIMITS,
  HEARTBEAT_STATUSES,
  heartbeatEnvelopeSchema,
  heartbeatSchema,
  isHeartbeatEnvelope,
} from '#contract/heartbeat';

/**
 * Reads a POST /v1/heartbeats body: one heartbeat, or {"heartbeats": [...]}.
 * Timestamps more than maxFutureSkewMs ahead of `now` are refused here too,
 * so one bad heartbeat rejects the whole request and nothing is stored.
 */
export function parseHeartbeatBody(
  body: unknown,
  now: number,
): Parsed<HeartbeatEnvelope> {
  const isEnvelope = isHeartbeatEnvelope(body);
  const parsed = isEnvelope
    ? parseWith(heartbeatEnvelopeSchema, body)
    : parseWith(heartbeatSchema, body);
  if (!parsed.ok) return parsed;
  const envelope: HeartbeatEnvelope = isEnvelope
    ? (parsed.value as HeartbeatEnvelope)
    : { heartbeats: [parsed.value as Heartbeat] };
  const issues: InputIssue[] = [];
  if (
    envelope.heartbeats.length === 0 &&
    (envelope.ip === undefined || envelope.reportIntervalSeconds === undefined)
  ) {
    issues.push({
      path: 'heartbeats',
      message:
        'must hold at least 1 heartbeat (an empty list only renews a lease: give ip and reportIntervalSeconds)',
    });
  }
  envelope.heartbeats.forEach((heartbeat, index) => {
    if (
      heartbeat.ts !== undefined &&
      heartbeat.ts > now + HEARTBEAT_LIMITS.maxFutureSkewMs
    ) {
      issues.push({
        path: isEnvelope ? `heartbeats.${index}.ts` : 'ts',
        message: `is more than ${HEARTBEAT_LIMITS.maxFutureSkewMs / 1000} s in the future (server time ${new Date(now).toISOString()})`,
      });
    }
  });
  issues.push(...originIssues(envelope.heartbeats, now));
  return issues.length ? { ok: false, issues } : { ok: true, value: envelope };
}

/** The heartbeats past the distinct-origin limits, named once per limit. */
function originIssues(
  heartbeats: readonly Heartbeat[],
  now: number,
): InputIssue[] {
  const all = new Set<string>();
  const perIpMinute = new Map<string, Set<string>>();
  let ipMinuteIssue: InputIssue | undefined;
  heartbeats.forEach((heartbeat, index) => {
    // Per origin, relays and probes together: a row packs both kinds of one origin in one entry.
    const origin = originKey(heartbeat.origin);
    all.add(origin);
    const slot = `${minuteOf(heartbeat.ts ?? now)} ${canonicalIp(heartbeat.ip)}`;
    const origins = perIpMinute.get(slot) ?? new Set<string>();
    perIpMinute.set(slot, origins.add(origin));
    if (
      !ipMinuteIssue &&
      origins.size > HEARTBEAT_LIMITS.maxOriginsPerIpMinute
    ) {
      ipMinuteIssue = {
        path: `heartbeats.${index}.origin`,
        message: `is origin number ${origins.size} of ${heartbeat.ip} in one minute; at most ${HEARTBEAT_LIMITS.maxOriginsPerIpMinute} distinct origins per IP and minute`,
      };
    }
  });
  return [
    ...(ipMinuteIssue ? [ipMinuteIssue] : []),
    ...(all.size > HEARTBEAT_LIMITS.maxOriginsPerRequest
      ? [
          {
            path: 'heartbeats',
            message: `name ${all.size} distinct origins; at most ${HEARTBEAT_LIMITS.maxOriginsPerRequest} per request`,
          },
        ]
      : []),
  ];
}
