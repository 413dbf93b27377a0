import { randomBytes } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketId, minuteOf } from '../../../../functions/core/minutes.js';
import type { OriginTally } from '../../../../functions/core/tally.js';
import { createDocumentClient } from '../../../../functions/store/client.js';
import { createHeartbeatStore } from '../../../../functions/store/heartbeat-store.js';
import { keys, shardOf, TABLE } from '../../../../functions/store/table.js';
import { localEndpoint, localTable } from '../../../helpers/local-tables.js';

// Near now: rows of a minute long past would be TTL-deleted while the test reads them.
const MINUTE = minuteOf(Date.now());
const SHARDS = 4;
const counts = (ok: number, connect_failed = 0) => ({
  ok,
  connect_failed,
  origin_error: 0,
  error: 0,
});

const WRITES = new Set(['BatchWriteItemCommand', 'PutItemCommand']);

/**
 * Write units DynamoDB reports for every write the client sends, and each
 * command sent: the partition a Query names, the items a BatchWrite puts.
 */
function meteredClient(endpoint: string) {
  const client = createDocumentClient({ region: 'us-east-1', endpoint });
  const meter = {
    writeUnits: 0,
    sent: [] as Array<{ command: string; pk?: string; puts?: number }>,
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as {
        ExpressionAttributeValues?: { ':pk'?: string | { S?: string } };
        RequestItems?: Record<string, unknown[]>;
      };
      // Marshalled or not, depending on where in the stack the client runs this.
      const value = input.ExpressionAttributeValues?.[':pk'];
      const pk = typeof value === 'string' ? value : value?.S;
      const puts = Object.values(input.RequestItems ?? {}).flat().length;
      meter.sent.push({
        command,
        ...(pk === undefined ? {} : { pk }),
        ...(puts ? { puts } : {}),
      });
      if (!WRITES.has(command)) return next(args);
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: unknown })
        .ConsumedCapacity;
      for (const c of [consumed ?? []].flat() as Array<{
        CapacityUnits?: number;
      }>)
        meter.writeUnits += c.CapacityUnits ?? 0;
      return result;
    },
    { step: 'initialize', name: 'meterCapacity' },
  );
  return { client, meter };
}

/** 100 relays over 100 origin hosts, each origin probed too, plus 3 canaries; `failing` origins fail. */
function periodicReport(failing: number): OriginTally[] {
  const origins: OriginTally[] = [];
  for (let i = 0; i < 100; i++) {
    const origin = `rtmp://live-${i}.customer-${i * 7}.example.com:1935`;
    const c = i < failing ? counts(0, 1) : counts(1);
    origins.push(
      { origin, kind: 'relay', counts: c },
      { origin, kind: 'probe', counts: c },
    );
  }
  for (const host of ['a', 'b', 'c'])
    origins.push({
      origin: `tcp://canary-${host}.example.org:443`,
      kind: 'probe',
      counts: counts(1),
    });
  return origins;
}

