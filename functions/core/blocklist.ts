import * as z from 'zod/mini';
import './validation.js';

/** A ban as the status center keeps it; times are epoch ms. */
export type Ban = {
  ip: string;
  reason: string;
  since: number;
  until: number;
  manual: boolean;
  /** Connect-failure ratio that triggered an automatic ban; null for a manual one. */
  failRatio: number | null;
  /** Counted samples behind failRatio; null for a manual one. */
  samples: number | null;
  /** How many automatic bans this IP had within 24 h, this one included (escalation). */
  offense: number;
  /** The rule that decided it, e.g. "fail-ratio" or "manual". */
  rule: string;
};

/**
 * A ban is in force while until > now. DynamoDB's TTL deletes expired bans only
 * eventually (up to ~48 h in AWS), so every reader applies this check itself.
 */
export function isBanActive(ban: Pick<Ban, 'until'>, now: number): boolean {
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

export function toBlocklistEntry(ban: Ban): BlocklistEntry {
  return {
    ip: ban.ip,
    reason: ban.reason,
    since: new Date(ban.since).toISOString(),
    until: new Date(ban.until).toISOString(),
    failRatio: ban.failRatio,
    samples: ban.samples,
    manual: ban.manual,
  };
}

/** The blocklist at `now`: active bans only, in a stable order (by IP). */
export function blocklistAt(
  bans: readonly Ban[],
  now: number,
): BlocklistResponse {
  const entries = bans
    .filter((ban) => isBanActive(ban, now))
    .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0))
    .map(toBlocklistEntry);
  return { generatedAt: new Date(now).toISOString(), entries };
}

/**
 * A strong ETag over the entries (not generatedAt), so a dispatcher polling an
 * unchanged list gets 304s. Two 32-bit FNV-1a passes with different seeds:
 * pure JS, fast, and collisions are irrelevant at blocklist sizes.
 */
export function blocklistEtag(entries: readonly BlocklistEntry[]): string {
  const text = JSON.stringify(entries);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x01000193) ^ (b >>> 13);
  }
  const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');
  return `"${hex(a)}${hex(b)}"`;
}

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
