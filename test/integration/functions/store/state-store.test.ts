import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketId } from '../../../../functions/core/minutes.js';
import type { IpEvidence } from '../../../../functions/core/policy.js';
import { emptyEvidence } from '../../../../functions/core/rules/evidence.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import type {
  AggregatorMemory,
  AggregatorState,
} from '../../../../functions/store/state-store.js';
import {
  createStateStore,
  StateFormatError,
} from '../../../../functions/store/state-store.js';
import { keys, TABLE } from '../../../../functions/store/table.js';
import { watchingPieceQueries } from '../../../helpers/faulty-client.js';
import { localEndpoint, localTable } from '../../../helpers/local-tables.js';

// Near now: pieces of a minute long past would be TTL-deleted while the test reads them.
const MINUTE = Math.floor(Date.now() / 60_000);

const evidence = (n: number): IpEvidence => ({
  ...emptyEvidence(
    `2001:db8:${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}::1`,
  ),
  samples: 120,
  ok: 118,
  connectFailed: 2,
  failRatio: 2 / 120,
  originErrors: 1,
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
    await localTable(tableName);
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
  /** The pieces stored in one partition, by sort key. */
  async function piecesIn(partition: string) {
    const result = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
        ExpressionAttributeValues: { ':pk': partition },
      }),
    );
    return new Map(
      (result.Items ?? []).map((item) => [String(item[TABLE.sortKey]), item]),
    );
  }

  /** A store on a client that notes the piece kinds (R, S, L, O, C) its queries read. */
  function watchedStore() {
    const watched = watchingPieceQueries(client);
    return {
      store: createStateStore({ client: watched.client, tableName }),
      queried: watched.queried,
    };
  }

  const withoutFleetView = ({
    reporting: _,
    ...memory
  }: AggregatorState): AggregatorMemory => memory;

  it('keeps the fleet view across a live pass without reading it', async () => {
    const minute = MINUTE + 10;
    const closing = stateOf(5_000, minute);
    expect(
      await createStateStore({ client, tableName }).advanceAggregatorState(
        closing,
      ),
    ).toEqual({ applied: true });

    // The aggregator after a cold start: its state without the fleet view, then a live pass.
    const { store: aggregator, queried } = watchedStore();
    const memory = await aggregator.getAggregatorState({
      consistent: true,
      fleetView: false,
    });
    expect(memory).toEqual(withoutFleetView(closing));
    expect(memory).not.toHaveProperty('reporting');
    const pass = {
      ...(memory as AggregatorMemory),
      reporting: 'unchanged' as const,
      lastPassAt: minute * 60_000 + 20_000,
      leases: { ...memory?.leases, '192.0.2.7': [minute * 60_000, 60, 1] },
    } as const;
    expect(await aggregator.advanceAggregatorState(pass)).toEqual({
      applied: true,
    });
    // A second pass by the same store, given back the very values it answered.
    const later = { ...pass, lastPassAt: minute * 60_000 + 40_000 };
    expect(await aggregator.advanceAggregatorState(later)).toEqual({
      applied: true,
    });
    expect(queried.sort()).toEqual(['C', 'L', 'O', 'S']);

    // The first pass wrote only the leases, the second nothing: the fleet view is read from where the closing minute put it.
    expect([
      ...(
        await piecesIn(keys.statePieces(bucketId(minute), pass.lastPassAt))
      ).keys(),
    ]).toEqual([keys.statePiece('L', 0)]);
    expect(
      (await piecesIn(keys.statePieces(bucketId(minute), later.lastPassAt)))
        .size,
    ).toBe(0);
    expect(await store.getAggregatorState({ consistent: false })).toEqual({
      ...later,
      reporting: closing.reporting,
    });

    // A store that has read nothing (as after a failed write) finds the stored fleet view through the progress item.
    const cold = createStateStore({ client, tableName });
    const third = { ...later, lastPassAt: minute * 60_000 + 50_000 };
    expect(await cold.advanceAggregatorState(third)).toEqual({
      applied: true,
    });
    expect(await store.getAggregatorState({ consistent: true })).toEqual({
      ...third,
      reporting: closing.reporting,
    });
  });

  it('answers the pages it wrote last without reading them, and reads them again once another store writes', async () => {
    const minute = MINUTE + 15;
    const { store: aggregator, queried } = watchedStore();
    const closing = stateOf(2_000, minute);
    expect(await aggregator.advanceAggregatorState(closing)).toEqual({
      applied: true,
    });

    // The next invocation of a warm process: the progress item names what this store wrote.
    const memory = await aggregator.getAggregatorState({
      consistent: true,
      fleetView: false,
    });
    expect(memory).toEqual(withoutFleetView(closing));
    expect(queried).toEqual([]);

    // Another run moves the state on: the pages named now are not the ones in hand.
    const moved = {
      ...closing,
      lastPassAt: minute * 60_000 + 30_000,
      lastSeen: { ...closing.lastSeen, '192.0.2.9': minute },
      capped: [],
    };
    expect(
      await createStateStore({ client, tableName }).advanceAggregatorState(
        moved,
      ),
    ).toEqual({ applied: true });
    expect(
      await aggregator.getAggregatorState({
        consistent: true,
        fleetView: false,
      }),
    ).toEqual(withoutFleetView(moved));
    expect(queried.sort()).toEqual(['C', 'L', 'O', 'S']);
  });

  it('reads its state again when another store moved only the fleet view, and keeps the new one', async () => {
    const minute = MINUTE + 17;
    const { store: aggregator, queried } = watchedStore();
    const closing = stateOf(1_000, minute);
    expect(await aggregator.advanceAggregatorState(closing)).toEqual({
      applied: true,
    });

    // Another store that read the same state writes a new fleet view and keeps the other kinds where they are.
    const other = createStateStore({ client, tableName });
    const read = (await other.getAggregatorState({
      consistent: true,
    })) as AggregatorState;
    const fleetView = stateOf(1_001, minute).reporting;
    const moved = {
      ...read,
      reporting: fleetView,
      lastPassAt: minute * 60_000 + 30_000,
    };
    expect(await other.advanceAggregatorState(moved)).toEqual({
      applied: true,
    });

    const memory = (await aggregator.getAggregatorState({
      consistent: true,
      fleetView: false,
    })) as AggregatorMemory;
    expect(memory).toEqual(withoutFleetView(moved));
    expect(queried.sort()).toEqual(['C', 'L', 'O', 'S']);
    // Its next pass keeps the fleet view that is stored now, not the one it wrote.
    expect(
      await aggregator.advanceAggregatorState({
        ...memory,
        reporting: 'unchanged',
        lastPassAt: minute * 60_000 + 40_000,
      }),
    ).toEqual({ applied: true });
    expect(
      (await store.getAggregatorState({ consistent: true }))?.reporting,
    ).toEqual(fleetView);
  });

  it('copies a kept fleet view forward, as stored, once its pages would expire too soon', async () => {
    const minute = MINUTE + 20;
    const closing = stateOf(5_000, minute);
    const writer = createStateStore({ client, tableName });
    expect(await writer.advanceAggregatorState(closing)).toEqual({
      applied: true,
    });
    const before = await piecesIn(keys.statePieces(bucketId(minute), 0));

    const aggregator = createStateStore({ client, tableName });
    const memory = (await aggregator.getAggregatorState({
      consistent: true,
      fleetView: false,
    })) as AggregatorMemory;
    // Live passes only, for more than a day (every minute given up on): the closing minute's pages have less than two days left.
    const pass = {
      ...memory,
      reporting: 'unchanged' as const,
      lastPassAt: (minute + 24 * 60 + 1) * 60_000,
    };
    expect(await aggregator.advanceAggregatorState(pass)).toEqual({
      applied: true,
    });
    const progress = await client.send(
      new GetCommand({ TableName: tableName, Key: progressKey }),
    );
    expect(progress.Item?.kept).toBeUndefined();
    const after = await piecesIn(
      keys.statePieces(bucketId(minute), pass.lastPassAt),
    );
    const fleetPages = [...before.keys()].filter((sk) => sk.startsWith('R#'));
    expect(fleetPages.length).toBeGreaterThan(1);
    for (const sk of fleetPages) {
      // The very bytes stored, with the new pages' expiry.
      expect(after.get(sk)?.d).toEqual(before.get(sk)?.d);
      expect(after.get(sk)?.[TABLE.ttlAttribute]).toBe(
        Math.floor(pass.lastPassAt / 1000) + 3 * 86_400,
      );
    }
    expect(await store.getAggregatorState({ consistent: true })).toEqual({
      ...pass,
      reporting: closing.reporting,
    });
  });

  it('names the damaged piece, and reads the rest of the state without the fleet view', async () => {
    const minute = MINUTE + 30;
    const closing = stateOf(3_000, minute);
    expect(
      await createStateStore({ client, tableName }).advanceAggregatorState(
        closing,
      ),
    ).toEqual({ applied: true });
    const partition = keys.statePieces(bucketId(minute), 0);
    const damage = (sk: string, page: unknown) =>
      client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            [TABLE.partitionKey]: partition,
            [TABLE.sortKey]: sk,
            v: 1,
            d: gzipSync(JSON.stringify(page)),
            [TABLE.ttlAttribute]: minute * 60 + 3 * 86_400,
          },
        }),
      );

    // Evidence without its failure ratio: the fleet view is refused, the aggregator's read is not concerned.
    await damage(keys.statePiece('R', 1), [{ ip: '192.0.2.1', samples: 3 }]);
    await expect(
      store.getAggregatorState({ consistent: false }),
    ).rejects.toThrow(
      new StateFormatError(
        `state piece ${keys.statePiece('R', 1)} is unreadable`,
      ),
    );
    expect(
      await store.getAggregatorState({ consistent: true, fleetView: false }),
    ).toEqual(withoutFleetView(closing));

    // A lease of two numbers, a last-seen minute that is text: each named
    // (by a store that has not read these pages yet: one that holds them
    // answers them without reading, see above).
    await damage(keys.statePiece('L', 0), [['192.0.2.1', [1, 2]]]);
    await expect(
      createStateStore({ client, tableName }).getAggregatorState({
        consistent: true,
        fleetView: false,
      }),
    ).rejects.toThrow(
      new StateFormatError(
        `state piece ${keys.statePiece('L', 0)} is unreadable`,
      ),
    );
    await damage(keys.statePiece('L', 0), [['192.0.2.1', [1, 2, 1]]]);
    await damage(keys.statePiece('S', 0), [['192.0.2.1', '29000000']]);
    await expect(
      createStateStore({ client, tableName }).getAggregatorState({
        consistent: true,
        fleetView: false,
      }),
    ).rejects.toThrow(
      new StateFormatError(
        `state piece ${keys.statePiece('S', 0)} is unreadable`,
      ),
    );
  });
});