describe('heartbeat rows on DynamoDB Local', () => {
  const tableName = `relaywatch-rows-${randomBytes(6).toString('hex')}`;
  const { client, meter } = meteredClient(localEndpoint());
  const store = createHeartbeatStore({
    client,
    tableName,
    shards: SHARDS,
    bucketTtlHours: 48,
  });

  beforeAll(async () => {
    await localTable(tableName);
  });
  afterAll(() => client.destroy());

  it.each([0, 5])(
    'stores a periodic report of 100 origins with probes (%i failing) for at most 2 write units',
    async (failing) => {
      meter.writeUnits = 0;
      await store.addTallies(
        [
          {
            minute: MINUTE,
            ip: `198.51.100.${failing}`,
            origins: periodicReport(failing),
          },
        ],
        { writeId: `b:report-${failing}` },
      );
      expect(meter.writeUnits).toBeGreaterThan(0);
      expect(meter.writeUnits).toBeLessThanOrEqual(2);
    },
  );

  it('reads back every count, with one name per origin across IPs', async () => {
    const rows = (await store.readMinute(MINUTE)).filter(
      (row) => row.ip === '198.51.100.5' || row.ip === '198.51.100.0',
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.origins).toHaveLength(203);
      // 198.51.100.5 failed on live-0..4, so those are named for 198.51.100.0 too.
      const live3 = row.origins.filter(
        (o) => o.origin === 'rtmp://live-3.customer-21.example.com:1935',
      );
      expect(live3).toHaveLength(2);
    }
  });

  it('hands each page of a minute to onRows as it arrives: the very rows it answers, none twice', async () => {
    const minute = MINUTE + 7;
    // Enough IPs of one shard that its rows span more than one 1 MB page.
    const ips: string[] = [];
    for (let n = 0; ips.length < 600; n++) {
      const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
      if (shardOf(ip, SHARDS) === 0) ips.push(ip);
    }
    await store.addTallies(
      ips.map((ip) => ({ minute, ip, origins: periodicReport(30) })),
      { writeId: 'b:pages' },
    );
    const pages: (readonly unknown[])[] = [];
    const rows = await store.readMinute(minute, (page) => pages.push(page));
    expect(rows.map((row) => row.ip).sort()).toEqual([...ips].sort());
    expect(pages.filter((page) => page.length > 0).length).toBeGreaterThan(1);
    const handed = pages.flat();
    expect(handed).toHaveLength(rows.length);
    expect(new Set(handed)).toEqual(new Set(rows));
  });

  it('still reads rows written in the old format (v1) until their TTL removes them', async () => {
    const ip = '203.0.113.7';
    await client.send(
      new PutCommand({
        TableName: tableName,
        Item: {
          [TABLE.partitionKey]: keys.heartbeatBucket(
            bucketId(MINUTE),
            shardOf(ip, SHARDS),
          ),
          [TABLE.sortKey]: keys.heartbeatRow(ip, 'r:old-row'),
          ip,
          minute: MINUTE,
          origins: [
            { o: 'rtmp://origin-a.example.net', k: 'relay', c: [7, 2, 0, 1] },
            { o: 'tcp://canary.example.org:443', k: 'probe', c: [3, 0, 0, 0] },
          ],
          [TABLE.ttlAttribute]: Math.floor(Date.now() / 1000) + 3600,
        },
      }),
    );
    await store.addTallies(
      [
        {
          minute: MINUTE,
          ip,
          origins: [
            {
              origin: 'rtmp://origin-a.example.net',
              kind: 'relay',
              counts: counts(4),
            },
          ],
        },
      ],
      {
        writeId: 'b:new-row',
      },
    );
    const rows = await store.readIpMinutes([ip], [MINUTE]);
    const relay = rows
      .flatMap((r) => r.origins)
      .filter((o) => o.kind === 'relay');
    expect(relay.map((o) => o.origin)).toEqual([
      'rtmp://origin-a.example.net',
      'rtmp://origin-a.example.net',
    ]);
    expect(relay.reduce((sum, o) => sum + o.counts.ok, 0)).toBe(11);
    expect(
      rows.flatMap((r) => r.origins).find((o) => o.kind === 'probe')?.counts,
    ).toEqual({ ok: 3, connect_failed: 0, origin_error: 0, error: 0 });
  });

  /** Writers of one minute with these shard counts, one row for each IP in turn. */
  async function writeWithCounts(
    minute: number,
    ips: readonly string[],
    shardCounts: readonly number[],
  ) {
    const writers = shardCounts.map((shards) =>
      createHeartbeatStore({ client, tableName, shards, bucketTtlHours: 48 }),
    );
    for (const [i, ip] of ips.entries())
      await writers[i % writers.length]?.addTallies(
        [
          {
            minute,
            ip,
            origins: [
              {
                origin: 'rtmp://origin-a.example.net',
                kind: 'relay',
                counts: counts(3),
              },
            ],
          },
        ],
        { writeId: `b:shards-${minute}-${i}` },
      );
  }

  it('finds every row while RELAYWATCH_SHARDS changes to any count, whichever count the writer and the reader run with', async () => {
    const minute = MINUTE + 5;
    const ips = Array.from({ length: 60 }, (_, i) => `192.0.2.${i + 1}`);
    // A third of the fleet still written with 4 shards, the rest with 3 and 6, in the same open minute.
    await writeWithCounts(minute, ips, [4, 3, 6]);
    expect(ips.some((ip) => shardOf(ip, 6) >= 4)).toBe(true);
    for (const shards of [1, 3, 4, 6, 7]) {
      const reader = createHeartbeatStore({
        client,
        tableName,
        shards,
        bucketTtlHours: 48,
      });
      expect(
        (await reader.readMinute(minute)).map((row) => row.ip).sort(),
      ).toEqual([...ips].sort());
      for (const ip of ips)
        expect(
          (await reader.readIpMinutes([ip], [minute])).map((row) => row.ip),
        ).toEqual([ip]);
    }
  });

  it("reads the rows of many IPs with each minute's markers read once, and their shards under every count marked", async () => {
    const minutes = [MINUTE + 9, MINUTE + 10];
    const ips = Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 201}`);
    for (const minute of minutes) await writeWithCounts(minute, ips, [4, 6]);
    const reader = createHeartbeatStore({
      client,
      tableName,
      shards: 4,
      bucketTtlHours: 48,
    });
    meter.sent = [];

    const rows = await reader.readIpMinutes(ips, minutes);

    expect(rows.map((row) => `${row.minute} ${row.ip}`).sort()).toEqual(
      minutes.flatMap((minute) => ips.map((ip) => `${minute} ${ip}`)).sort(),
    );
    const queries = meter.sent.filter(
      ({ command }) => command === 'QueryCommand',
    );
    // Per minute: one query of the markers, each IP's shard under 4, and under 6 where that is another shard.
    const moved = ips.filter((ip) => shardOf(ip, 6) !== shardOf(ip, 4));
    expect(moved.length).toBeGreaterThan(0);
    expect(queries).toHaveLength(
      minutes.length * (1 + ips.length + moved.length),
    );
  });

  it('marks a minute once per writer, in the batch of its first rows', async () => {
    const minute = MINUTE + 6;
    const writer = createHeartbeatStore({
      client,
      tableName,
      shards: SHARDS,
      bucketTtlHours: 48,
    });
    const report = (ip: string) => [
      {
        minute,
        ip,
        origins: [
          {
            origin: 'rtmp://origin-a.example.net',
            kind: 'relay' as const,
            counts: counts(1),
          },
        ],
      },
    ];
    meter.sent = [];
    await writer.addTallies(report('192.0.2.1'), { writeId: 'b:first' });
    await writer.addTallies(report('192.0.2.2'), { writeId: 'b:second' });

    // One request each: the first puts its row and the marker, the second its row only.
    expect(meter.sent).toEqual([
      { command: 'BatchWriteItemCommand', puts: 2 },
      { command: 'BatchWriteItemCommand', puts: 1 },
    ]);
  });

  it("reads a minute's configured shards only, the shards of another count once a marker names it, and never a count no writer may have", async () => {
    const minute = MINUTE + 8;
    const ips = Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 101}`);
    await writeWithCounts(minute, ips, [4]);
    const queried = async (shards: number) => {
      meter.sent = [];
      const reader = createHeartbeatStore({
        client,
        tableName,
        shards,
        bucketTtlHours: 48,
      });
      expect((await reader.readMinute(minute)).length).toBe(ips.length);
      return meter.sent
        .filter(({ command }) => command === 'QueryCommand')
        .map(({ pk }) => pk)
        .sort();
    };
    const bucket = (shard: number) =>
      keys.heartbeatBucket(bucketId(minute), shard);

    expect(await queried(4)).toEqual([0, 1, 2, 3].map(bucket));
    // A reader still with 2 shards learns of the 4 from shard 0 and reads 2 and 3 too.
    expect(await queried(2)).toEqual([0, 1, 2, 3].map(bucket));
    expect(await queried(6)).toEqual([0, 1, 2, 3, 4, 5].map(bucket));

    // A marker naming a count no writer may have (over 64, or none) is left out, not followed.
    for (const damaged of ['!SHARDS#100000', '!SHARDS#many'])
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: {
            [TABLE.partitionKey]: bucket(0),
            [TABLE.sortKey]: damaged,
            v: 1,
            [TABLE.ttlAttribute]: Math.floor(Date.now() / 1000) + 3600,
          },
        }),
      );
    expect(await queried(4)).toEqual([0, 1, 2, 3].map(bucket));
    const reader = createHeartbeatStore({
      client,
      tableName,
      shards: 4,
      bucketTtlHours: 48,
    });
    const ip = ips[0] as string;
    expect(
      (await reader.readIpMinutes([ip], [minute])).map((row) => row.ip),
    ).toEqual([ip]);
  });
});
