import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type {
  BatchWriteCommandInput,
  BatchWriteCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';

export const TABLE_NAME = 'relaywatch-faults';

type PutRequest = { PutRequest: { Item: Record<string, unknown> } };

/**
 * A document client whose BatchWriteItem is answered by an in-memory table.
 * `leaveUnprocessed(call, requests)` picks, per call (1-based), which put
 * requests DynamoDB "hands back" as UnprocessedItems, the way it does under
 * throttling; `fail(call)` may return an error to throw instead. Every put that
 * is applied is counted by key, so a test can tell "written once" from
 * "written twice" or "lost".
 */
export function fakeBatchTable(
  options: {
    leaveUnprocessed?: (call: number, requests: PutRequest[]) => PutRequest[];
    fail?: (call: number) => Error | undefined;
  } = {},
) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const mock = mockClient(client);
  const items = new Map<string, Record<string, unknown>>();
  const writes = new Map<string, number>();
  const requestSizes: number[] = [];
  let calls = 0;
  const keyOf = (item: Record<string, unknown>) => `${item.pk} ${item.sk}`;

  mock
    .on(BatchWriteCommand)
    .callsFake(
      async (
        input: BatchWriteCommandInput,
      ): Promise<Partial<BatchWriteCommandOutput>> => {
        calls++;
        const error = options.fail?.(calls);
        if (error) throw error;
        const requests = (input.RequestItems?.[TABLE_NAME] ??
          []) as PutRequest[];
        requestSizes.push(requests.length);
        const unprocessed = options.leaveUnprocessed?.(calls, requests) ?? [];
        for (const request of requests) {
          if (unprocessed.includes(request)) continue;
          const key = keyOf(request.PutRequest.Item);
          items.set(key, request.PutRequest.Item);
          writes.set(key, (writes.get(key) ?? 0) + 1);
        }
        return unprocessed.length
          ? { UnprocessedItems: { [TABLE_NAME]: unprocessed } }
          : { UnprocessedItems: {} };
      },
    );

  return {
    client,
    mock,
    /** Items in the table, by "pk sk". */
    items,
    /** How many times each key was put. */
    writes,
    /** Put requests per BatchWriteItem call. */
    requestSizes,
    get calls() {
      return calls;
    },
  };
}

/** An SDK-shaped service error: what the client throws for an error response. */
export function serviceError(name: string, message = 'injected fault'): Error {
  return Object.assign(new Error(message), {
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: 400 },
  });
}

/**
 * Runs the fake timers out while `promise` settles (a store's backoff sleeps
 * fast-forwarded): its value, or the error it failed with.
 */
export async function settledWithTimers<T>(
  promise: Promise<T>,
): Promise<T | unknown> {
  const settled = promise.catch((error: unknown) => error);
  await vi.runAllTimersAsync();
  return settled;
}
