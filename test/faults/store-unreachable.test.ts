import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { ApiRuntime } from '../../functions/http/api-runtime.js';
import { createApiRuntime } from '../../functions/http/api-runtime.js';
import type { HttpResponse } from '../../functions/http/responses.js';
import { createLogger } from '../../functions/log.js';
import { isRetryableStoreError } from '../../functions/store/errors.js';
import { lambdaContext } from '../../infra/local/lambda-context.js';
import { freePort } from '../helpers/ports.js';

/**
 * DynamoDB unreachable for real: the endpoint is a loopback port nobody
 * listens on, so every call fails with ECONNREFUSED (no SDK mock).
 */

type CreateHandler = (
  runtime: ApiRuntime,
) => (event: APIGatewayProxyEventV2, context: unknown) => Promise<HttpResponse>;
const TOKENS = {
  RELAYWATCH_REPORTER_TOKEN: 'reporter-unreachable',
  RELAYWATCH_READER_TOKEN: 'reader-unreachable',
  RELAYWATCH_ADMIN_TOKEN: 'admin-unreachable',
};

let env: Record<string, string>;
const handlers: Record<string, CreateHandler> = {};

beforeAll(async () => {
  env = {
    TABLE_NAME: 'relaywatch-unreachable',
    DYNAMODB_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
    LOG_LEVEL: 'error',
    ...TOKENS,
  };
  // Handler modules build a runtime from process.env when imported, as in Lambda (no call is made then).
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  const modules = {
    'post-heartbeats': await import(
      '../../functions/handlers/post-heartbeats.js'
    ),
    'get-blocklist': await import('../../functions/handlers/get-blocklist.js'),
    'put-ban': await import('../../functions/handlers/put-ban.js'),
  };
  for (const [entry, module] of Object.entries(modules))
    handlers[entry] = (
      module as unknown as { createHandler: CreateHandler }
    ).createHandler;
  vi.unstubAllEnvs();
});

async function call(
  entry: string,
  request: { method: string; path: string; token: string; body?: unknown },
) {
  const runtime = await createApiRuntime(env, {
    log: createLogger({ level: 'error', write: () => undefined }),
  });
  const event = {
    version: '2.0',
    routeKey: `${request.method} ${request.path}`,
    rawPath: request.path,
    rawQueryString: '',
    headers: {
      authorization: `Bearer ${request.token}`,
      'content-type': 'application/json',
    },
    pathParameters: request.path.startsWith('/v1/bans/')
      ? { ip: request.path.slice('/v1/bans/'.length) }
      : undefined,
    requestContext: {
      requestId: 'unreachable',
      http: { method: request.method, path: request.path },
    },
    ...(request.body === undefined
      ? {}
      : { body: JSON.stringify(request.body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  return handlers[entry]!(runtime)(event, lambdaContext(entry));
}

describe('the API when DynamoDB cannot be reached', () => {
  it('answers 503 with retry-after to a heartbeat post, not 500', async () => {
    const response = await call('post-heartbeats', {
      method: 'POST',
      path: '/v1/heartbeats',
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
    const read = await call('get-blocklist', {
      method: 'GET',
      path: '/v1/blocklist',
      token: TOKENS.RELAYWATCH_READER_TOKEN,
    });
    expect(read.statusCode).toBe(503);
    expect(read.headers?.['retry-after']).toBe('1');
    const ban = await call('put-ban', {
      method: 'PUT',
      path: '/v1/bans/192.0.2.9',
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
