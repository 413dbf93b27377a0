import { randomBytes } from 'node:crypto';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ban } from '../../../../functions/core/blocklist.js';
import type { AuditEvent } from '../../../../functions/core/events.js';
import type { LogFields } from '../../../../functions/log.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createBatchStore } from '../../../../functions/store/batch-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { StoredItemError } from '../../../../functions/store/errors.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import {
  forEachQueryPage,
  queryItems,
} from '../../../../functions/store/query.js';
import { createRevocationStore } from '../../../../functions/store/revocation-store.js';
import { keys, TABLE } from '../../../../functions/store/table.js';
import { localEndpoint, localTable } from '../../../helpers/local-tables.js';

// Bans end well after the test, so DynamoDB Local's TTL sweep never takes one away.
const NOW = Date.now();
const HOUR_MS = 3_600_000;

const banOf = (ip: string, overrides: Partial<Ban> = {}): Ban => ({
  ip,
  reason: 'connect failures',
  since: NOW - 60_000,
  until: NOW + HOUR_MS,
  manual: false,
  failRatio: 0.9,
  samples: 40,
  offense: 1,
  rule: 'fail-ratio',
  ...overrides,
});

/** A ban item as the store wrote it before items carried a version. */
const unversionedBanItem = (ban: Ban) => ({
  [TABLE.partitionKey]: keys.banPartition(),
  [TABLE.sortKey]: keys.ban(ban.ip),
  [TABLE.ttlAttribute]: Math.ceil(ban.until / 1000),
  ...ban,
});

/** Captures the warnings a store writes about the items it leaves out. */
function warnings() {
  const lines: Array<{ message: string; fields: LogFields | undefined }> = [];
  return {
    lines,
    log: {
      warn: (message: string, fields?: LogFields) => {
        lines.push({ message, fields });
      },
    },
  };
}

/** The StoredItemError a promise rejects with (fails the test when it resolves or rejects otherwise). */
async function storedItemErrorOf(
  promise: Promise<unknown>,
): Promise<StoredItemError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(StoredItemError);
  return error as StoredItemError;
}

