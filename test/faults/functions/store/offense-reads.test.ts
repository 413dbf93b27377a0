import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { BatchGetCommandInput } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../../../../functions/store/errors.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import { settledWithTimers, TABLE_NAME } from '../../fake-table.js';

type Key = { pk: string; sk: string };

/**
 * A state store whose BatchGetItem is answered from offense items in memory,
 * handing back as UnprocessedKeys whatever `leaveUnprocessed(call, keys)`
 * picks, as DynamoDB does under throttling.
 */
function storeWithOffenses(
  offenses: Record<string, number[]>,
  leaveUnprocessed: (call: number, keys: Key[]) => Key[],
) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    }),
  );
  const mock = mockClient(client);
  const asked: number[] = [];
  mock.on(BatchGetCommand).callsFake(async (input: BatchGetCommandInput) => {
    const keys = (input.RequestItems?.[TABLE_NAME]?.Keys ?? []) as Key[];
    asked.push(keys.length);
    const unprocessed = leaveUnprocessed(asked.length, keys);
    const items = keys
      .filter((key) => !unprocessed.includes(key))
      .flatMap((key) => {
        const ip = key.pk.replace(/^OFFENSES#/, '');
        const starts = offenses[ip];
        return starts ? [{ ...key, ip, starts: new Set(starts) }] : [];
      });
    return {
      Responses: { [TABLE_NAME]: items },
      UnprocessedKeys: unprocessed.length
        ? { [TABLE_NAME]: { Keys: unprocessed } }
        : {},
    };
  });
  const store = createStateStore({ client, tableName: TABLE_NAME });
  return { store, asked };
}

/** getOffenses with the backoff sleeps fast-forwarded; its answer or its error. */
const offensesOf = (
  store: ReturnType<typeof createStateStore>,
  ips: string[],
) =>
  settledWithTimers(store.getOffenses(ips)) as Promise<
    Record<string, number[]> | Error
  >;

describe('offense reads under throttling (UnprocessedKeys)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const ips = Array.from({ length: 150 }, (_, n) => `198.51.100.${n}`);
  const offenses = Object.fromEntries(
    ips.filter((_, n) => n % 3 === 0).map((ip, n) => [ip, [n * 1_000, 10]]),
  );

  it('reads again what DynamoDB handed back and answers every offense, in order', async () => {
    const { store, asked } = storeWithOffenses(offenses, (call, keys) =>
      call <= 3 ? keys.slice(-5) : [],
    );
    const read = await offensesOf(store, ips);
    expect(read).toEqual(
      Object.fromEntries(
        Object.entries(offenses).map(([ip, starts]) => [
          ip,
          [...starts].sort((a, b) => a - b),
        ]),
      ),
    );
    // At most 100 keys a call, as BatchGetItem takes.
    expect(Math.max(...asked)).toBe(100);
  });

  it('fails with StoreUnavailableError, not a partial answer, when keys stay unprocessed', async () => {
    const { store, asked } = storeWithOffenses(offenses, (_call, keys) =>
      keys.slice(0, 1),
    );
    const read = await offensesOf(store, ips);
    expect(read).toBeInstanceOf(StoreUnavailableError);
    expect((read as Error).message).toMatch(/1 reads still unprocessed/);
    expect(asked.length).toBeLessThanOrEqual(12);
  });
});
