/**
 * IP addresses as relaywatch stores them: one canonical spelling per address,
 * so that "2001:DB8:0::1" and "2001:db8::1" are the same machine, plus CIDR
 * matching for the allowlist. Pure: no node:net, so clients can import it.
 */

export type IpVersion = 4 | 6;
export type ParsedIp = { version: IpVersion; value: bigint };

const IPV4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!IPV4_PART.test(part)) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIpv6(text: string): bigint | undefined {
  let rest = text;
  let tail: bigint[] = [];
  // An embedded IPv4 tail (::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = rest.lastIndexOf(':');
  if (rest.includes('.', lastColon)) {
    const v4 = parseIpv4(rest.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    rest = text.slice(0, lastColon + 1);
    if (!rest.endsWith('::')) rest = rest.slice(0, -1);
  }
  const halves = rest.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (half: string | undefined): bigint[] | undefined => {
    if (half === undefined || half === '') return [];
    const groups = half.split(':');
    if (!groups.every((g) => HEX_GROUP.test(g))) return undefined;
    return groups.map((g) => BigInt(`0x${g}`));
  };
  const head = toGroups(halves[0]);
  const after = toGroups(halves[1]);
  if (head === undefined || after === undefined) return undefined;
  const explicit = head.length + after.length + tail.length;
  let groups: bigint[];
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    groups = [
      ...head,
      ...new Array<bigint>(8 - explicit).fill(0n),
      ...after,
      ...tail,
    ];
  } else {
    groups = [...head, ...tail];
  }
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function parseIp(text: string): ParsedIp | undefined {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    return value === undefined ? undefined : { version: 6, value };
  }
  const value = parseIpv4(text);
  return value === undefined ? undefined : { version: 4, value };
}

/** RFC 5952 spelling of an IPv6 value: lower case, longest zero run as "::". */
function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) =>
    Number((value >> BigInt((7 - i) * 16)) & 0xffffn),
  );
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

function formatIp(ip: ParsedIp): string {
  if (ip.version === 6) return formatIpv6(ip.value);
  return [24n, 16n, 8n, 0n]
    .map((s) => String((ip.value >> s) & 0xffn))
    .join('.');
}

/**
 * The one spelling relaywatch keys an address by; undefined when the text is
 * not an IP address.
 * @example canonicalIp('2001:DB8:0:0::1') // '2001:db8::1'
 */
export function canonicalIp(text: string): string | undefined {
  const parsed = parseIp(text);
  if (parsed === undefined) return undefined;
  // An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is the IPv4 machine itself.
  if (parsed.version === 6 && parsed.value >> 32n === 0xffffn) {
    return formatIp({ version: 4, value: parsed.value & 0xffffffffn });
  }
  return formatIp(parsed);
}

export function isIp(text: string): boolean {
  return parseIp(text) !== undefined;
}

export type Cidr = { version: IpVersion; network: bigint; prefix: number };

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr | undefined {
  const [address, prefixText, extra] = text.trim().split('/');
  if (address === undefined || extra !== undefined) return undefined;
  const ip = parseIp(address);
  if (ip === undefined) return undefined;
  const bits = ip.version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))
    return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  // Addresses are keyed in canonical form, where an IPv4-mapped address is the
  // IPv4 machine; a mapped range must therefore match those IPv4 addresses.
  if (ip.version === 6 && prefix >= 96 && ip.value >> 32n === 0xffffn) {
    const v4HostBits = BigInt(128 - prefix);
    return {
      version: 4,
      network: ((ip.value & 0xffffffffn) >> v4HostBits) << v4HostBits,
      prefix: prefix - 96,
    };
  }
  const hostBits = BigInt(bits - prefix);
  return {
    version: ip.version,
    network: (ip.value >> hostBits) << hostBits,
    prefix,
  };
}

export function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.version !== ip.version) return false;
  const hostBits = BigInt((cidr.version === 4 ? 32 : 128) - cidr.prefix);
  return (ip.value >> hostBits) << hostBits === cidr.network;
}
