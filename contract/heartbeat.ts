/**
 * The heartbeat wire format: what an agent sends to POST /v1/heartbeats, with
 * every limit named once (the README and the OpenAPI document quote these).
 */

import * as z from 'zod/mini';
import { canonicalIp } from './ip.js';

/** Every limit of the heartbeat API, named once; the README quotes these. */
export const HEARTBEAT_LIMITS = {
  /** Heartbeats in one POST /v1/heartbeats. */
  maxBatch: 500,
  /** Request body bytes; over this the answer is 413. */
  maxBodyBytes: 1_048_576,
  maxProcessLength: 128,
  maxOriginLength: 1024,
  maxDetailLength: 512,
  maxBatchIdLength: 128,
  /** A heartbeat observed further ahead of the server's clock is refused. */
  maxFutureSkewMs: 60_000,
  /** The report interval an agent may declare (its lease), in seconds. */
  minReportIntervalSeconds: 1,
  maxReportIntervalSeconds: 3600,
  /**
   * Distinct origins (scheme + host; a relay and a probe of it count once) one request may name, and one
   * (IP, minute) of it: evidence is stored and read per origin, so these bound
   * the row a request writes and what readers of that minute must sum.
   */
  maxOriginsPerRequest: 256,
  maxOriginsPerIpMinute: 128,
} as const;

export const HEARTBEAT_STATUSES = [
  'ok',
  'connect_failed',
  'origin_error',
  'error',
] as const;
export type HeartbeatStatus = (typeof HEARTBEAT_STATUSES)[number];

/** "relay" is a customer stream; "probe" is the agent's own reachability check. */
export const HEARTBEAT_KINDS = ['relay', 'probe'] as const;
export type HeartbeatKind = (typeof HEARTBEAT_KINDS)[number];

const ipField = z.string().check(
  z.maxLength(45),
  z.refine((text) => canonicalIp(text) !== undefined, {
    message: 'must be an IPv4 or IPv6 address',
  }),
);

export const heartbeatSchema = z.object({
  ip: ipField,
  process: z
    .string()
    .check(z.minLength(1), z.maxLength(HEARTBEAT_LIMITS.maxProcessLength)),
  status: z.enum(HEARTBEAT_STATUSES),
  kind: z.optional(z.enum(HEARTBEAT_KINDS)),
  origin: z.optional(
    z
      .string()
      .check(z.minLength(1), z.maxLength(HEARTBEAT_LIMITS.maxOriginLength)),
  ),
  ts: z.optional(z.number().check(z.int(), z.positive())),
  detail: z.optional(
    z.string().check(z.maxLength(HEARTBEAT_LIMITS.maxDetailLength)),
  ),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const heartbeatEnvelopeSchema = z.object({
  // At least one, except in a lease renewal (checked in parseHeartbeatBody).
  heartbeats: z
    .array(heartbeatSchema)
    .check(z.maxLength(HEARTBEAT_LIMITS.maxBatch)),
  /**
   * The reporting machine's IP. With reportIntervalSeconds it lets an idle
   * agent (nothing relayed, nothing probed) renew its lease with an empty list.
   */
  ip: z.optional(ipField),
  batchId: z.optional(
    z
      .string()
      .check(
        z.minLength(1),
        z.maxLength(HEARTBEAT_LIMITS.maxBatchIdLength),
        z.regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
      ),
  ),
  /**
   * The agent's lease: it promises its next report within this many seconds.
   * Its silence then counts as evidence (docs/policy.md, rule silent).
   */
  reportIntervalSeconds: z.optional(
    z
      .number()
      .check(
        z.int('must be an integer number of seconds'),
        z.gte(
          HEARTBEAT_LIMITS.minReportIntervalSeconds,
          `must be from ${HEARTBEAT_LIMITS.minReportIntervalSeconds} to ${HEARTBEAT_LIMITS.maxReportIntervalSeconds}`,
        ),
        z.lte(
          HEARTBEAT_LIMITS.maxReportIntervalSeconds,
          `must be from ${HEARTBEAT_LIMITS.minReportIntervalSeconds} to ${HEARTBEAT_LIMITS.maxReportIntervalSeconds}`,
        ),
      ),
  ),
});
export type HeartbeatEnvelope = z.infer<typeof heartbeatEnvelopeSchema>;

/** Whether a POST /v1/heartbeats body is the envelope form ({"heartbeats": [...]}) rather than one heartbeat. */
export function isHeartbeatEnvelope(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'heartbeats' in body;
}
