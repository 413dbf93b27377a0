import { describe, expect, it } from 'vitest';
import { createApiRuntime } from '../../../../functions/http/api-runtime.js';
import { createLogger } from '../../../../functions/log.js';
import type { HttpRoute } from '../../../../functions/routes.js';
import { routes } from '../../../../functions/routes.js';
import { isRetryableStoreError } from '../../../../functions/store/errors.js';
import { lambdaContext } from '../../../../infra/local/lambda-context.js';
import { REFUSING_PORT } from '../../../helpers/connections.js';
import { apiEvent, apiHandlerOf } from '../../../helpers/lambda.js';

/**
 * DynamoDB unreachable for real: the endpoint is a loopback port nobody
 * listens on, so every call fails with ECONNREFUSED (no SDK mock).
 */

const TOKENS = {
  RELAYWATCH_REPORTER_TOKEN: 'reporter-unreachable',
  RELAYWATCH_READER_TOKEN: 'reader-unreachable',
  RELAYWATCH_ADMIN_TOKEN: 'admin-unreachable',
};

const env: Record<string, string> = {
  TABLE_NAME: 'relaywatch-unreachable',
  DYNAMODB_ENDPOINT: `http://127.0.0.1:${REFUSING_PORT}`,
  LOG_LEVEL: 'error',
  ...TOKENS,
};

/** One request to `route`'s own handler, on a runtime wired to the dead endpoint. */
async function call(
  route: HttpRoute,
  request: {
    token: string;
    body?: unknown;
    pathParameters?: Record<string, string>;
  },
) {
  const runtime = await createApiRuntime(env, {
    log: createLogger({ level: 'error', write: () => undefined }),
  });
  const handler = await apiHandlerOf(route, runtime);
  return handler(
    apiEvent(route, { ...request, requestId: 'unreachable' }),
    lambdaContext(route.entry),
  );
}

describe('the API when DynamoDB cannot be reached', () => {
  it('answers 503 with retry-after to a heartbeat post, not 500', async () => {
    const response = await call(routes.postHeartbeats, {
      token: TOKENS.RELAYWATCH_REPORTER_TOKEN,
      body: {
        batchId: 'b-1',
        heartbeats: [{ ip: '192.0.2.1', process: 'p', status: 'ok' }],
      },
    });
    expect(response.statusCode).toBe(503);
    expect(response.headers?.['retry-after']).toBe('1');
  });

  it('answers 503 with retry-after to a blocklist read and a manual ban', async () => {
    const read = await call(routes.getBlocklist, {
      token: TOKENS.RELAYWATCH_READER_TOKEN,
    });
    expect(read.statusCode).toBe(503);
    expect(read.headers?.['retry-after']).toBe('1');
    const ban = await call(routes.putBan, {
      pathParameters: { ip: '192.0.2.9' },
      token: TOKENS.RELAYWATCH_ADMIN_TOKEN,
      body: { durationSeconds: 60 },
    });
    expect(ban.statusCode).toBe(503);
  });
});

describe('which store errors are worth a retry', () => {
  const withCode = (code: string) =>
    Object.assign(new Error(`connect ${code}`), { code });

  it('counts connection, timeout and network errors, also inside an AggregateError', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EPIPE',
    ]) {
      expect(isRetryableStoreError(withCode(code)), code).toBe(true);
    }
    expect(
      isRetryableStoreError(
        Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      ),
    ).toBe(true);
    expect(
      isRetryableStoreError(
        new AggregateError([withCode('ECONNREFUSED'), withCode('ENETUNREACH')]),
      ),
    ).toBe(true);
  });

  it('counts a transaction cancelled only by throttling or a concurrent writer, not one whose condition failed', () => {
    const cancelled = (...codes: string[]) =>
      Object.assign(new Error('Transaction cancelled'), {
        name: 'TransactionCanceledException',
        CancellationReasons: codes.map((Code) => ({ Code })),
      });
    expect(isRetryableStoreError(cancelled('None', 'ThrottlingError'))).toBe(
      true,
    );
    expect(
      isRetryableStoreError(
        cancelled('TransactionConflict', 'ProvisionedThroughputExceeded'),
      ),
    ).toBe(true);
    expect(
      isRetryableStoreError(
        Object.assign(new Error('conflict'), {
          name: 'TransactionConflictException',
        }),
      ),
    ).toBe(true);
    expect(
      isRetryableStoreError(cancelled('ConditionalCheckFailed', 'None')),
    ).toBe(false);
    expect(
      isRetryableStoreError(cancelled('ThrottlingError', 'ValidationError')),
    ).toBe(false);
    expect(isRetryableStoreError(cancelled())).toBe(false);
  });

  it('does not count a validation error or a bug', () => {
    expect(
      isRetryableStoreError(
        Object.assign(new Error('bad key'), { name: 'ValidationException' }),
      ),
    ).toBe(false);
    expect(isRetryableStoreError(new TypeError('x is undefined'))).toBe(false);
    expect(isRetryableStoreError(withCode('ERR_INVALID_ARG_TYPE'))).toBe(false);
  });
});
