import { describe, expect, it } from 'vitest';
import { bucketId, minuteOf } from '../../../../functions/core/minutes.js';
import { keys, shardOf, TABLE } from '../../../../functions/store/table.js';

const sampleIps = Array.from(
  { length: 2000 },
  (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`,
);

describe('shardOf', () => {
  it('gives an ip the same shard every time', () => {
    for (const ip of ['192.0.2.1', '2001:db8::1', '::']) {
      expect(
        new Set(Array.from({ length: 5 }, () => shardOf(ip, 8))).size,
      ).toBe(1);
    }
  });

  it.each([1, 2, 4, 7, 64])(
    'keeps every shard of %i shards within [0, shards)',
    (shards) => {
      for (const ip of sampleIps) {
        const shard = shardOf(ip, shards);
        expect(Number.isInteger(shard)).toBe(true);
        expect(shard).toBeGreaterThanOrEqual(0);
        expect(shard).toBeLessThan(shards);
      }
    },
  );

  it('puts everything in shard 0 when there is one shard', () => {
    expect(new Set(sampleIps.map((ip) => shardOf(ip, 1)))).toEqual(
      new Set([0]),
    );
  });

  it('spreads many ips over every one of 4 shards, none holding more than half', () => {
    const perShard = [0, 0, 0, 0];
    for (const ip of sampleIps) perShard[shardOf(ip, 4)]! += 1;
    for (const count of perShard) {
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(sampleIps.length / 2);
    }
  });

  it('depends only on the ip text, so writers and readers agree without coordination', () => {
    // The same ip given as distinct string objects, as a writer and a reader would hold it.
    const a = ['192', '0', '2', '77'].join('.');
    const b = `192.0.2.${70 + 7}`;
    expect(shardOf(a, 16)).toBe(shardOf(b, 16));
  });
});

describe('key builders', () => {
  it('builds a heartbeat bucket key from the minute bucket and the shard', () => {
    const minute = minuteOf(Date.parse('2026-11-24T14:03:27Z'));
    expect(keys.heartbeatBucket(bucketId(minute), 2)).toBe('HB#202611241403#2');
  });

  it('tells a heartbeat bucket key, or its start, from the other partitions', () => {
    expect(
      keys.isHeartbeatBucket(keys.heartbeatBucket('202611241403', 3)),
    ).toBe(true);
    expect(keys.isHeartbeatBucket('HB#202611241403#')).toBe(true);
    expect(keys.isHeartbeatBucket(keys.banPartition())).toBe(false);
    expect(keys.isHeartbeatBucket(keys.banVersionPartition())).toBe(false);
  });

  it('builds a heartbeat row key that starts with its ip prefix', () => {
    const row = keys.heartbeatRow('2001:db8::1', 'b:agent-7-seq-42');
    expect(row).toBe('2001:db8::1#b:agent-7-seq-42');
    expect(row.startsWith(keys.heartbeatRowPrefix('2001:db8::1'))).toBe(true);
  });

  it('keys the continuation parts of a large tally under the same ip prefix', () => {
    const part = keys.heartbeatRow('192.0.2.1', 'b:agent-7', 2);
    expect(part).toBe('192.0.2.1#p2:b:agent-7');
    expect(part.startsWith(keys.heartbeatRowPrefix('192.0.2.1'))).toBe(true);
    expect(keys.heartbeatRow('192.0.2.1', 'b:agent-7', 0)).toBe(
      keys.heartbeatRow('192.0.2.1', 'b:agent-7'),
    );
  });

  it('never gives a part row the key of another write, whatever its batchId', () => {
    // batchIds are printable ASCII, so one could look like a part suffix; the
    // ingest handler makes writeIds "b:<batchId>" or "r:<uuid>".
    const parts = [1, 2, 3].map((part) =>
      keys.heartbeatRow('192.0.2.1', 'b:x', part),
    );
    const batchIds = ['x#1', 'x:1', 'p1:b:x', 'x', '#p1:b:x'];
    const others = [...batchIds.map((id) => `b:${id}`), 'r:p1'].map((writeId) =>
      keys.heartbeatRow('192.0.2.1', writeId),
    );
    for (const part of parts) expect(others).not.toContain(part);
  });

  it('does not let one ip prefix match the rows of a longer ip', () => {
    // 10.0.0.1 must not read the rows of 10.0.0.12
    expect(
      keys
        .heartbeatRow('10.0.0.12', 'r:x')
        .startsWith(keys.heartbeatRowPrefix('10.0.0.1')),
    ).toBe(false);
  });

  it.each<[string, string, string]>([
    ['ban partition', keys.banPartition(), 'BAN'],
    ['ban', keys.ban('192.0.2.1'), 'IP#192.0.2.1'],
    [
      'offenses partition',
      keys.offensesPartition('192.0.2.1'),
      'OFFENSES#192.0.2.1',
    ],
    ['offenses', keys.offenses(), 'OFFENSES'],
    ['state partition', keys.statePartition(), 'STATE'],
    ['aggregator state', keys.aggregatorState(), 'AGGREGATOR'],
    ['event day', keys.eventDay('20261124'), 'EVT#20261124'],
    [
      'event',
      keys.event('2026-11-24T14:03:10.000Z', '192.0.2.1', 'ban'),
      '2026-11-24T14:03:10.000Z#192.0.2.1#ban',
    ],
    ['events of an ip', keys.eventsOfIp('192.0.2.1'), 'EVTIP#192.0.2.1'],
  ])('builds the %s key', (_name, key, expected) => {
    expect(key).toBe(expected);
  });

  it('gives every entity partition a distinct prefix, so no two entities share a partition', () => {
    const partitions = [
      keys.heartbeatBucket('202611241403', 0),
      keys.banPartition(),
      keys.offensesPartition('192.0.2.1'),
      keys.statePartition(),
      keys.eventDay('20261124'),
      keys.eventsOfIp('192.0.2.1'),
    ];
    const prefixes = partitions.map((pk) => pk.split('#')[0]);
    expect(new Set(prefixes).size).toBe(partitions.length);
  });

  it('reads back the count of a shard-count marker, which sorts before every row of its shard', () => {
    expect(keys.shardCountOf(keys.shardCount(6))).toBe(6);
    expect(keys.shardCountOf(`${keys.shardCountPrefix()}many`)).toBeNaN();
    for (const ip of ['0.0.0.0', '192.0.2.1', '2001:db8::1', '::1']) {
      const row = keys.heartbeatRow(ip, 'b:batch');
      expect(keys.shardCountOf(row)).toBeUndefined();
      expect(keys.shardCount(64) < row).toBe(true);
    }
  });

  it('names the key and TTL attributes the stores write', () => {
    expect(TABLE).toMatchObject({
      partitionKey: 'pk',
      sortKey: 'sk',
      ttlAttribute: 'expiresAt',
    });
  });
});
