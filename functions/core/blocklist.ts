import type { BlocklistEntry, BlocklistResponse } from '#contract/blocklist';
import { isBanActive } from '#contract/blocklist';

/** What crosses the wire is the contract's; the stored Ban and the ETag are the server's. */
export type {
  BlocklistEntry,
  BlocklistResponse,
  ManualBanRequest,
} from '#contract/blocklist';
export {
  blocklistEntrySchema,
  blocklistResponseSchema,
  isBanActive,
  MANUAL_BAN_LIMITS,
  manualBanSchema,
} from '#contract/blocklist';

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
