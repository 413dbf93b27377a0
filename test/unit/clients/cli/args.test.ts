import { describe, expect, it } from 'vitest';
import { formatDuration } from '../../../../clients/cli/duration.js';
import {
  banTargets,
  MAX_CIDR_ADDRESSES,
} from '../../../../clients/cli/targets.js';
import { parseDurationMs } from '../../../../clients/settings.js';

describe('relaywatch durations', () => {
  it.each([
    ['90s', 90],
    ['15m', 900],
    ['2h', 7_200],
    ['1d', 86_400],
    ['1h30m', 5_400],
    ['2D', 172_800],
  ])('reads %s as %d seconds', (text, seconds) => {
    expect(parseDurationMs(text, { wholeUnits: true })).toBe(seconds * 1000);
  });

  it.each(['90', '', 'h', '1.5h', '-5m', '1 h', '1w', '1h 30m', '500ms'])(
    'refuses %j: a duration needs whole numbers with units',
    (text) => {
      expect(parseDurationMs(text, { wholeUnits: true })).toBeUndefined();
    },
  );

  it('writes spans with their two largest units', () => {
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(725_000)).toBe('12m 5s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(93_600_000)).toBe('1d 2h');
    expect(formatDuration(-5_000)).toBe('0s');
  });
});

describe('relaywatch ban targets', () => {
  it('takes one address in its canonical spelling', () => {
    expect(banTargets('2001:DB8:0::7')).toEqual({
      ok: true,
      ips: ['2001:db8::7'],
      cidr: false,
    });
    expect(banTargets('::ffff:192.0.2.7')).toEqual({
      ok: true,
      ips: ['192.0.2.7'],
      cidr: false,
    });
  });

  it('expands a small IPv4 block into each of its addresses', () => {
    expect(banTargets('198.51.100.6/30')).toEqual({
      ok: true,
      ips: ['198.51.100.4', '198.51.100.5', '198.51.100.6', '198.51.100.7'],
      cidr: true,
    });
  });

  it('expands an IPv6 block, and a /24 is the largest IPv4 block it takes', () => {
    const v6 = banTargets('2001:db8::/126');
    expect(v6.ok && v6.ips).toEqual([
      '2001:db8::',
      '2001:db8::1',
      '2001:db8::2',
      '2001:db8::3',
    ]);
    const v4 = banTargets('10.1.2.0/24');
    expect(v4.ok && v4.ips.length).toBe(MAX_CIDR_ADDRESSES);
    expect(v4.ok && v4.ips.at(-1)).toBe('10.1.2.255');
  });

  it('refuses a block over 256 addresses, naming the limit', () => {
    expect(banTargets('10.1.2.0/23')).toEqual({
      ok: false,
      error:
        '10.1.2.0/23 holds 512 addresses; the CLI bans at most 256 at once (a /24 or smaller)',
    });
    expect(banTargets('2001:db8::/64')).toMatchObject({
      ok: false,
      error: expect.stringContaining('a /120 or smaller'),
    });
  });

  it.each(['300.1.2.3', 'host.example', '10.0.0.0/33', '10.0.0.0/x'])(
    'refuses %j as neither address nor block',
    (text) => {
      expect(banTargets(text).ok).toBe(false);
    },
  );
});
