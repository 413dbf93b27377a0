/**
 * The blocklist as it crosses the wire: GET /v1/blocklist answers it, the
 * dispatcher client parses it, PUT /v1/bans/{ip} takes a manual ban. How the
 * status center stores a ban stays in functions/core.
 */
import * as z from 'zod/mini';

/**
 * A ban is in force while until > now. DynamoDB's TTL deletes expired bans only
 * eventually (up to ~48 h in AWS), and a client may hold an old list, so every
 * reader applies this check itself.
 */
export function isBanActive(ban: { until: number }, now: number): boolean {
  return ban.until > now;
}

export const blocklistEntrySchema = z.object({
  ip: z.string(),
  reason: z.string(),
  since: z.string(),
  until: z.string(),
  failRatio: z.nullable(z.number()),
  samples: z.nullable(z.number()),
  manual: z.boolean(),
});
export type BlocklistEntry = z.infer<typeof blocklistEntrySchema>;

/** The body of GET /v1/blocklist; the dispatcher client parses it with this. */
export const blocklistResponseSchema = z.object({
  generatedAt: z.string(),
  entries: z.array(blocklistEntrySchema),
});
export type BlocklistResponse = z.infer<typeof blocklistResponseSchema>;

export const MANUAL_BAN_LIMITS = {
  maxDurationSeconds: 30 * 86_400,
  maxReasonLength: 256,
} as const;

/** Body of PUT /v1/bans/{ip}. */
export const manualBanSchema = z.object({
  durationSeconds: z
    .number()
    .check(
      z.int(),
      z.positive(),
      z.lte(
        MANUAL_BAN_LIMITS.maxDurationSeconds,
        `must be at most ${MANUAL_BAN_LIMITS.maxDurationSeconds} (30 days)`,
      ),
    ),
  reason: z.optional(
    z
      .string()
      .check(z.minLength(1), z.maxLength(MANUAL_BAN_LIMITS.maxReasonLength)),
  ),
});
export type ManualBanRequest = z.infer<typeof manualBanSchema>;
