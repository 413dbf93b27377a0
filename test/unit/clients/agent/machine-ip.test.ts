import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { pickMachineIp } from '../../../../clients/agent/machine-ip.js';

const entry = (
  address: string,
  family: 'IPv4' | 'IPv6',
  internal = false,
): NetworkInterfaceInfo =>
  ({
    address,
    family,
    internal,
    netmask: '',
    mac: '00:00:00:00:00:00',
    cidr: null,
    scopeid: 0,
  }) as NetworkInterfaceInfo;

describe('detecting the machine IP', () => {
  it('picks a global IPv4 address of a physical interface over loopback, link-local, bridges and IPv6', () => {
    const interfaces = {
      lo: [entry('127.0.0.1', 'IPv4', true), entry('::1', 'IPv6', true)],
      docker0: [entry('172.17.0.1', 'IPv4')],
      eth0: [
        entry('fe80::1', 'IPv6'),
        entry('2001:db8::7', 'IPv6'),
        entry('192.0.2.7', 'IPv4'),
      ],
      eth1: [entry('169.254.3.3', 'IPv4')],
    };

    expect(pickMachineIp(interfaces)).toBe('192.0.2.7');
  });

  it('falls back to a global IPv6 address in canonical form', () => {
    expect(pickMachineIp({ eth0: [entry('2001:DB8:0:0::7', 'IPv6')] })).toBe(
      '2001:db8::7',
    );
  });

  it('finds nothing on a machine with only loopback', () => {
    expect(
      pickMachineIp({ lo: [entry('127.0.0.1', 'IPv4', true)] }),
    ).toBeUndefined();
  });
});
