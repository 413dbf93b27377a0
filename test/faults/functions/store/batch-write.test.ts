import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { putAll } from '../../../../functions/store/batch.js';
import { StoreUnavailableError } from '../../../../functions/store/errors.js';
import {
  fakeBatchTable,
  settledWithTimers,
  TABLE_NAME,
} from '../../fake-table.js';

const itemsOf = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    pk: `HB#202611241403#${i % 4}`,
    sk: `10.0.0.${i}#r:x`,
    n: i,
  }));

/** Runs putAll with the backoff sleeps fast-forwarded; resolves to the error, if any. */
const runPutAll = (
  table: ReturnType<typeof fakeBatchTable>,
  items: Record<string, unknown>[],
): Promise<unknown> =>
  settledWithTimers(putAll(table.client, TABLE_NAME, items));

describe('putAll under partial batch failures', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes every item exactly once when the first calls hand back unprocessed items', async () => {
    // Prepare: the first three calls leave their last 7 puts unprocessed.
    const table = fakeBatchTable({
      leaveUnprocessed: (call, requests) =>
        call <= 3 ? requests.slice(-7) : [],
    });
    const items = itemsOf(60);
    // Act
    const error = await runPutAll(table, items);
    // Assess
    expect(error).toBeUndefined();
    expect(table.items.size).toBe(60);
    expect([...table.writes.values()].every((count) => count === 1)).toBe(true);
    expect(table.calls).toBeGreaterThan(3);
  });

  it('retries only the unprocessed items, never the ones already written', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (call, requests) =>
        call === 1 ? requests.slice(0, 4) : [],
    });
    await runPutAll(table, itemsOf(10));
    expect(table.requestSizes).toEqual([10, 4]);
  });

  it('sends at most 25 puts per call', async () => {
    const table = fakeBatchTable();
    await runPutAll(table, itemsOf(101));
    expect(table.requestSizes).toEqual([25, 25, 25, 25, 1]);
    expect(table.items.size).toBe(101);
  });

  it('makes no call for no items', async () => {
    const table = fakeBatchTable();
    await runPutAll(table, []);
    expect(table.calls).toBe(0);
  });

  it('recovers when a single put stays unprocessed for five calls in a row', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (call, requests) =>
        call <= 5 ? requests.slice(0, 1) : [],
    });
    const error = await runPutAll(table, itemsOf(3));
    expect(error).toBeUndefined();
    expect(table.items.size).toBe(3);
  });

  it('gives up with StoreUnavailableError when items stay unprocessed', async () => {
    // Prepare: DynamoDB never takes the last put of any call.
    const table = fakeBatchTable({
      leaveUnprocessed: (_call, requests) => requests.slice(-1),
    });
    // Act
    const error = await runPutAll(table, itemsOf(5));
    // Assess
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).name).toBe('StoreUnavailableError');
    expect((error as Error).message).toMatch(/1 writes still unprocessed/);
    expect(table.items.size).toBe(4);
  });

  it('gives up after a bounded number of calls, not forever', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (_call, requests) => requests,
    });
    const error = await runPutAll(table, itemsOf(5));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(table.calls).toBeLessThanOrEqual(10);
  });

  it('stops at the first chunk that cannot be written and sends no later chunk', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (_call, requests) => requests,
    });
    await runPutAll(table, itemsOf(60));
    expect(table.requestSizes.every((size) => size === 25)).toBe(true);
    expect(table.items.size).toBe(0);
  });

  it('lets a throttling error from the client through with its name, so the API can answer 503', async () => {
    const table = fakeBatchTable({
      fail: () =>
        new ProvisionedThroughputExceededException({
          message: 'Rate exceeded',
          $metadata: {},
        }),
    });
    const error = await runPutAll(table, itemsOf(3));
    expect((error as Error).name).toBe(
      'ProvisionedThroughputExceededException',
    );
  });
});
