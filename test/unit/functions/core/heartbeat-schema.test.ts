import { describe, expect, it } from 'vitest';
import {
  HEARTBEAT_LIMITS,
  parseHeartbeatBody,
} from '../../../../functions/core/heartbeat.js';

const NOW = Date.parse('2026-11-24T14:03:27Z');

/** The smallest valid heartbeat; each case below changes one thing about it. */
const base = { ip: '192.0.2.1', process: 'ffmpeg-1', status: 'ok' } as const;
const batchOf = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    ...base,
    process: `ffmpeg-${i}`,
  }));

describe('parseHeartbeatBody accepts', () => {
  it.each<[string, unknown, number]>([
    ['a single heartbeat with only the required fields', base, 1],
    [
      'each status',
      {
        heartbeats: ['ok', 'connect_failed', 'origin_error', 'error'].map(
          (status) => ({ ...base, status }),
        ),
      },
      4,
    ],
    [
      'both kinds',
      {
        heartbeats: [
          { ...base, kind: 'relay' },
          { ...base, kind: 'probe' },
        ],
      },
      2,
    ],
    [
      'every optional field at once',
      {
        ...base,
        kind: 'probe',
        origin: 'rtmp://o.example/live',
        ts: NOW,
        detail: 'Connection refused',
      },
      1,
    ],
    [
      'process at exactly 128 characters',
      { ...base, process: 'p'.repeat(HEARTBEAT_LIMITS.maxProcessLength) },
      1,
    ],
    [
      'origin at exactly 1024 characters',
      { ...base, origin: 'o'.repeat(HEARTBEAT_LIMITS.maxOriginLength) },
      1,
    ],
    [
      'detail at exactly 512 characters',
      { ...base, detail: 'd'.repeat(HEARTBEAT_LIMITS.maxDetailLength) },
      1,
    ],
    ['an empty detail', { ...base, detail: '' }, 1],
    [
      'ts exactly 60 s ahead of the server clock',
      { ...base, ts: NOW + HEARTBEAT_LIMITS.maxFutureSkewMs },
      1,
    ],
    ['ts far in the past (stale, but not invalid)', { ...base, ts: 1 }, 1],
    ['an envelope of one', { heartbeats: [base] }, 1],
    [
      'an envelope of exactly 500',
      { heartbeats: batchOf(HEARTBEAT_LIMITS.maxBatch) },
      HEARTBEAT_LIMITS.maxBatch,
    ],
    [
      'an envelope with a printable batchId of 128 characters',
      { batchId: `a-${'9'.repeat(126)}`, heartbeats: [base] },
      1,
    ],
    [
      'a batchId of punctuation',
      { batchId: 'agent:7/seq#42!~', heartbeats: [base] },
      1,
    ],
    [
      'a report interval of 1 s and of 3600 s',
      { reportIntervalSeconds: 1, heartbeats: [{ ...base, ts: NOW }] },
      1,
    ],
    [
      'an idle agent renewing its lease with an empty list',
      { ip: '192.0.2.1', reportIntervalSeconds: 60, heartbeats: [] },
      0,
    ],
    [
      'a report interval at the upper limit',
      {
        reportIntervalSeconds: HEARTBEAT_LIMITS.maxReportIntervalSeconds,
        heartbeats: [base],
      },
      1,
    ],
    [
      'an IPv6 address in full',
      { ...base, ip: '2001:0db8:0000:0000:0000:0000:0000:0001' },
      1,
    ],
    ['an IPv6 address compressed', { ...base, ip: '2001:db8::1' }, 1],
    ['an IPv6 address in upper case', { ...base, ip: '2001:DB8::A' }, 1],
    ['the IPv6 unspecified address', { ...base, ip: '::' }, 1],
    ['an IPv4-mapped IPv6 address', { ...base, ip: '::ffff:192.0.2.1' }, 1],
    [
      'the longest IPv6 spelling (45 characters)',
      { ...base, ip: 'ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255' },
      1,
    ],
    ['unknown extra fields, which are dropped', { ...base, pid: 4242 }, 1],
  ])('%s', (_name, body, count) => {
    // Prepare: the body above. Act:
    const parsed = parseHeartbeatBody(body, NOW);
    // Assess:
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.value.heartbeats).toHaveLength(count);
  });

  it('wraps a single heartbeat into an envelope of one without a batchId', () => {
    const parsed = parseHeartbeatBody({ ...base, ts: NOW }, NOW);
    expect(parsed).toEqual({
      ok: true,
      value: { heartbeats: [{ ...base, ts: NOW }] },
    });
  });

  it('keeps the batchId of an envelope', () => {
    const parsed = parseHeartbeatBody(
      { batchId: 'agent-7-seq-42', heartbeats: [base] },
      NOW,
    );
    expect(parsed.ok && parsed.value.batchId).toBe('agent-7-seq-42');
  });

  it('drops fields the schema does not know, so they are never stored', () => {
    const parsed = parseHeartbeatBody({ ...base, secret: 'x' }, NOW);
    expect(parsed.ok && parsed.value.heartbeats[0]).toEqual(base);
  });
});