describe('stored items are parsed on read (DynamoDB Local)', () => {
  const tableName = `relaywatch-items-${randomBytes(6).toString('hex')}`;
  const client = createDocumentClient({
    region: 'us-east-1',
    endpoint: localEndpoint(),
  });
  const put = (item: Record<string, unknown>) =>
    client.send(new PutCommand({ TableName: tableName, Item: item }));

  beforeAll(async () => {
    await localTable(tableName);
  });
  afterAll(() => client.destroy());

  describe('bans', () => {
    it('writes bans with v: 1 and reads them back without the stored fields', async () => {
      // Prepare
      const bans = createBanStore({ client, tableName });
      const ban = banOf('192.0.2.1');
      // Act
      await bans.changeBans([{ type: 'ban', ban }], NOW);
      const stored = await client.send(
        new GetCommand({
          TableName: tableName,
          Key: {
            [TABLE.partitionKey]: keys.banPartition(),
            [TABLE.sortKey]: keys.ban(ban.ip),
          },
        }),
      );
      // Assess
      expect(stored.Item?.v).toBe(1);
      expect(await bans.getBan(ban.ip)).toEqual(ban);
    });

    it('reads a ban item written before items had a version as version 1', async () => {
      // Prepare
      const bans = createBanStore({ client, tableName });
      const ban = banOf('192.0.2.2');
      await put(unversionedBanItem(ban));
      // Act
      const read = await bans.getBan(ban.ip);
      const listed = await bans.listBans(NOW);
      // Assess
      expect(read).toEqual(ban);
      expect(listed).toContainEqual(ban);
    });

    it('refuses a damaged ban item on a single read with a StoredItemError naming the key and the field', async () => {
      // Prepare
      const bans = createBanStore({ client, tableName });
      await put({ ...unversionedBanItem(banOf('192.0.2.3')), offense: 'one' });
      // Act
      const error = await storedItemErrorOf(bans.getBan('192.0.2.3'));
      // Assess
      expect(error.key).toEqual({ pk: 'BAN', sk: 'IP#192.0.2.3' });
      expect(error.field).toBe('offense');
      expect(error.message).toContain('BAN / IP#192.0.2.3');
      expect(error.message).toContain('offense');
    });

    it('leaves a damaged ban out of the list and warns naming its key and field, listing the others', async () => {
      // Prepare
      const { lines, log } = warnings();
      const bans = createBanStore({ client, tableName, log });
      const good = banOf('192.0.2.4');
      await put(unversionedBanItem(good));
      await put({ ...unversionedBanItem(banOf('192.0.2.5')), reason: 7 });
      // Act
      const listed = await bans.listBansConsistent(NOW);
      // Assess
      expect(listed).toContainEqual(good);
      expect(listed.map((ban) => ban.ip)).not.toContain('192.0.2.5');
      expect(lines).toContainEqual({
        message: 'unreadable stored item left out',
        fields: expect.objectContaining({
          pk: 'BAN',
          sk: 'IP#192.0.2.5',
          field: 'reason',
        }),
      });
    });

    it('refuses a ban item of a version it does not know, naming the field v', async () => {
      // Prepare
      const bans = createBanStore({ client, tableName });
      await put({ ...unversionedBanItem(banOf('192.0.2.6')), v: 2 });
      // Act
      const error = await storedItemErrorOf(bans.getBan('192.0.2.6'));
      // Assess
      expect(error.field).toBe('v');
    });

    it('refuses a ban list version that is not a number', async () => {
      // Prepare
      const versionTable = `${tableName}-version`;
      await localTable(versionTable);
      const bans = createBanStore({ client, tableName: versionTable });
      await client.send(
        new PutCommand({
          TableName: versionTable,
          Item: {
            [TABLE.partitionKey]: keys.banVersionPartition(),
            [TABLE.sortKey]: keys.banVersion(),
            version: 'seven',
          },
        }),
      );
      // Act
      const error = await storedItemErrorOf(bans.getVersion());
      // Assess
      expect(error.key).toEqual({ pk: 'BANVERSION', sk: 'BANVERSION' });
      expect(error.field).toBe('version');
    });
  });

  describe('events', () => {
    const eventOf = (ip: string, at: string): AuditEvent => ({
      type: 'ban',
      at,
      ip,
      minute: '202612011030',
      enforced: true,
      rule: 'fail-ratio',
      evidence: { failRatio: 0.9 },
    });
    const eventItem = (event: AuditEvent) => ({
      [TABLE.partitionKey]: keys.eventsOfIp(event.ip ?? '-'),
      [TABLE.sortKey]: keys.event(event.at, event.ip ?? '-', event.type),
      event,
    });

    it('reads events written before items had a version, and leaves out a damaged one with a warning', async () => {
      // Prepare
      const { lines, log } = warnings();
      const events = createEventStore({
        client,
        tableName,
        eventTtlDays: 30,
        log,
      });
      const ip = '198.51.100.1';
      const older = eventOf(ip, new Date(NOW - 2000).toISOString());
      const newer = eventOf(ip, new Date(NOW - 1000).toISOString());
      await put(eventItem(older));
      await put(eventItem(newer));
      const damaged = eventItem(
        eventOf(ip, new Date(NOW - 1500).toISOString()),
      );
      await put({ ...damaged, event: { ...damaged.event, type: 'nonsense' } });
      // Act
      const listed = await events.listEvents({
        ip,
        since: NOW - 60_000,
        limit: 10,
        now: NOW,
      });
      // Assess
      expect(listed).toEqual([newer, older]);
      expect(lines).toContainEqual({
        message: 'unreadable stored item left out',
        fields: expect.objectContaining({
          pk: damaged[TABLE.partitionKey],
          sk: damaged[TABLE.sortKey],
          field: 'event.type',
        }),
      });
    });

    it('writes events with v: 1 and reads them back as they were put', async () => {
      // Prepare
      const events = createEventStore({ client, tableName, eventTtlDays: 30 });
      const event = eventOf('198.51.100.2', new Date(NOW).toISOString());
      // Act
      await events.putEvents([event]);
      const stored = await client.send(
        new GetCommand({
          TableName: tableName,
          Key: {
            [TABLE.partitionKey]: keys.eventsOfIp('198.51.100.2'),
            [TABLE.sortKey]: keys.event(event.at, '198.51.100.2', 'ban'),
          },
        }),
      );
      // Assess
      expect(stored.Item?.v).toBe(1);
      expect(
        await events.listEvents({
          ip: '198.51.100.2',
          since: NOW - 60_000,
          limit: 10,
          now: NOW,
        }),
      ).toEqual([event]);
    });
  });

  describe('revocations', () => {
    it('reads a revocation written before items had a version, and fails the whole read on a damaged one', async () => {
      // Prepare: a table of its own, since the revocations are one partition read whole.
      const revocationTable = `${tableName}-revoked`;
      await localTable(revocationTable);
      const revocations = createRevocationStore({
        client,
        tableName: revocationTable,
      });
      const putRevocation = (item: Record<string, unknown>) =>
        client.send(
          new PutCommand({
            TableName: revocationTable,
            Item: {
              [TABLE.partitionKey]: keys.revocationPartition(),
              [TABLE.sortKey]: keys.revocation(String(item.ip)),
              ...item,
            },
          }),
        );
      await putRevocation({ ip: '203.0.113.1', before: NOW, actor: 'admin' });
      await revocations.revoke({
        ip: '203.0.113.2',
        before: NOW + 1,
        actor: 'admin',
      });
      // Act
      const before = await revocations.listRevocations();
      await putRevocation({ ip: '203.0.113.3', before: 'yesterday' });
      const error = await storedItemErrorOf(revocations.listRevocations());
      // Assess
      expect(before).toEqual(
        new Map([
          ['203.0.113.1', NOW],
          ['203.0.113.2', NOW + 1],
        ]),
      );
      expect(error.key).toEqual({ pk: 'REVOKED', sk: 'IP#203.0.113.3' });
      expect(error.field).toBe('before');
    });
  });

  describe('batch markers', () => {
    const markerItem = (scope: string, batchId: string) => ({
      [TABLE.partitionKey]: keys.batchMarker(scope, batchId),
      [TABLE.sortKey]: keys.batchMarkerSort(),
    });

    it('takes a marker written before items had a version as the first arrival of a repeat', async () => {
      // Prepare
      const batches = createBatchStore({ client, tableName, ttlHours: 1 });
      await put({
        ...markerItem('fleet', 'old-1'),
        digest: 'abc',
        receivedAt: NOW - 5000,
      });
      // Act
      const claim = await batches.claim({
        scope: 'fleet',
        batchId: 'old-1',
        digest: 'abc',
        receivedAt: NOW,
      });
      // Assess
      expect(claim).toEqual({ status: 'repeat', receivedAt: NOW - 5000 });
    });

    it('refuses a damaged marker with a StoredItemError rather than calling the batch a conflict', async () => {
      // Prepare
      const batches = createBatchStore({ client, tableName, ttlHours: 1 });
      await put({ ...markerItem('fleet', 'bad-1'), digest: 'abc' });
      // Act
      const error = await storedItemErrorOf(
        batches.claim({
          scope: 'fleet',
          batchId: 'bad-1',
          digest: 'abc',
          receivedAt: NOW,
        }),
      );
      // Assess
      expect(error.key).toEqual({ pk: 'BATCH#fleet#bad-1', sk: 'BATCH' });
      expect(error.field).toBe('receivedAt');
    });
  });

  describe('paginated queries', () => {
    const pageItem = (pk: string, n: number, extra = {}) => ({
      [TABLE.partitionKey]: pk,
      [TABLE.sortKey]: String(n).padStart(4, '0'),
      n,
      ...extra,
    });
    const queryOf = (pk: string) => ({
      TableName: tableName,
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': TABLE.partitionKey },
      ExpressionAttributeValues: { ':pk': pk },
    });
    /** The partition's items whose n is 1, 4, 9 or 12: most pages of a small Limit come back empty. */
    const oneFourNineTwelveOf = (pk: string) => {
      const query = queryOf(pk);
      return {
        ...query,
        FilterExpression: '#n IN (:a, :b, :c, :d)',
        ExpressionAttributeNames: {
          ...query.ExpressionAttributeNames,
          '#n': 'n',
        },
        ExpressionAttributeValues: {
          ...query.ExpressionAttributeValues,
          ':a': 1,
          ':b': 4,
          ':c': 9,
          ':d': 12,
        },
      };
    };

    /** A client that notes the Limit each Query it sends asks for. */
    const limitsAsked = () => {
      const asked = createDocumentClient({
        region: 'us-east-1',
        endpoint: localEndpoint(),
      });
      const limits: unknown[] = [];
      asked.middlewareStack.add(
        (next) => async (args) => {
          limits.push((args.input as { Limit?: number }).Limit);
          return next(args);
        },
        { step: 'initialize' },
      );
      return { asked, limits };
    };

    it('reads every page of a partition larger than one 1 MB page', async () => {
      // Prepare: 15 items of 100 KB, so DynamoDB answers in at least two pages.
      const filler = 'x'.repeat(100_000);
      for (let n = 0; n < 15; n++)
        await put(pageItem('PAGES#large', n, { filler }));
      // Act
      const items = await queryItems(client, queryOf('PAGES#large'));
      // Assess
      expect(items.map((item) => item.n)).toEqual(
        Array.from({ length: 15 }, (_, n) => n),
      );
    });

    it('stops a bounded query at its limit across filtered pages', async () => {
      // Prepare: with a filter, a page of Limit n evaluates n items but
      // returns only those that pass, so the limit takes several pages.
      for (let n = 0; n < 15; n++) await put(pageItem('PAGES#filtered', n));
      const counted = createDocumentClient({
        region: 'us-east-1',
        endpoint: localEndpoint(),
      });
      let scanned = 0;
      counted.middlewareStack.add(
        (next) => async (args) => {
          const result = await next(args);
          scanned +=
            (result.output as { ScannedCount?: number }).ScannedCount ?? 0;
          return result;
        },
        { step: 'initialize' },
      );
      // Act
      const items = await queryItems(
        counted,
        oneFourNineTwelveOf('PAGES#filtered'),
        { limit: 3 },
      );
      counted.destroy();
      // Assess: items 0 to 9 evaluated, none past the one that filled the limit.
      expect(items.map((item) => item.n)).toEqual([1, 4, 9]);
      expect(scanned).toBe(10);
    });

    it('asks each page only for what is still missing and hands each page on as it comes', async () => {
      // Prepare: the same filter as above, so most pages come back empty.
      for (let n = 0; n < 15; n++) await put(pageItem('PAGES#each', n));
      const { asked, limits } = limitsAsked();
      const pages: unknown[][] = [];
      // Act
      await forEachQueryPage(
        asked,
        oneFourNineTwelveOf('PAGES#each'),
        (items) => pages.push(items.map((item) => item.n)),
        { limit: 3 },
      );
      asked.destroy();
      // Assess: 3, then 2 once one item is in hand, then 1 until the third.
      expect(limits).toEqual([3, 2, 1, 1, 1, 1, 1]);
      expect(pages).toEqual([[1], [4], [], [], [], [], [9]]);
    });

    it('asks for no Limit and reads to the end when there is no limit', async () => {
      // Prepare
      for (let n = 0; n < 5; n++) await put(pageItem('PAGES#open', n));
      const { asked, limits } = limitsAsked();
      // Act
      const items = await queryItems(asked, queryOf('PAGES#open'));
      asked.destroy();
      // Assess
      expect(limits).toEqual([undefined]);
      expect(items.map((item) => item.n)).toEqual([0, 1, 2, 3, 4]);
    });
  });
});
