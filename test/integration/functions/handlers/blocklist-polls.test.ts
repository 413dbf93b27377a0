import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import {
  BAN_CHANGE_WINDOW_MS,
  createBanStore,
} from '../../../../functions/store/ban-store.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { keys, TABLE } from '../../../../functions/store/table.js';
import { diesBeforeClosingWindow } from '../../../helpers/faulty-client.js';
import { localEndpoint } from '../../../helpers/local-tables.js';
import type { MeteringProxy } from '../../../helpers/metering-proxy.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startMeteringProxyOnLocal,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/**
 * Dispatchers poll GET /v1/blocklist every few seconds: an unchanged list must
 * cost one small read however many bans there are, and every change to the
 * list (manual ban, unban, automatic ban, early release, a ban running out)
 * must change the ETag.
 */

const BANS = 1000;
const FLEET = Array.from({ length: 10 }, (_, i) => `203.0.113.${i + 11}`);
const ORIGINS = [
  'rtmp://origin-a.example.net/live',
  'rtmp://origin-b.example.net/live',
];
const CANARY = 'tcp://canary.example.net:443';

/** GET with raw bytes: no client-side decompression. */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks),
        }),
      );
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('blocklist polls', () => {
  let proxy: MeteringProxy;
  let center: TestStatusCenter;
  let now = minuteStart(minuteOf(Date.now())) + 5_000;
  const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    proxy = await startMeteringProxyOnLocal();
    center = await startStatusCenter({
      dynamodbEndpoint: proxy.endpoint,
      env: { TABLE_NAME: tableName },
      overrides: { now: () => now },
    });
    // 1,000 manual bans through the ban store, as one batch (one change
    // window, transactions of 100 writes): put one by one, each moves the
    // version item, and 20 at a time they mostly wait on each other there.
    const bans = createBanStore({
      client: createDocumentClient({
        region: 'us-east-1',
        endpoint: localEndpoint(),
      }),
      tableName,
    });
    const applied = await bans.changeBans(
      Array.from({ length: BANS }, (_, n) => ({
        type: 'ban' as const,
        ban: {
          ip: `10.9.${n >> 8}.${n & 255}`,
          reason: 'seeded',
          since: now,
          until: now + 86_400_000,
          manual: true,
          failRatio: null,
          samples: null,
          offense: 0,
          rule: 'manual' as const,
        },
      })),
      now,
    );
    expect(applied.filter(Boolean)).toHaveLength(BANS);
  });
  afterAll(async () => {
    await center?.stop();
    await proxy?.close();
  });

  const get = (headers: Record<string, string> = {}) =>
    rawGet(`${center.url}/v1/blocklist`, {
      authorization: `Bearer ${center.tokens.reader}`,
      ...headers,
    });
  const etagNow = async () => {
    const response = await get();
    expect(response.status).toBe(200);
    return response.headers.etag as string;
  };

  it(`answers an unchanged list of ${BANS} bans with a 304 for at most 1 read unit`, async () => {
    const first = await get();
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body.toString('utf8')).entries).toHaveLength(BANS);
    proxy.reset();
    const again = await get({ 'if-none-match': first.headers.etag as string });
    const used = proxy.reset();
    expect(again.status).toBe(304);
    expect(used.readUnits).toBeLessThanOrEqual(1);
    expect(used.calls.Query ?? 0).toBe(0);
  });

  it('gzips the body for a client that accepts gzip, as base64 through the gateway like API Gateway', async () => {
    const plain = await get();
    const zipped = await get({ 'accept-encoding': 'gzip, deflate' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('accept-encoding');
    expect(zipped.body.length).toBeLessThan(plain.body.length / 4);
    expect(JSON.parse(gunzipSync(zipped.body).toString('utf8'))).toEqual(
      JSON.parse(plain.body.toString('utf8')),
    );
    expect(plain.headers['content-encoding']).toBeUndefined();
    const refused = await get({ 'accept-encoding': 'gzip;q=0' });
    expect(refused.headers['content-encoding']).toBeUndefined();
  });

  it('changes the ETag on a manual ban, an unban, and when a ban runs out (no write needed)', async () => {
    const api = apiClient(center);
    const before = await etagNow();
    expect(
      (
        await api('PUT', '/v1/bans/198.51.100.77', {
          body: { durationSeconds: 90, reason: 'maintenance' },
        })
      ).status,
    ).toBe(201);
    const banned = await etagNow();
    expect(banned).not.toBe(before);
    expect((await api('DELETE', '/v1/bans/198.51.100.77')).status).toBe(204);
    const unbanned = await etagNow();
    expect(unbanned).not.toBe(banned);
    expect(
      (
        await api('PUT', '/v1/bans/198.51.100.78', {
          body: { durationSeconds: 60 },
        })
      ).status,
    ).toBe(201);
    const short = await etagNow();
    now += 61_000;
    const expired = await etagNow();
    expect(expired).not.toBe(short);
    expect(expired).toBe(unbanned);
  });

  it('changes the ETag on an automatic ban and on an early release', async () => {
    const api = apiClient(center);
    const post = async (m: number, failing: string | undefined) => {
      now = minuteStart(m) + 30_000;
      for (const ip of FLEET) {
        const status = ip === failing ? 'connect_failed' : 'ok';
        const beats = [
          ...Array.from({ length: 12 }, (_, n) => ({
            ip,
            process: `ffmpeg-${n}`,
            status,
            origin: `${ORIGINS[n % 2]}/s${n}`,
            ts: minuteStart(m) + 1_000 + n * 1_000,
          })),
          ...Array.from({ length: 4 }, (_, n) => ({
            ip,
            process: 'probe',
            kind: 'probe',
            status,
            origin: CANARY,
            ts: minuteStart(m) + 20_000 + n * 1_000,
          })),
        ];
        expect(
          (
            await api('POST', '/v1/heartbeats', {
              role: 'reporter',
              body: { heartbeats: beats },
            })
          ).status,
        ).toBe(202);
      }
    };
    const aggregate = async (m: number) => {
      now = minuteStart(m + 1) + 15_000;
      return (await center.aggregate(new Date(now).toISOString())) as {
        decisions: Array<{ type: string; ip?: string }>;
      };
    };
    const start = minuteOf(now) + 1;
    await post(start, FLEET[0]);
    const before = await etagNow();
    expect((await aggregate(start)).decisions).toContainEqual(
      expect.objectContaining({ type: 'ban', ip: FLEET[0] }),
    );
    const banned = await etagNow();
    expect(banned).not.toBe(before);
    // Healthy probes over the release window (one minute by default) release it.
    await post(start + 1, undefined);
    expect((await aggregate(start + 1)).decisions).toContainEqual(
      expect.objectContaining({ type: 'release', ip: FLEET[0] }),
    );
    const released = await etagNow();
    expect(released).not.toBe(banned);
  });

  it("keeps no list read while a batch of ban changes is open, so a dead writer's late write is served, and keeps one again once the window ends", async () => {
    const client = createDocumentClient({
      region: 'us-east-1',
      endpoint: localEndpoint(),
    });
    // A writer that dies after its transactions, before it closes its change window.
    const dying = diesBeforeClosingWindow(client);
    const writer = createBanStore({
      client: dying,
      tableName,
      clock: () => now,
    });
    const banOf = (ip: string) => ({
      ip,
      reason: 'connect failures',
      since: now,
      until: now + 3_600_000,
      manual: false,
      failRatio: 0.9,
      samples: 10,
      offense: 1,
      rule: 'fail-ratio',
    });
    await expect(
      writer.changeBans([{ type: 'ban', ban: banOf('198.51.100.90') }], now),
    ).rejects.toThrow('writer killed');
    const during = await get();
    expect(
      JSON.parse(during.body.toString('utf8')).entries.map(
        (entry: { ip: string }) => entry.ip,
      ),
    ).toContain('198.51.100.90');

    // A transaction of the dead writer lands after that read, moving no version.
    await client.send(
      new PutCommand({
        TableName: tableName,
        Item: {
          [TABLE.partitionKey]: keys.banPartition(),
          [TABLE.sortKey]: keys.ban('198.51.100.91'),
          v: 1,
          ...banOf('198.51.100.91'),
        },
      }),
    );
    proxy.reset();
    const late = await get({ 'if-none-match': during.headers.etag as string });
    expect(proxy.reset().calls.Query ?? 0).toBeGreaterThan(0);
    expect(late.status).toBe(200);
    expect(
      JSON.parse(late.body.toString('utf8')).entries.map(
        (entry: { ip: string }) => entry.ip,
      ),
    ).toContain('198.51.100.91');

    // Once the window has ended, the list is kept again: a poll is one small read.
    now += BAN_CHANGE_WINDOW_MS + 1_000;
    const settled = await get();
    proxy.reset();
    const again = await get({
      'if-none-match': settled.headers.etag as string,
    });
    const used = proxy.reset();
    expect(again.status).toBe(304);
    expect(used.calls.Query ?? 0).toBe(0);
    client.destroy();
  });
});