describe('aggregator state written while other writes are under way', () => {
  const tableName = `relaywatch-state-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  /** Commands sent, by name; `answered` is called with each command's name once DynamoDB answered it. */
  const sent: string[] = [];
  let answered: (name: string) => void = () => undefined;
  const watched = new Proxy(client, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: object) => {
        const name = command.constructor.name;
        sent.push(name);
        const output = await (target.send as (c: unknown) => Promise<unknown>)(
          command,
        );
        answered(name);
        return output;
      };
    },
  });
  const store = createStateStore({ client: watched, tableName });
  const reader = createStateStore({ client, tableName });
  const lastMinute = async () =>
    (await reader.getAggregatorState({ consistent: true }))?.lastMinute;

  beforeAll(async () => {
    await localTable(tableName);
    await store.advanceAggregatorState(stateOf(50, MINUTE));
  });

  it('writes its pieces while `after` is under way, and its progress only once `after` is done', async () => {
    sent.length = 0;
    const piecesWritten = new Promise<void>((resolve) => {
      answered = (name) => {
        if (name === 'BatchWriteCommand') resolve();
      };
    });
    let finish: () => void = () => undefined;
    const after = new Promise<void>((resolve) => {
      finish = resolve;
    });

    const advancing = store.advanceAggregatorState(stateOf(60, MINUTE + 1), {
      after,
    });
    await piecesWritten;
    // A turn of the event loop: time enough to send the progress item, were it not waiting.
    await new Promise((resolve) => setImmediate(resolve));

    expect(sent).toEqual(['BatchWriteCommand']);
    expect(await lastMinute()).toBe(MINUTE);
    finish();
    expect(await advancing).toEqual({ applied: true });
    expect(sent).toEqual(['BatchWriteCommand', 'PutCommand']);
    expect(await lastMinute()).toBe(MINUTE + 1);
  });

  it('writes no progress when `after` fails, and fails with its error', async () => {
    const failure = new Error('the minute’s ban writes failed');
    const after = Promise.reject(failure);

    await expect(
      store.advanceAggregatorState(stateOf(70, MINUTE + 2), { after }),
    ).rejects.toBe(failure);
    expect(await lastMinute()).toBe(MINUTE + 1);
  });
});
