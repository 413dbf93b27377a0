/**
 * What `relaywatch ban` may be given: one address, or a small CIDR block that
 * it expands into one ban per address, since the API bans single IPs.
 */
import { canonicalIp, parseCidr } from '#contract/ip';

/** Most addresses one `ban <cidr>` expands to: a /24 in IPv4, a /120 in IPv6. */
export const MAX_CIDR_ADDRESSES = 256;

export type BanTargets =
  | { ok: true; ips: string[]; cidr: boolean }
  | { ok: false; error: string };

function addressText(version: 4 | 6, value: bigint): string {
  if (version === 4)
    return [24n, 16n, 8n, 0n]
      .map((shift) => String((value >> shift) & 0xffn))
      .join('.');
  const groups = Array.from({ length: 8 }, (_, i) =>
    ((value >> BigInt(112 - i * 16)) & 0xffffn).toString(16),
  );
  return canonicalIp(groups.join(':')) ?? groups.join(':');
}

/** The addresses `text` names, or why it names none the CLI will ban. */
export function banTargets(text: string): BanTargets {
  if (!text.includes('/')) {
    const ip = canonicalIp(text);
    return ip
      ? { ok: true, ips: [ip], cidr: false }
      : {
          ok: false,
          error: `"${text}" is not an IPv4 or IPv6 address or CIDR block`,
        };
  }
  const cidr = parseCidr(text);
  if (!cidr)
    return {
      ok: false,
      error: `"${text}" is not a CIDR block like 198.51.100.0/28 or 2001:db8::/124`,
    };
  const bits = cidr.version === 4 ? 32 : 128;
  const count = 2n ** BigInt(bits - cidr.prefix);
  if (count > BigInt(MAX_CIDR_ADDRESSES)) {
    const smallest = bits - Math.log2(MAX_CIDR_ADDRESSES);
    return {
      ok: false,
      error: `${text} holds ${count} addresses; the CLI bans at most ${MAX_CIDR_ADDRESSES} at once (a /${smallest} or smaller)`,
    };
  }
  const ips = Array.from({ length: Number(count) }, (_, i) =>
    addressText(cidr.version, cidr.network + BigInt(i)),
  );
  return { ok: true, ips, cidr: true };
}
