import { describe, expect, it } from 'vitest';
import {
  canonicalIp,
  cidrContains,
  isIp,
  parseCidr,
  parseIp,
} from '#contract/ip';

/** Parses a CIDR the test knows to be valid; fails the test otherwise. */
function cidr(text: string) {
  const parsed = parseCidr(text);
  if (!parsed) throw new Error(`test setup: ${text} should parse`);
  return parsed;
}

/** The address as the store keys it, parsed, as the allowlist check sees it. */
function stored(text: string) {
  const parsed = parseIp(canonicalIp(text) ?? '');
  if (!parsed) throw new Error(`test setup: ${text} should be an address`);
  return parsed;
}

describe('canonicalIp', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    // RFC 5952: the longest run of zeros is compressed, the first one on a tie.
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    // RFC 5952: a single zero group is not compressed.
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['FE80::ABCD', 'fe80::abcd'],
    // An IPv4-mapped IPv6 address is the IPv4 machine itself.
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:C000:0201', '192.0.2.1'],
    ['0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
    ['::ffff:0.0.0.0', '0.0.0.0'],
    // An embedded IPv4 tail that is not the mapped prefix stays IPv6.
    ['::192.0.2.1', '::c000:201'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('spells %s as %s', (input, expected) => {
    expect(canonicalIp(input)).toBe(expected);
  });

  it('gives every spelling of one address the same canonical form', () => {
    const spellings = [
      '2001:db8::1',
      '2001:DB8::1',
      '2001:db8:0::1',
      '2001:0db8:0:0:0:0:0:0001',
      '2001:db8:0:0:0::1',
    ];
    expect(new Set(spellings.map(canonicalIp))).toEqual(
      new Set(['2001:db8::1']),
    );
  });

  it('returns a canonical spelling that is its own canonical spelling', () => {
    for (const input of [
      '::ffff:192.0.2.1',
      '2001:DB8:0:0:0:0:0:1',
      '1:0:0:2:0:0:0:3',
      '::192.0.2.1',
    ]) {
      const once = canonicalIp(input) as string;
      expect(canonicalIp(once)).toBe(once);
    }
  });

  it.each([
    '',
    '192.0.2',
    '192.0.2.1.5',
    '192.0.2.256',
    '192.0.2.01',
    '192.0.2.-1',
    '0x7f.0.0.1',
    '192.0.2.1 ',
    ' 192.0.2.1',
    '192.0.2.1/32',
    '192.0.2.1:80',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2::3',
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '1:2:3:4:5:6:7:8::',
    '12345::1',
    'g::1',
    'fe80::1%eth0',
    '[::1]',
    '::ffff:192.0.2',
    '::ffff:192.0.2.256',
    '1:2:3:4:5:6:7:1.2.3.4',
    '::1.2.3.4:5',
    'localhost',
  ])('refuses %j', (input) => {
    expect(canonicalIp(input)).toBeUndefined();
    expect(isIp(input)).toBe(false);
  });
});

describe('parseIp', () => {
  it('tells IPv4 from IPv6 and reads the value', () => {
    expect(parseIp('192.0.2.1')).toEqual({ version: 4, value: 0xc0000201n });
    expect(parseIp('::ffff:192.0.2.1')).toEqual({
      version: 6,
      value: 0xffffc0000201n,
    });
    expect(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toEqual({
      version: 6,
      value: (1n << 128n) - 1n,
    });
  });
});

describe('parseCidr and cidrContains', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0', true],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.0.0/8', '9.255.255.255', false],
    ['192.0.2.128/25', '192.0.2.200', true],
    ['192.0.2.128/25', '192.0.2.127', false],
    ['192.0.2.7', '192.0.2.7', true],
    ['192.0.2.7', '192.0.2.8', false],
    ['192.0.2.7/32', '192.0.2.7', true],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['2001:db8::1', '2001:DB8:0::1', true],
    ['2001:db8::/127', '2001:db8::1', true],
    ['2001:db8::/127', '2001:db8::2', false],
    ['::/0', '2001:db8::1', true],
    // Versions never match each other, even for /0.
    ['0.0.0.0/0', '2001:db8::1', false],
    ['::/0', '192.0.2.1', false],
  ])('%s contains %s: %s', (range, address, expected) => {
    expect(cidrContains(cidr(range), stored(address))).toBe(expected);
  });

  it('masks host bits of the network address', () => {
    expect(parseCidr('10.1.2.3/8')).toEqual(parseCidr('10.0.0.0/8'));
  });

  it('ignores spaces around an allowlist item', () => {
    expect(parseCidr(' 10.0.0.0/8 ')).toEqual(parseCidr('10.0.0.0/8'));
  });

  it('treats a bare address as a single-host range', () => {
    expect(parseCidr('192.0.2.7')).toMatchObject({ version: 4, prefix: 32 });
    expect(parseCidr('2001:db8::1')).toMatchObject({ version: 6, prefix: 128 });
  });

  it.each([
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '10.0.0.0/x',
    '2001:db8::/129',
    'example.net/24',
    '/8',
    '',
    '300.0.0.0/8',
  ])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it('matches an address reported in IPv4-mapped form against an IPv4 allowlist entry', () => {
    expect(cidrContains(cidr('192.0.2.0/24'), stored('::ffff:192.0.2.7'))).toBe(
      true,
    );
  });

  it('matches an IPv4 machine against an allowlist entry written in IPv4-mapped form', () => {
    expect(cidrContains(cidr('::ffff:192.0.2.7'), stored('192.0.2.7'))).toBe(
      true,
    );
    expect(
      cidrContains(cidr('::ffff:192.0.2.0/120'), stored('192.0.2.99')),
    ).toBe(true);
    expect(
      cidrContains(cidr('::ffff:192.0.2.0/120'), stored('192.0.3.1')),
    ).toBe(false);
  });
});
