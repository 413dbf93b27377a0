import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../../../functions/core/config.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import { totalOf } from '../../../../functions/core/tally.js';
import type { ApiRuntime } from '../../../../functions/http/api-runtime.js';
import { createTokenChecker } from '../../../../functions/http/tokens.js';
import { createLogger } from '../../../../functions/log.js';
import { routes } from '../../../../functions/routes.js';
import { createBanStore } from '../../../../functions/store/ban-store.js';
import { createBatchStore } from '../../../../functions/store/batch-store.js';
import { createEventStore } from '../../../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../../../functions/store/heartbeat-store.js';
import { createRevocationStore } from '../../../../functions/store/revocation-store.js';
import { decodeOrigins } from '../../../../functions/store/row-codec.js';
import { createStateStore } from '../../../../functions/store/state-store.js';
import { lambdaContext } from '../../../../infra/local/lambda-context.js';
import { apiEvent, apiHandlerOf } from '../../../helpers/lambda.js';
import { fakeBatchTable, serviceError, TABLE_NAME } from '../../fake-table.js';

const REPORTER = 'reporter-token-faults';
const NOW = minuteStart(minuteOf(Date.parse('2026-11-24T14:03:00Z'))) + 20_000;

const ENV = {
  TABLE_NAME,
  DYNAMODB_ENDPOINT: 'http://127.0.0.1:1',
  RELAYWATCH_REPORTER_TOKEN: REPORTER,
  RELAYWATCH_READER_TOKEN: 'reader-token-faults',
  RELAYWATCH_ADMIN_TOKEN: 'admin-token-faults',
  LOG_LEVEL: 'error',
};

/** The heartbeat rows the table holds (not the minute's shard-count marker). */
const rowsOf = (table: ReturnType<typeof fakeBatchTable>) =>
  [...table.items.values()].filter((item) => item.ip !== undefined);

/** The ingest handler on a runtime whose stores all use the faulty client. */
function ingestWith(table: ReturnType<typeof fakeBatchTable>) {
  const config = parseConfig(ENV);
  const logs: Record<string, unknown>[] = [];
  const client = table.client;
  const runtime: ApiRuntime = {
    config,
    log: createLogger({
      level: 'debug',
      write: (line) => logs.push(JSON.parse(line)),
    }),
    heartbeats: createHeartbeatStore({
      client,
      tableName: TABLE_NAME,
      shards: config.shards,
      bucketTtlHours: config.bucketTtlHours,
    }),
    bans: createBanStore({ client, tableName: TABLE_NAME }),
    events: createEventStore({
      client,
      tableName: TABLE_NAME,
      eventTtlDays: config.eventTtlDays,
    }),
    state: createStateStore({ client, tableName: TABLE_NAME }),
    batches: createBatchStore({
      client,
      tableName: TABLE_NAME,
      ttlHours: config.bucketTtlHours,
    }),
    revocations: createRevocationStore({ client, tableName: TABLE_NAME }),
    checkToken: createTokenChecker({
      reporter: [REPORTER],
      reader: [],
      admin: [],
    }),
    now: () => NOW,
    sleep: async () => undefined,
    close: () => client.destroy(),
  };
  const ingest = apiHandlerOf(routes.postHeartbeats, runtime);
  const post = async (body: unknown) => {
    const handler = await ingest;
    const settled = handler(
      apiEvent(routes.postHeartbeats, {
        token: REPORTER,
        body,
        requestId: 'faults',
      }),
      lambdaContext('post-heartbeats'),
    );
    // putAll backs off between retries; fast-forward its sleeps.
    await vi.runAllTimersAsync();
    const response = await settled;
    return {
      status: response.statusCode,
      headers: response.headers ?? {},
      text: response.body ?? '',
      json: JSON.parse(response.body ?? 'null'),
    };
  };
  return { post, logs };
}

const heartbeatsFor = (ips: number, perIp: number) =>
  Array.from({ length: ips * perIp }, (_, i) => ({
    ip: `198.51.100.${Math.floor(i / perIp) + 1}`,
    process: `ffmpeg-${i % perIp}`,
    status: i % 3 === 0 ? 'connect_failed' : 'ok',
    origin: 'rtmp://origin-a.example.net/live',
    ts: NOW,
  }));

