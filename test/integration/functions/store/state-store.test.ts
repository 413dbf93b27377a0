import { randomBytes } from 'node:crypto';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketId } from '../../../../functions/core/minutes.js';
import type { IpEvidence } from '../../../../functions/core/policy.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import type { AggregatorState } from '../../../../functions/store/state-store.js';
import {
  createStateStore,
  StateFormatError,
} from '../../../../functions/store/state-store.js';
import { keys, TABLE } from '../../../../functions/store/table.js';
import { ensureTable } from '../../../../infra/local/table.js';
import { localEndpoint } from '../../../helpers/status-center.js';

// Near now: pieces of a minute long past would be TTL-deleted while the test reads them.
const MINUTE = Math.floor(Date.now() / 60_000);

const evidence = (n: number): IpEvidence => ({
  ip: `2001:db8:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`,
  samples: 120,
  ok: 118,
  connectFailed: 2,
  failRatio: 2 / 120,
  excusedFailures: 0,
  uncorroboratedFailures: 0,
  lateFailures: 0,
  originErrors: 1,
  errors: 0,
  origins: 57,
});

function stateOf(ips: number, minute = MINUTE): AggregatorState {
  const reporting = Array.from({ length: ips }, (_, n) => evidence(n));
  return {
    lastMinute: minute,
    reporting,
    lastSeen: Object.fromEntries(
      reporting.map((e, n) => [e.ip, minute - (n % 30)]),
    ),
    leases: Object.fromEntries(
      reporting
        .slice(0, 100)
        .map((e, n) => [e.ip, [minute * 60_000 - n * 1000, 60, 1] as const]),
    ),
    fleetSilent: false,
    outages: ['rtmp://origin-z.example.net'],
    fleetWide: false,
    capInForce: true,
    capped: reporting.slice(0, 3).map((e) => e.ip),
  };
}

describe('aggregator state on DynamoDB Local', () => {
  const tableName = `relaywatch-state-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  const store = createStateStore({ client, tableName });
  const progressKey = {
    [TABLE.partitionKey]: keys.statePartition(),
    [TABLE.sortKey]: keys.aggregatorState(),
  };

  beforeAll(async () => {
    await ensureTable({
      endpoint: localEndpoint(),
      region: 'us-east-1',
      tableName,
    });
  });
  afterAll(() => client.destroy());

  it('reads the single state item of before the split (v1), then writes the split state over it', async () => {
    const v1 = stateOf(5, MINUTE - 10);
    await client.send(
      new PutCommand({
        TableName: tableName,
        Item: { ...progressKey, lastMinute: v1.lastMinute, state: v1 },
      }),
    );
    expect(await store.getAggregatorState({ consistent: true })).toEqual(v1);
    expect(await store.advanceAggregatorState(stateOf(5, MINUTE - 9))).toEqual({
      applied: true,
    });
    expect(
      (await store.getAggregatorState({ consistent: true }))?.lastMinute,
    ).toBe(MINUTE - 9);
  });

  it('keeps every item of a 20,000-IP state under 64 KB and reads it back whole', async () => {
    const state = stateOf(20_000);
    expect(await store.advanceAggregatorState(state)).toEqual({
      applied: true,
    });
    const pieces = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: {
          ':pk': keys.statePieces(bucketId(MINUTE), 0),
        },
      }),
    );
    expect(pieces.Items?.length).toBeGreaterThan(4);
    for (const item of pieces.Items ?? [])
      expect((item.d as Uint8Array).length).toBeLessThan(64 * 1024);
    expect(await store.getAggregatorState({ consistent: true })).toEqual(state);
  });

  it('moves forward by pass time within a minute, and not back', async () => {
    const pass = {
      ...stateOf(20_000),
      lastPassAt: MINUTE * 60_000 + 30_000,
      fleetSilent: true,
    };
    expect(await store.advanceAggregatorState(pass)).toEqual({ applied: true });
    expect(
      await store.advanceAggregatorState({
        ...pass,
        lastPassAt: MINUTE * 60_000 + 10_000,
      }),
    ).toEqual({ applied: false });
    expect(await store.getAggregatorState({ consistent: true })).toEqual(pass);
  });

  it('only moves forward: an older minute does not overwrite newer progress', async () => {
    expect(await store.advanceAggregatorState(stateOf(3, MINUTE - 1))).toEqual({
      applied: false,
    });
    expect(
      (await store.getAggregatorState({ consistent: true }))?.lastMinute,
    ).toBe(MINUTE);
  });

  it('moves past a minute and keeps the pieces of the last one decided', async () => {
    expect(await store.skipMinute(MINUTE + 1)).toEqual({ applied: true });
    const memory = await store.getAggregatorState({ consistent: true });
    expect(memory?.lastMinute).toBe(MINUTE + 1);
    expect(Object.keys(memory?.lastSeen ?? {})).toHaveLength(20_000);
    expect(memory?.outages).toEqual(['rtmp://origin-z.example.net']);
  });

  it('refuses a state with a page missing instead of serving part of it', async () => {
    // The last-seen pages live where the progress item says: with the state's pieces, or kept from an earlier state.
    const progress = await client.send(
      new GetCommand({ TableName: tableName, Key: progressKey }),
    );
    await client.send(
      new DeleteCommand({
        TableName: tableName,
        Key: {
          [TABLE.partitionKey]:
            progress.Item?.kept?.lastSeen ?? progress.Item?.pieces,
          [TABLE.sortKey]: keys.statePiece('S', 0),
        },
      }),
    );
    await expect(
      store.getAggregatorState({ consistent: true }),
    ).rejects.toThrow(StateFormatError);
  });

  it('writes again only the kinds that changed; the rest is read from where it was kept', async () => {
    const other = createStateStore({ client, tableName });
    const minute = MINUTE + 3;
    const closing = stateOf(20_000, minute - 1);
    // A store writing its first state, after a fresh start, writes every kind.
    expect(await other.advanceAggregatorState(closing)).toEqual({
      applied: true,
    });
    const pass = {
      ...closing,
      lastPassAt: minute * 60_000 - 20_000,
      leases: { ...closing.leases, '192.0.2.7': [minute * 60_000, 60, 1] },
    } satisfies AggregatorState;
    // Written a second time by another store (as after a cold start): it reads the state first.
    const next = createStateStore({ client, tableName });
    await next.getAggregatorState({ consistent: true });
    expect(await next.advanceAggregatorState(pass)).toEqual({ applied: true });
    const written = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: {
          ':pk': keys.statePieces(bucketId(minute - 1), pass.lastPassAt),
        },
      }),
    );
    expect(
      (written.Items ?? []).map((item) => String(item[TABLE.sortKey])),
    ).toEqual([keys.statePiece('L', 0)]);
    expect(await next.getAggregatorState({ consistent: true })).toEqual(pass);
    expect(await store.getAggregatorState({ consistent: true })).toEqual(pass);
  });
});
