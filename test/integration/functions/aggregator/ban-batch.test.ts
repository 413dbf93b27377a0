import { randomBytes } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ban } from '../../../../functions/core/blocklist.js';
import type { AuditEvent } from '../../../../functions/core/events.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import type { BanChange } from '../../../../functions/store/ports.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import {
  diesBeforeClosingWindow,
  withFault,
} from '../../../helpers/faulty-client.js';
import { localEndpoint, localTable } from '../../../helpers/local-tables.js';

const NOW = Date.now();
const banOf = (n: number, since = NOW): Ban => ({
  ip: `192.0.2.${n}`,
  reason: 'connect failures 9/10 (90%) >= 50%',
  since,
  until: since + 3_600_000,
  manual: false,
  failRatio: 0.9,
  samples: 10,
  offense: 1,
  rule: 'fail-ratio',
});
const eventOf = (ban: Ban, type: 'ban' | 'release'): AuditEvent => ({
  type,
  at: new Date(NOW).toISOString(),
  ip: ban.ip,
  enforced: true,
  rule: 'fail-ratio',
  evidence: { failRatio: 0.9 },
});

/**
 * The real client, except that its first `conflicts` transactions are
 * cancelled the way DynamoDB cancels one that another transaction is writing
 * an item of (DynamoDB Local serialises transactions and never does).
 */
function conflictingClient(client: DynamoDBDocumentClient, conflicts: number) {
  const counted = { cancelled: 0 };
  const faulty = withFault(client, (command) => {
    if (!(command instanceof TransactWriteCommand)) return;
    if (counted.cancelled >= conflicts) return;
    counted.cancelled++;
    throw new TransactionCanceledException({
      message: 'Transaction cancelled, please refer cancellation reasons',
      $metadata: { httpStatusCode: 400 },
      CancellationReasons: (command.input.TransactItems ?? []).map((_, i) => ({
        Code: i === 0 ? 'TransactionConflict' : 'None',
      })),
    });
  });
  return { client: faulty, counted };
}

