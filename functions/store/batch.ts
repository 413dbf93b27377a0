import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { backoffDelay } from '#contract/backoff';
import { mapBounded } from '../core/maps.js';
import { StoreUnavailableError } from './errors.js';

/** BatchWriteItem takes at most 25 requests per call. */
const BATCH_WRITE_LIMIT = 25;
/** BatchGetItem takes at most 100 keys per call. */
const BATCH_GET_LIMIT = 100;
const MAX_ATTEMPTS = 6;
/** The first retry waits up to this; each further one up to twice as long. */
const FIRST_RETRY_MS = 100;
/** The last retry (the sixth attempt) waits up to this. */
const MAX_RETRY_MS = FIRST_RETRY_MS * 2 ** (MAX_ATTEMPTS - 2);

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
  options: { concurrency?: number } = {},
): Promise<void> {
  const batches: Record<string, unknown>[][] = [];
  for (let start = 0; start < items.length; start += BATCH_WRITE_LIMIT)
    batches.push(items.slice(start, start + BATCH_WRITE_LIMIT));
  // One batch at a time by default: a request's rows stop at the first batch that cannot be written.
  // Large writes of the aggregator (state pages, events) keep a few in flight.
  await mapBounded(batches, options.concurrency ?? 1, (batch) =>
    putBatch(client, tableName, batch),
  );
}

/** The wait before attempt `attempt` (2 and on): exponential, full jitter. */
const retryDelay = (attempt: number) =>
  backoffDelay({
    attempt: attempt - 2,
    minMs: FIRST_RETRY_MS,
    maxMs: MAX_RETRY_MS,
    random: Math.random,
    jitter: 'full',
  });

/**
 * Gets the items of `keys` in batches of 100, `concurrency` calls in flight,
 * retrying UnprocessedKeys with exponential backoff and full jitter as putAll
 * retries its writes. Keys without an item are absent from the answer. Throws
 * StoreUnavailableError when keys are still unprocessed after MAX_ATTEMPTS:
 * an answer missing items that exist would be taken for their absence.
 */
export async function getAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: { concurrency?: number } = {},
): Promise<Record<string, unknown>[]> {
  const batches: Record<string, unknown>[][] = [];
  for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT)
    batches.push(keys.slice(start, start + BATCH_GET_LIMIT));
  const items: Record<string, unknown>[] = [];
  await mapBounded(batches, options.concurrency ?? 1, async (batch) => {
    let pending = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > MAX_ATTEMPTS)
        throw new StoreUnavailableError(
          `${pending.length} reads still unprocessed after ${MAX_ATTEMPTS} attempts`,
        );
      if (attempt > 1) await sleep(retryDelay(attempt));
      const result = await client.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending } },
        }),
      );
      items.push(...(result.Responses?.[tableName] ?? []));
      pending = result.UnprocessedKeys?.[tableName]?.Keys ?? [];
    }
  });
  return items;
}

async function putBatch(
  client: DynamoDBDocumentClient,
  tableName: string,
  batch: Record<string, unknown>[],
): Promise<void> {
  let pending = batch.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > MAX_ATTEMPTS) {
      throw new StoreUnavailableError(
        `${pending.length} writes still unprocessed after ${MAX_ATTEMPTS} attempts`,
      );
    }
    if (attempt > 1) await sleep(retryDelay(attempt));
    const result = await client.send(
      new BatchWriteCommand({ RequestItems: { [tableName]: pending } }),
    );
    pending = (result.UnprocessedItems?.[tableName] ?? []) as typeof pending;
  }
}
