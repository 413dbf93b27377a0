import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import type { Ban } from '../core/blocklist.js';
import { keys, TABLE } from './table.js';

export type RemovedBan = { ban: Ban; removedAt: number; byTtl: boolean };

/**
 * Bans that left the table and had already ended: the ends that TTL took
 * care of. In AWS a TTL delete is marked by userIdentity (the DynamoDB service
 * principal); DynamoDB Local leaves it out, so "removed after its end" is the
 * test both share. Lifts and early releases remove bans before their end and
 * record their own events.
 */
export function endedBansOf(records: readonly DynamoDBRecord[]): RemovedBan[] {
  const removed: RemovedBan[] = [];
  for (const record of records) {
    const image = record.dynamodb?.OldImage;
    if (!image || record.dynamodb?.NewImage) continue;
    const item = unmarshall(image as Record<string, AttributeValue>);
    if (item[TABLE.partitionKey] !== keys.banPartition()) continue;
    const { pk: _pk, sk: _sk, [TABLE.ttlAttribute]: _ttl, ...ban } = item;
    const removedAt = (record.dynamodb?.ApproximateCreationDateTime ?? Date.now() / 1000) * 1000;
    const byTtl = record.userIdentity?.principalId === 'dynamodb.amazonaws.com';
    if (byTtl || (ban as Ban).until <= removedAt) removed.push({ ban: ban as Ban, removedAt, byTtl });
  }
  return removed;
}
