import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { backoffDelay } from '#contract/backoff';
import { mapBounded } from '../core/maps.js';
import { StoreUnavailableError } from './errors.js';

/** BatchWriteItem takes at most 25 requests per call. */
export const BATCH_WRITE_LIMIT = 25;
/** BatchGetItem takes at most 100 keys per call. */
const BATCH_GET_LIMIT = 100;
const MAX_ATTEMPTS = 6;
/** The first retry waits up to this; each further one up to twice as long. */
const FIRST_RETRY_MS = 100;
/** The last retry (the sixth attempt) waits up to this. */
const MAX_RETRY_MS = FIRST_RETRY_MS * 2 ** (MAX_ATTEMPTS - 2);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `items` in consecutive chunks of at most `size`. */
export function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size)
    chunks.push(items.slice(start, start + size));
  return chunks;
}

/**
 * Sends `pending` with `send` until DynamoDB hands nothing back (what it
 * leaves unprocessed under throttling), waiting before each retry with
 * exponential backoff and full jitter; throws StoreUnavailableError when
 * something is still unprocessed after MAX_ATTEMPTS (`what`: "writes", "reads").
 */
async function untilProcessed<T>(
  pending: T[],
  send: (pending: T[]) => Promise<T[]>,
  what: string,
): Promise<void> {
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > MAX_ATTEMPTS)
      throw new StoreUnavailableError(
        `${pending.length} ${what} still unprocessed after ${MAX_ATTEMPTS} attempts`,
      );
    if (attempt > 1)
      await sleep(
        backoffDelay({
          attempt: attempt - 2,
          minMs: FIRST_RETRY_MS,
          maxMs: MAX_RETRY_MS,
          random: Math.random,
          jitter: 'full',
        }),
      );
    pending = await send(pending);
  }
}

/**
 * Puts items in batches of 25, retrying UnprocessedItems (untilProcessed).
 * Puts are idempotent here (deterministic keys), so a retry never
 * double-counts.
 */
export async function putAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
  options: { concurrency?: number } = {},
): Promise<void> {
  type PutRequest = { PutRequest: { Item: Record<string, unknown> } };
  // One batch at a time by default: a request's rows stop at the first batch that cannot be written.
  // Large writes of the aggregator (state pages, events) keep a few in flight.
  await mapBounded(
    chunksOf(items, BATCH_WRITE_LIMIT),
    options.concurrency ?? 1,
    (batch) =>
      untilProcessed(
        batch.map((Item): PutRequest => ({ PutRequest: { Item } })),
        async (pending) => {
          const result = await client.send(
            new BatchWriteCommand({ RequestItems: { [tableName]: pending } }),
          );
          return (result.UnprocessedItems?.[tableName] ?? []) as PutRequest[];
        },
        'writes',
      ),
  );
}

/**
 * Gets the items of `keys` in batches of 100, `concurrency` calls in flight,
 * retrying UnprocessedKeys (untilProcessed). Keys without an item are absent
 * from the answer; keys still unprocessed fail the call, since an answer
 * missing items that exist would be taken for their absence.
 */
export async function getAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: { concurrency?: number } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  await mapBounded(
    chunksOf(keys, BATCH_GET_LIMIT),
    options.concurrency ?? 1,
    (batch) =>
      untilProcessed(
        batch,
        async (pending) => {
          const result = await client.send(
            new BatchGetCommand({
              RequestItems: { [tableName]: { Keys: pending } },
            }),
          );
          items.push(...(result.Responses?.[tableName] ?? []));
          return result.UnprocessedKeys?.[tableName]?.Keys ?? [];
        },
        'reads',
      ),
  );
  return items;
}