describe('parseHeartbeatBody refuses, naming the path', () => {
  it.each<[string, unknown, string[]]>([
    ['null', null, ['(body)']],
    ['a string', 'ok', ['(body)']],
    ['a number', 42, ['(body)']],
    ['an array of heartbeats without an envelope', [base], ['(body)']],
    ['an empty object', {}, ['ip', 'process', 'status']],
    ['a missing ip', { process: 'p', status: 'ok' }, ['ip']],
    ['a numeric ip', { ...base, ip: 3221225985 }, ['ip']],
    ['an IPv4 octet over 255', { ...base, ip: '300.1.2.3' }, ['ip']],
    [
      'an IPv4 address with a leading zero',
      { ...base, ip: '192.0.2.01' },
      ['ip'],
    ],
    ['an IPv4 address with a port', { ...base, ip: '192.0.2.1:8080' }, ['ip']],
    ['an IPv4 address with three parts', { ...base, ip: '192.0.2' }, ['ip']],
    ['a host name', { ...base, ip: 'relay-1.example.net' }, ['ip']],
    ['an IPv6 address with two "::"', { ...base, ip: '2001::db8::1' }, ['ip']],
    [
      'an IPv6 address with nine groups',
      { ...base, ip: '1:2:3:4:5:6:7:8:9' },
      ['ip'],
    ],
    ['an IPv6 address with a zone', { ...base, ip: 'fe80::1%eth0' }, ['ip']],
    ['an IPv6 address in brackets', { ...base, ip: '[2001:db8::1]' }, ['ip']],
    [
      'an IPv4-mapped address with a bad IPv4 tail',
      { ...base, ip: '::ffff:192.0.2.256' },
      ['ip'],
    ],
    [
      'an ip longer than 45 characters',
      { ...base, ip: `${'0000:'.repeat(8)}192.0.2.1` },
      ['ip'],
    ],
    ['an ip with surrounding spaces', { ...base, ip: ' 192.0.2.1 ' }, ['ip']],
    ['an empty process', { ...base, process: '' }, ['process']],
    [
      'process at 129 characters',
      { ...base, process: 'p'.repeat(HEARTBEAT_LIMITS.maxProcessLength + 1) },
      ['process'],
    ],
    ['an unknown status', { ...base, status: 'broken' }, ['status']],
    ['a status in upper case', { ...base, status: 'OK' }, ['status']],
    ['an unknown kind', { ...base, kind: 'customer' }, ['kind']],
    ['an empty origin', { ...base, origin: '' }, ['origin']],
    [
      'origin at 1025 characters',
      { ...base, origin: 'o'.repeat(HEARTBEAT_LIMITS.maxOriginLength + 1) },
      ['origin'],
    ],
    [
      'detail at 513 characters',
      { ...base, detail: 'd'.repeat(HEARTBEAT_LIMITS.maxDetailLength + 1) },
      ['detail'],
    ],
    ['a non-integer ts', { ...base, ts: NOW + 0.5 }, ['ts']],
    ['ts as an ISO string', { ...base, ts: '2026-11-24T14:03:27Z' }, ['ts']],
    ['ts of zero', { ...base, ts: 0 }, ['ts']],
    ['a negative ts', { ...base, ts: -NOW }, ['ts']],
    ['ts beyond the safe integers', { ...base, ts: 2 ** 53 }, ['ts']],
    [
      'ts more than 60 s ahead of the server clock',
      { ...base, ts: NOW + HEARTBEAT_LIMITS.maxFutureSkewMs + 1 },
      ['ts'],
    ],
    [
      'heartbeats that is not an array',
      { heartbeats: { 0: base } },
      ['heartbeats'],
    ],
    ['an empty envelope', { heartbeats: [] }, ['heartbeats']],
    [
      'an envelope of 501',
      { heartbeats: batchOf(HEARTBEAT_LIMITS.maxBatch + 1) },
      ['heartbeats'],
    ],
    [
      'a bad ip at index 3 of an envelope',
      { heartbeats: [base, base, base, { ...base, ip: '300.1.2.3' }] },
      ['heartbeats.3.ip'],
    ],
    [
      'a future ts at index 1 of an envelope',
      { heartbeats: [base, { ...base, ts: NOW + 61_000 }] },
      ['heartbeats.1.ts'],
    ],
    [
      'problems in two heartbeats of an envelope',
      { heartbeats: [{ ...base, status: 'x' }, base, { ...base, kind: 'y' }] },
      ['heartbeats.0.status', 'heartbeats.2.kind'],
    ],
    [
      'a batchId with spaces',
      { batchId: 'agent 7', heartbeats: [base] },
      ['batchId'],
    ],
    [
      'a batchId with a newline',
      { batchId: 'agent\n7', heartbeats: [base] },
      ['batchId'],
    ],
    [
      'a batchId with non-ASCII letters',
      { batchId: 'agént-7', heartbeats: [base] },
      ['batchId'],
    ],
    ['an empty batchId', { batchId: '', heartbeats: [base] }, ['batchId']],
    [
      'a batchId of 129 characters',
      {
        batchId: 'b'.repeat(HEARTBEAT_LIMITS.maxBatchIdLength + 1),
        heartbeats: [base],
      },
      ['batchId'],
    ],
    ['a numeric batchId', { batchId: 42, heartbeats: [base] }, ['batchId']],
    [
      'an empty list with an ip but no report interval',
      { ip: '192.0.2.1', heartbeats: [] },
      ['heartbeats'],
    ],
    [
      'an empty list with a report interval but no ip',
      { reportIntervalSeconds: 60, heartbeats: [] },
      ['heartbeats'],
    ],
    [
      'an envelope ip that is not an address',
      { ip: 'relay-1', reportIntervalSeconds: 60, heartbeats: [] },
      ['ip'],
    ],
    [
      'a report interval of 0',
      { reportIntervalSeconds: 0, heartbeats: [base] },
      ['reportIntervalSeconds'],
    ],
    [
      'a report interval over an hour',
      { reportIntervalSeconds: 3601, heartbeats: [base] },
      ['reportIntervalSeconds'],
    ],
    [
      'a fractional report interval',
      { reportIntervalSeconds: 1.5, heartbeats: [base] },
      ['reportIntervalSeconds'],
    ],
    [
      'a report interval as a string',
      { reportIntervalSeconds: '60', heartbeats: [base] },
      ['reportIntervalSeconds'],
    ],
  ])('%s', (_name, body, paths) => {
    // Prepare: the body above. Act:
    const parsed = parseHeartbeatBody(body, NOW);
    // Assess: refused, and every issue is on one of the expected paths, each path named.
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(
      [...new Set(parsed.issues.map((issue) => issue.path))].sort(),
    ).toEqual([...paths].sort());
    for (const issue of parsed.issues)
      expect(issue.message).toEqual(expect.any(String));
  });

  it('says why a bad IP was refused', () => {
    const parsed = parseHeartbeatBody({ ...base, ip: '300.1.2.3' }, NOW);
    expect(parsed).toEqual({
      ok: false,
      issues: [{ path: 'ip', message: 'must be an IPv4 or IPv6 address' }],
    });
  });

  it('quotes the server time when refusing a future ts, so an agent can see its clock skew', () => {
    const parsed = parseHeartbeatBody({ ...base, ts: NOW + 120_000 }, NOW);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok)
      expect(parsed.issues[0]?.message).toContain(new Date(NOW).toISOString());
  });

  it('refuses the whole envelope when only its last heartbeat is bad', () => {
    const heartbeats = [...batchOf(9), { ...base, status: 'nope' }];
    const parsed = parseHeartbeatBody({ heartbeats }, NOW);
    expect(parsed).toMatchObject({
      ok: false,
      issues: [{ path: 'heartbeats.9.status' }],
    });
  });
});

describe('the distinct-origin limit and the agent periodic report', () => {
  it('accepts 100 relays over 100 origins with a probe of each origin and 3 canaries (a relay and a probe of one origin count once)', () => {
    const ip = '192.0.2.40';
    const heartbeats = [
      ...Array.from({ length: 100 }, (_, i) => ({
        ip,
        process: `ffmpeg-${i}`,
        status: 'ok',
        origin: `rtmp://live-${i}.example.com:1935/live/s${i}`,
        ts: NOW,
      })),
      ...Array.from({ length: 100 }, (_, i) => ({
        ip,
        process: `probe:${i}`,
        kind: 'probe',
        status: 'ok',
        origin: `rtmp://live-${i}.example.com:1935`,
        ts: NOW,
      })),
      ...['a', 'b', 'c'].map((c) => ({
        ip,
        process: `probe:${c}`,
        kind: 'probe',
        status: 'ok',
        origin: `tcp://canary-${c}.example.org:443`,
        ts: NOW,
      })),
    ];
    expect(parseHeartbeatBody({ heartbeats }, NOW)).toMatchObject({ ok: true });
  });
});
