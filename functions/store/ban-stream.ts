import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import type { Ban } from '../core/blocklist.js';
import { banOfItem } from './ban-store.js';
import { StoredItemError } from './errors.js';
import { keys, TABLE } from './table.js';

export type RemovedBan = { ban: Ban; removedAt: number; byTtl: boolean };

/** The ends found in a batch of records, and the removed ban items that did not read as bans. */
export type EndedBans = { ended: RemovedBan[]; unreadable: StoredItemError[] };

/** Stream record times are rounded down to the minute (AWS and DynamoDB Local). */
const RECORD_TIME_PRECISION_MS = 60_000;

/**
 * Bans that left the table and had already ended: the ends that TTL took
 * care of. In AWS a TTL delete is marked by userIdentity (the DynamoDB service
 * principal). DynamoDB Local leaves that out, so there a removal counts when
 * the ban had ended by the (minute-rounded) record time and by `now`. Lifts and
 * early releases remove bans before their end and record their own events; one
 * lifted in its last minute may also be reported as an expiry locally.
 * A removed item that does not read as a ban is answered apart, not thrown:
 * a throw would have the stream retry the batch until its records expire.
 */
export function endedBansOf(
  records: readonly DynamoDBRecord[],
  now: number,
): EndedBans {
  const removed: RemovedBan[] = [];
  const unreadable: StoredItemError[] = [];
  for (const record of records) {
    const image = record.dynamodb?.OldImage;
    if (!image || record.dynamodb?.NewImage) continue;
    const item = unmarshall(image as Record<string, AttributeValue>);
    if (item[TABLE.partitionKey] !== keys.banPartition()) continue;
    let ban: Ban;
    try {
      ban = banOfItem(item);
    } catch (error) {
      if (!(error instanceof StoredItemError)) throw error;
      unreadable.push(error);
      continue;
    }
    const removedAt =
      (record.dynamodb?.ApproximateCreationDateTime ?? now / 1000) * 1000;
    const byTtl = record.userIdentity?.principalId === 'dynamodb.amazonaws.com';
    const { until } = ban;
    if (
      byTtl ||
      (until <= now && until < removedAt + RECORD_TIME_PRECISION_MS)
    ) {
      removed.push({ ban, removedAt, byTtl });
    }
  }
  return { ended: removed, unreadable };
}
