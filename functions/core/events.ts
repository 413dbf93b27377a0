/** Audit events: every decision with its evidence; kept eventTtlDays. */

export const EVENT_TYPES = [
  'ban',
  'escalation',
  'release',
  'expiry',
  'manual_ban',
  'manual_unban',
  'capped',
  'allowlisted',
  'origin_outage',
  'origin_recovered',
  'fleet_failure',
  'fleet_recovered',
  'fleet_silence',
  'fleet_silence_recovered',
  'reporter_token_issued',
  'reporter_token_revoked',
  'aggregation_failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type AuditEvent = {
  type: EventType;
  /** ISO time of the decision. */
  at: string;
  ip?: string;
  origin?: string;
  /** The minute bucket the decision was made on (automatic decisions). */
  minute?: string;
  /** false in dry-run mode: decided and recorded, blocklist unchanged. */
  enforced: boolean;
  rule?: string;
  /** Manual actions: which admin credential did it (role and a digest prefix, never the token). */
  actor?: string;
  /** Counts, ratios, window and ban details behind the decision. */
  evidence: Record<string, unknown>;
};

export const EVENT_QUERY_LIMITS = {
  defaultLimit: 100,
  maxLimit: 1000,
  defaultSinceMs: 86_400_000,
} as const;