describe('ban changes applied in batches on DynamoDB Local', () => {
  const tableName = `relaywatch-bans-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  const bans = createBanStore({ client, tableName });
  const state = createStateStore({ client, tableName });
  const events = createEventStore({ client, tableName, eventTtlDays: 1 });

  beforeAll(async () => {
    await localTable(tableName);
  });
  afterAll(() => client.destroy());

  it('writes every ban with its offense and its events, leaves out the one already in force, and moves the version once before and once after the batch', async () => {
    // A ban in force already (another run, or an operator) on IP 7.
    const earlier = banOf(7, NOW - 60_000);
    await bans.changeBans([{ type: 'ban', ban: earlier }], NOW - 60_000);
    const versionBefore = (await bans.getVersion()).version;

    const wanted = Array.from({ length: 60 }, (_, n) => banOf(n + 1));
    const applied = await bans.changeBans(
      wanted.map(
        (ban): BanChange => ({
          type: 'ban',
          ban,
          also: [
            state.offenseItem(ban.ip, ban.since),
            ...events.eventItems(eventOf(ban, 'ban')),
          ],
        }),
      ),
      NOW,
    );

    expect(applied).toEqual(wanted.map((ban) => ban.ip !== '192.0.2.7'));
    const listed = await bans.listBansConsistent(NOW);
    expect(listed.map((ban) => ban.ip).sort()).toEqual(
      wanted.map((ban) => ban.ip).sort(),
    );
    // IP 7 keeps the ban it had.
    expect(listed.find((ban) => ban.ip === '192.0.2.7')?.since).toBe(
      earlier.since,
    );
    const offenses = await state.getOffenses(wanted.map((ban) => ban.ip));
    expect(offenses['192.0.2.1']).toEqual([NOW]);
    expect(offenses['192.0.2.60']).toEqual([NOW]);
    // The refused ban's offense and event are not written: they went with its ban.
    expect(offenses['192.0.2.7']).toBeUndefined();
    const recorded = await events.listEvents({
      since: NOW - 1,
      limit: 100,
      now: NOW,
    });
    expect(recorded.map((event) => event.ip).sort()).toEqual(
      wanted
        .filter((ban) => ban.ip !== '192.0.2.7')
        .map((ban) => ban.ip)
        .sort(),
    );
    expect(
      await events.listEvents({
        ip: '192.0.2.60',
        since: NOW - 1,
        limit: 10,
        now: NOW,
      }),
    ).toHaveLength(1);
    // 60 bans of 4 writes each: three transactions, and two version bumps in all; the window is closed.
    expect(await bans.getVersion()).toEqual({ version: versionBefore + 2 });
  });

  it('lifts only the bans still in force with the `until` the caller saw, together with their events', async () => {
    const kept = banOf(100);
    const lifted = banOf(101);
    const replaced = banOf(102);
    await bans.changeBans(
      [kept, lifted, replaced].map((ban) => ({ type: 'ban', ban })),
      NOW,
    );
    // An operator replaced IP 102's ban meanwhile: the lift decided on the old one must not remove it.
    await bans.putBan({ ...replaced, until: NOW + 7_200_000 }, NOW);

    const applied = await bans.changeBans(
      [lifted, replaced, banOf(103)].map(
        (ban): BanChange => ({
          type: 'lift',
          ip: ban.ip,
          until: ban.until,
          also: events.eventItems(eventOf(ban, 'release')),
        }),
      ),
      NOW + 1,
    );

    expect(applied).toEqual([true, false, false]);
    const listed = new Map(
      (await bans.listBansConsistent(NOW + 1)).map((ban) => [ban.ip, ban]),
    );
    expect(listed.has(kept.ip)).toBe(true);
    expect(listed.has(lifted.ip)).toBe(false);
    expect(listed.get(replaced.ip)?.until).toBe(NOW + 7_200_000);
    const releases = await events.listEvents({
      since: NOW - 1,
      limit: 200,
      now: NOW,
    });
    expect(
      releases.filter((event) => event.type === 'release').map((e) => e.ip),
    ).toEqual([lifted.ip]);
  });

  it('sends a transaction again when a concurrent writer cancelled it, and writes each change once', async () => {
    const conflicting = conflictingClient(client, 3);
    const store = createBanStore({ client: conflicting.client, tableName });
    const wanted = Array.from({ length: 30 }, (_, n) => banOf(n + 150));

    const applied = await store.changeBans(
      wanted.map(
        (ban): BanChange => ({
          type: 'ban',
          ban,
          also: [state.offenseItem(ban.ip, ban.since)],
        }),
      ),
      NOW,
    );

    expect(conflicting.counted.cancelled).toBe(3);
    expect(applied.every(Boolean)).toBe(true);
    const offenses = await state.getOffenses(wanted.map((ban) => ban.ip));
    expect(Object.values(offenses)).toEqual(wanted.map(() => [NOW]));
  });

  it('keeps at most transactionConcurrency transactions of a batch in flight (4 unless told)', async () => {
    const inFlight = { now: 0, most: 0 };
    const counting = new Proxy(client, {
      get(target, property, receiver) {
        if (property !== 'send') return Reflect.get(target, property, receiver);
        return async (command: unknown) => {
          const counted = command instanceof TransactWriteCommand;
          if (counted) inFlight.most = Math.max(inFlight.most, ++inFlight.now);
          try {
            return await (target.send as (c: unknown) => Promise<unknown>)(
              command,
            );
          } finally {
            if (counted) inFlight.now--;
          }
        };
      },
    });
    // 101 bans of 4 writes: 5 transactions, one more than the default in flight.
    const batchOf = (subnet: number) =>
      Array.from({ length: 101 }, (_, n): BanChange => {
        const ban = { ...banOf(0), ip: `198.51.${subnet}.${n}` };
        return {
          type: 'ban',
          ban,
          also: [
            state.offenseItem(ban.ip, ban.since),
            ...events.eventItems(eventOf(ban, 'ban')),
          ],
        };
      });
    const one = createBanStore({
      client: counting,
      tableName,
      transactionConcurrency: 1,
    });
    expect((await one.changeBans(batchOf(1), NOW)).every(Boolean)).toBe(true);
    expect(inFlight.most).toBe(1);

    inFlight.most = 0;
    const byDefault = createBanStore({ client: counting, tableName });
    expect((await byDefault.changeBans(batchOf(2), NOW)).every(Boolean)).toBe(
      true,
    );
    expect(inFlight.most).toBe(4);
  });

  it('leaves the change window open when the writer dies before closing it, and the next batch closes it', async () => {
    let wall = NOW;
    // The writer dies after its transactions: its last write (the close) never happens.
    const dying = diesBeforeClosingWindow(client);
    const store = createBanStore({
      client: dying,
      tableName,
      clock: () => wall,
    });
    const before = (await store.getVersion()).version;

    await expect(
      store.changeBans([{ type: 'ban', ban: banOf(200) }], NOW),
    ).rejects.toThrow('writer killed');

    const open = await store.getVersion();
    expect(open.version).toBe(before + 1);
    expect(open.changingUntil).toBeGreaterThan(wall + 120_000);
    expect(
      (await store.listBansConsistent(NOW)).some(
        (ban) => ban.ip === '192.0.2.200',
      ),
    ).toBe(true);
    // The next batch (the next run) opens a window of its own and closes it: the list settles.
    wall += 60_000;
    await bans.changeBans([{ type: 'ban', ban: banOf(201) }], NOW);
    expect(await bans.getVersion()).toEqual({ version: before + 3 });
  });
});
