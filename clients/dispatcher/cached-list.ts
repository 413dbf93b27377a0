/**
 * The blocklist as the client holds it: entries keyed by canonical IP with
 * `until` parsed once, so each lookup is a map get and a comparison.
 */
import type { BlocklistEntry, BlocklistResponse } from '#contract/blocklist';
import { isBanActive } from '#contract/blocklist';
import { canonicalIp } from '#contract/ip';

export type ListedBan = BlocklistEntry & { untilMs: number };

export type CachedList = {
  response: BlocklistResponse;
  byIp: ReadonlyMap<string, ListedBan>;
};

/**
 * The key an address is looked up by. Text that is not an IP cannot be on the
 * blocklist, but it still gets a stable key so lookups never throw.
 */
export function ipKey(ip: string): string {
  return canonicalIp(ip.trim()) ?? ip.trim().toLowerCase();
}

export type BuiltList =
  | { ok: true; list: CachedList }
  | { ok: false; message: string };

/**
 * Indexes a response. An entry whose IP or `until` cannot be read rejects the
 * whole response: the server is broken, and the last good list is safer than a
 * partial one that silently drops a ban.
 */
export function buildCachedList(response: BlocklistResponse): BuiltList {
  const byIp = new Map<string, ListedBan>();
  for (const [index, entry] of response.entries.entries()) {
    const ip = canonicalIp(entry.ip);
    if (ip === undefined)
      return { ok: false, message: `entries.${index}.ip is not an IP address` };
    const untilMs = Date.parse(entry.until);
    if (Number.isNaN(untilMs))
      return { ok: false, message: `entries.${index}.until is not a date` };
    const known = byIp.get(ip);
    // Two spellings of one address: the longer ban wins.
    if (known === undefined || known.untilMs < untilMs)
      byIp.set(ip, { ...entry, untilMs });
  }
  return { ok: true, list: { response, byIp } };
}

/** The ban on `ip` still in force at `now`; expired entries no longer block, even in a stale list. */
export function activeBanOf(
  list: CachedList,
  ip: string,
  now: number,
): ListedBan | undefined {
  const ban = list.byIp.get(ipKey(ip));
  return ban !== undefined && isBanActive({ until: ban.untilMs }, now)
    ? ban
    : undefined;
}

export function countActive(list: CachedList, now: number): number {
  let count = 0;
  for (const ban of list.byIp.values())
    if (isBanActive({ until: ban.untilMs }, now)) count++;
  return count;
}