describe('POST /v1/heartbeats when DynamoDB throttles', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each<[string, () => Error]>([
    [
      'ThrottlingException',
      () =>
        new ThrottlingException({
          message: 'Rate of requests exceeds the allowed throughput.',
          $metadata: {},
        }),
    ],
    [
      'ProvisionedThroughputExceededException',
      () =>
        new ProvisionedThroughputExceededException({
          message:
            'The level of configured provisioned throughput for the table was exceeded.',
          $metadata: {},
        }),
    ],
    [
      'RequestLimitExceeded',
      () =>
        new RequestLimitExceeded({
          message:
            'Throughput exceeds the current throughput limit for your account.',
          $metadata: {},
        }),
    ],
    [
      'InternalServerError',
      () =>
        new InternalServerError({
          message: 'Internal server error',
          $metadata: {},
        }),
    ],
  ])(
    'answers 503 with retry-after, not 500, when BatchWriteItem fails with %s',
    async (_name, error) => {
      // Prepare
      const table = fakeBatchTable({ fail: () => error() });
      const { post } = ingestWith(table);
      // Act
      const response = await post({ heartbeats: heartbeatsFor(2, 5) });
      // Assess
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.json).toEqual({
        code: 'store_unavailable',
        error: expect.stringContaining('retry'),
      });
    },
  );

  it('does not echo the DynamoDB error message to the client', async () => {
    const table = fakeBatchTable({
      fail: () =>
        serviceError(
          'ThrottlingException',
          'arn:aws:dynamodb:eu-west-1:123456789012:table/secret-name',
        ),
    });
    const { post } = ingestWith(table);
    const response = await post({ heartbeats: heartbeatsFor(1, 3) });
    expect(response.status).toBe(503);
    expect(response.text).not.toContain('secret-name');
  });

  it('logs the throttling as a warning for the operator', async () => {
    const table = fakeBatchTable({
      fail: () =>
        new ThrottlingException({ message: 'Rate exceeded', $metadata: {} }),
    });
    const { post, logs } = ingestWith(table);
    await post({ heartbeats: heartbeatsFor(1, 3) });
    expect(
      logs.some(
        (line) =>
          line.level === 'warn' &&
          String(line.error).includes('ThrottlingException'),
      ),
    ).toBe(true);
  });

  it('answers 503 with retry-after when DynamoDB keeps handing back unprocessed items', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (_call, requests) => requests,
    });
    const { post } = ingestWith(table);
    const response = await post({ heartbeats: heartbeatsFor(3, 4) });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('1');
  });

  it('answers 202 when unprocessed items clear up after a few retries, with every row written once', async () => {
    const table = fakeBatchTable({
      leaveUnprocessed: (call, requests) =>
        call <= 2 ? requests.slice(0, 2) : [],
    });
    const { post } = ingestWith(table);
    const response = await post({ heartbeats: heartbeatsFor(30, 4) });
    expect(response.status).toBe(202);
    expect(response.json).toEqual({ accepted: 120 });
    expect(rowsOf(table)).toHaveLength(30);
    expect([...table.writes.values()].every((count) => count === 1)).toBe(true);
  });

  it('answers 500 only for errors that are not "busy": a validation error is not retried as 503', async () => {
    const table = fakeBatchTable({
      fail: () =>
        serviceError(
          'ValidationException',
          'One or more parameter values were invalid',
        ),
    });
    const { post } = ingestWith(table);
    const response = await post({ heartbeats: heartbeatsFor(1, 3) });
    expect(response.status).toBe(500);
    expect(response.json).toEqual({
      code: 'internal',
      error: 'internal error',
    });
  });

  it('stores each row once when a throttled batch is retried with the same batchId', async () => {
    // Prepare: 60 IPs → 60 rows and the minute's shard-count marker → three
    // BatchWriteItem calls; the second call of the first attempt is throttled
    // after the first batch (the marker and 24 rows) was written.
    const table = fakeBatchTable({
      fail: (call) =>
        call === 2
          ? new ThrottlingException({ message: 'Rate exceeded', $metadata: {} })
          : undefined,
    });
    const { post } = ingestWith(table);
    const body = {
      batchId: 'agent-7-seq-42',
      heartbeats: heartbeatsFor(60, 2),
    };
    // Act
    const first = await post(body);
    const retry = await post(body);
    // Assess: the retry overwrote the rows the first attempt left, adding none.
    expect(first.status).toBe(503);
    expect(retry.status).toBe(202);
    expect(rowsOf(table)).toHaveLength(60);
    // Each IP sent 2 heartbeats; a row counted twice would total 4.
    const totals = rowsOf(table).map((item) =>
      decodeOrigins(item.d as Uint8Array).reduce(
        (sum, o) => sum + totalOf(o.counts),
        0,
      ),
    );
    expect(new Set(totals)).toEqual(new Set([2]));
  });
});
