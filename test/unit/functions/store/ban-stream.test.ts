import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import type { Ban } from '../../../../functions/core/blocklist.js';
import { endedBansOf } from '../../../../functions/store/ban-stream.js';
import { keys, TABLE } from '../../../../functions/store/table.js';

const NOW = Date.UTC(2026, 11, 1, 10, 30);

const ban: Ban = {
  ip: '192.0.2.9',
  reason: 'connect failures',
  since: NOW - 3_600_000,
  until: NOW - 60_000,
  manual: false,
  failRatio: 0.8,
  samples: 30,
  offense: 1,
  rule: 'fail-ratio',
};

/** A REMOVE record of a ban item, the way the table stream delivers it after a TTL delete. */
const removal = (item: Record<string, unknown>): DynamoDBRecord => ({
  eventName: 'REMOVE',
  userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' },
  dynamodb: {
    ApproximateCreationDateTime: NOW / 1000,
    OldImage: marshall(item) as Record<string, AttributeValue> as never,
  },
});

const banItem = (fields: Record<string, unknown>) => ({
  [TABLE.partitionKey]: keys.banPartition(),
  [TABLE.sortKey]: keys.ban(String(fields.ip)),
  [TABLE.ttlAttribute]: Math.ceil(NOW / 1000),
  ...fields,
});

describe('endedBansOf', () => {
  it('answers the ban of a removed item without its stored fields, with or without a version', () => {
    // Prepare
    const records = [
      removal(banItem({ ...ban, v: 1 })),
      removal(banItem({ ...ban, ip: '192.0.2.10' })),
    ];
    // Act
    const { ended, unreadable } = endedBansOf(records, NOW);
    // Assess
    expect(ended.map((removed) => removed.ban)).toEqual([
      ban,
      { ...ban, ip: '192.0.2.10' },
    ]);
    expect(unreadable).toEqual([]);
  });

  it('answers a removed item that does not read as a ban apart, naming its key and field, instead of throwing', () => {
    // Prepare
    const records = [
      removal(banItem({ ...ban, ip: '192.0.2.11', until: 'soon' })),
      removal(banItem(ban)),
    ];
    // Act
    const { ended, unreadable } = endedBansOf(records, NOW);
    // Assess
    expect(ended.map((removed) => removed.ban.ip)).toEqual([ban.ip]);
    expect(unreadable).toHaveLength(1);
    expect(unreadable[0]?.key).toEqual({ pk: 'BAN', sk: 'IP#192.0.2.11' });
    expect(unreadable[0]?.field).toBe('until');
  });
});
