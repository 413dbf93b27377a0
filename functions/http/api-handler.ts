import middy from '@middy/core';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { errorBody } from '#contract/errors';
import type { Logger } from '../log.js';
import { invocationLogger } from '../log.js';
import { handlerName, writeErrorMetric } from '../metrics.js';
import type { HttpRoute, Role } from '../routes.js';
import { ROLE_ADMITS } from '../routes.js';
import { isRetryableStoreError } from '../store/errors.js';
import type { ApiRuntime } from './api-runtime.js';
import { HttpError, httpErrorResponse } from './errors.js';
import type { HttpResponse } from './responses.js';
import { json } from './responses.js';
import type { Principal } from './tokens.js';

export type ApiRequest = {
  event: APIGatewayProxyEventV2;
  /** Parsed JSON body; undefined when the request had none. */
  body: unknown;
  role: Role;
  /** The credential: its actor name for events, and the one IP a machine token may report for. */
  principal: Principal;
  log: Logger;
  now: number;
};

export type ApiHandlerOptions = {
  /** Largest body accepted, in bytes; larger gets 413. 0: the route takes no body. */
  maxBodyBytes?: number;
  /** Called when the route's handler refuses an authorized request (a 4xx HttpError): to count what was refused. */
  onRefused?: (request: ApiRequest, error: HttpError) => void;
};

const DEFAULT_MAX_BODY_BYTES = 16_384;
const JSON_TYPE = /^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;

function header(
  event: APIGatewayProxyEventV2,
  name: string,
): string | undefined {
  // API Gateway v2 lower-cases header names; the local gateway does the same.
  return event.headers?.[name];
}

async function authorize(
  event: APIGatewayProxyEventV2,
  route: HttpRoute,
  runtime: ApiRuntime,
): Promise<Principal> {
  const authorization = header(event, 'authorization');
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  if (!match?.[1]) {
    throw new HttpError(
      401,
      'missing bearer token: send "Authorization: Bearer <token>"',
      undefined,
      {
        'www-authenticate': 'Bearer realm="relaywatch"',
      },
    );
  }
  const unknown = () =>
    new HttpError(401, 'unknown token', undefined, {
      'www-authenticate': 'Bearer realm="relaywatch", error="invalid_token"',
    });
  const check = await runtime.checkToken(match[1]);
  if (!check.known) throw unknown();
  const { known: _known, ...principal } = check;
  if (!ROLE_ADMITS[route.role].includes(principal.role)) {
    throw new HttpError(
      403,
      `this route needs the ${route.role} role; the token is ${principal.role === 'admin' ? 'an' : 'a'} ${principal.role} token`,
    );
  }
  // Its shape claims an admitted role, yet this function holds that role's secrets and they do not match.
  if (!principal.verified) throw unknown();
  if (principal.ip !== undefined && principal.issuedAt !== undefined) {
    const revoked = runtime.isRevoked
      ? await runtime.isRevoked({
          ip: principal.ip,
          issuedAt: principal.issuedAt,
        })
      : true;
    if (revoked) throw unknown();
  }
  return principal;
}

function readBody(event: APIGatewayProxyEventV2, maxBytes: number): unknown {
  if (event.body === undefined || event.body === null || event.body === '')
    return undefined;
  const text = event.isBase64Encoded
    ? Buffer.from(event.body, 'base64').toString('utf8')
    : event.body;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new HttpError(
      413,
      `body is ${bytes} bytes; the limit is ${maxBytes} bytes`,
    );
  }
  const contentType = header(event, 'content-type');
  if (contentType !== undefined && !JSON_TYPE.test(contentType)) {
    throw new HttpError(
      415,
      `content-type must be application/json, not "${contentType}" (curl: add -H "content-type: application/json")`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(
      400,
      `body is not valid JSON: ${(error as Error).message}`,
      undefined,
      undefined,
      'invalid_json',
    );
  }
}

/**
 * Wraps a route's handler in the chain every API route shares: request log
 * context → auth by role → body size/type/JSON → handler, with one onError that
 * turns HttpError into {"code", "error", "issues"} and anything else into a generic
 * 5xx (503 when DynamoDB is busy, so clients retry).
 */
export function apiHandler(
  route: HttpRoute,
  runtime: ApiRuntime,
  handle: (request: ApiRequest) => Promise<HttpResponse>,
  options: ApiHandlerOptions = {},
) {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const handler = handlerName(route.entry);
  return middy<APIGatewayProxyEventV2, HttpResponse, Error, Context>({
    timeoutEarlyInMillis: 0,
  })
    .use({
      onError: (request) => {
        const error = request.error;
        const log = runtime.log.child({
          requestId: request.context?.awsRequestId,
          route: `${route.method} ${route.path}`,
        });
        if (error instanceof HttpError) {
          if (error.statusCode >= 500) {
            log.error('request failed', {
              status: error.statusCode,
              error: error.message,
            });
            writeErrorMetric(log, handler, 'internal');
          } else
            log.info('request refused', {
              status: error.statusCode,
              error: error.message,
            });
          request.response = httpErrorResponse(error);
        } else if (isRetryableStoreError(error)) {
          log.warn('store busy', { error: String(error) });
          writeErrorMetric(log, handler, 'store_busy');
          request.response = json(
            503,
            errorBody(
              'store_unavailable',
              'storage is busy; retry the same request (with the same batchId)',
            ),
            { 'retry-after': '1' },
          );
        } else {
          log.error('unexpected error', {
            error: String(error),
            stack: (error as Error | undefined)?.stack,
          });
          writeErrorMetric(log, handler, 'internal');
          request.response = httpErrorResponse(error);
        }
      },
    })
    .handler(async (event, context) => {
      const log = invocationLogger(runtime.log, context, {
        route: `${route.method} ${route.path}`,
      });
      const principal = await authorize(event, route, runtime);
      const body = readBody(event, maxBodyBytes);
      const request: ApiRequest = {
        event,
        body,
        role: principal.role,
        principal,
        log,
        now: runtime.now(),
      };
      try {
        return await handle(request);
      } catch (error) {
        if (error instanceof HttpError && error.statusCode < 500)
          options.onRefused?.(request, error);
        throw error;
      }
    });
}
