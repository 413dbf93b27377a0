import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { StoreUnavailableError } from './errors.js';

/** BatchWriteItem takes at most 25 requests per call. */
const BATCH_WRITE_LIMIT = 25;
const MAX_ATTEMPTS = 6;
const BASE_DELAY_MS = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Puts items in batches of 25, retrying UnprocessedItems with exponential
 * backoff and full jitter (what DynamoDB hands back under throttling). Puts are
 * idempotent here (deterministic keys), so a retry never double-counts.
 */
export async function putAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
): Promise<void> {
  for (let start = 0; start < items.length; start += BATCH_WRITE_LIMIT) {
    let pending = items
      .slice(start, start + BATCH_WRITE_LIMIT)
      .map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > MAX_ATTEMPTS) {
        throw new StoreUnavailableError(`${pending.length} writes still unprocessed after ${MAX_ATTEMPTS} attempts`);
      }
      if (attempt > 1) await sleep(Math.random() * BASE_DELAY_MS * 2 ** attempt);
      const result = await client.send(
        new BatchWriteCommand({ RequestItems: { [tableName]: pending } }),
      );
      pending = (result.UnprocessedItems?.[tableName] ?? []) as typeof pending;
    }
  }
}
