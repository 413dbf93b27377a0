import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../../functions/core/config.js';
import type { ApiRequest } from '../../../../functions/http/api-handler.js';
import { apiHandler } from '../../../../functions/http/api-handler.js';
import type { ApiRuntime } from '../../../../functions/http/api-runtime.js';
import {
  badRequest,
  HttpError,
  httpErrorResponse,
  notFound,
} from '../../../../functions/http/errors.js';
import { pathIp } from '../../../../functions/http/path-ip.js';
import type { HttpResponse } from '../../../../functions/http/responses.js';
import { accepted, ok } from '../../../../functions/http/responses.js';
import { createTokenChecker } from '../../../../functions/http/tokens.js';
import { createLogger } from '../../../../functions/log.js';
import type { HttpRoute } from '../../../../functions/routes.js';
import { routes } from '../../../../functions/routes.js';
import { StoreUnavailableError } from '../../../../functions/store/errors.js';
import { lambdaContext } from '../../../../infra/local/lambda-context.js';
import { apiEvent } from '../../../helpers/lambda.js';

const TOKENS = {
  reporter: 'reporter-token',
  reader: 'reader-token',
  admin: 'admin-token',
};
const NOW = Date.parse('2026-11-24T14:03:20Z');
const SECRET =
  'table arn:aws:dynamodb:eu-west-1:123456789012:table/relaywatch-prod at 10.1.2.3';

/**
 * A runtime without DynamoDB: the chain only needs the log, the token check
 * and the clock. The stores throw if anything reaches them.
 */
function fakeRuntime() {
  const lines: Record<string, unknown>[] = [];
  const untouchable = new Proxy(
    {},
    {
      get: () => () =>
        Promise.reject(new Error('the store must not be reached')),
    },
  );
  const runtime = {
    config: parseConfig({}),
    log: createLogger({
      level: 'debug',
      write: (line) => lines.push(JSON.parse(line)),
    }),
    heartbeats: untouchable,
    bans: untouchable,
    events: untouchable,
    state: untouchable,
    checkToken: createTokenChecker({
      reporter: [TOKENS.reporter],
      reader: [TOKENS.reader],
      admin: [TOKENS.admin],
    }),
    now: () => NOW,
    sleep: async () => undefined,
  } as unknown as ApiRuntime;
  return { runtime, lines };
}

/** A request to the heartbeat route (or any route: the chain reads only the event). */
function event(
  options: {
    token?: string | null;
    body?: string;
    contentType?: string;
    base64?: boolean;
    ip?: string;
  } = {},
): APIGatewayProxyEventV2 {
  const token = options.token === undefined ? TOKENS.reporter : options.token;
  return apiEvent(routes.postHeartbeats, {
    token: token ?? undefined,
    body: options.body,
    contentType: options.contentType,
    base64: options.base64 ?? false,
    ...(options.ip === undefined ? {} : { pathParameters: { ip: options.ip } }),
  });
}

/** Runs one request through a route's chain with `handle` as the handler body. */
async function call(
  handle: (request: ApiRequest) => Promise<HttpResponse>,
  request: APIGatewayProxyEventV2,
  options: { route?: HttpRoute; maxBodyBytes?: number } = {},
) {
  const { runtime, lines } = fakeRuntime();
  const lambda = apiHandler(
    options.route ?? routes.postHeartbeats,
    runtime,
    handle,
    { maxBodyBytes: options.maxBodyBytes ?? 1024 },
  );
  const response = (await lambda(
    request,
    lambdaContext('test'),
  )) as HttpResponse;
  const body = response.body ? JSON.parse(response.body) : undefined;
  return { response, body, lines };
}

const echo = async (request: ApiRequest) =>
  ok({ body: request.body, role: request.role, now: request.now });

describe('apiHandler auth', () => {
  it('answers 401 with a JSON error and a Bearer challenge when the token is missing', async () => {
    const { response, body } = await call(echo, event({ token: null }));
    expect(response.statusCode).toBe(401);
    expect(response.headers?.['www-authenticate']).toMatch(
      /^Bearer realm="relaywatch"/,
    );
    expect(response.headers?.['content-type']).toMatch(/^application\/json/);
    expect(body).toEqual({
      code: 'unauthorized',
      error: expect.stringContaining('bearer token'),
    });
  });

  it('answers 401 when the authorization header is not a bearer token', async () => {
    const request = event({ token: null });
    request.headers.authorization = `Basic ${Buffer.from('a:b').toString('base64')}`;
    expect((await call(echo, request)).response.statusCode).toBe(401);
  });

  it('answers 401 with invalid_token to an unknown token', async () => {
    const { response, body } = await call(echo, event({ token: 'guess' }));
    expect(response.statusCode).toBe(401);
    expect(response.headers?.['www-authenticate']).toContain(
      'error="invalid_token"',
    );
    expect(body).toEqual({ code: 'unauthorized', error: 'unknown token' });
  });

  it('answers 403 naming the role needed to a token of the wrong role', async () => {
    const { response, body } = await call(
      echo,
      event({ token: TOKENS.reader }),
    );
    expect(response.statusCode).toBe(403);
    expect(body).toEqual({
      code: 'forbidden',
      error: expect.stringContaining('reporter role'),
    });
  });

  it('lets an admin token through a reader route', async () => {
    const { response, body } = await call(
      echo,
      event({ token: TOKENS.admin }),
      { route: routes.getBlocklist },
    );
    expect(response.statusCode).toBe(200);
    expect(body.role).toBe('admin');
  });

  it('checks the token before reading the body', async () => {
    const { response } = await call(
      echo,
      event({ token: null, body: 'x'.repeat(5000), contentType: 'text/plain' }),
    );
    expect(response.statusCode).toBe(401);
  });

  it('never echoes the token it refused', async () => {
    const { response } = await call(echo, event({ token: 'leaky-token-123' }));
    expect(response.body).not.toContain('leaky-token-123');
  });
});

describe('apiHandler body', () => {
  it('hands the parsed JSON body and the runtime clock to the handler', async () => {
    const { response, body } = await call(echo, event({ body: '{"a":[1,2]}' }));
    expect(response.statusCode).toBe(200);
    expect(body).toEqual({ body: { a: [1, 2] }, role: 'reporter', now: NOW });
  });

  it('decodes a base64-encoded body', async () => {
    const { body } = await call(
      echo,
      event({
        body: Buffer.from('{"a":"é"}').toString('base64'),
        base64: true,
      }),
    );
    expect(body.body).toEqual({ a: 'é' });
  });

  it('passes an undefined body when there is none', async () => {
    const { body } = await call(echo, event({}));
    expect(body).not.toHaveProperty('body');
  });

  it('parses JSON when no content type is sent', async () => {
    const request = event({ body: '{"a":1}' });
    delete request.headers['content-type'];
    expect((await call(echo, request)).body.body).toEqual({ a: 1 });
  });

  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'Application/JSON',
    'application/vnd.relaywatch+json',
  ])('accepts the content type %s', async (contentType) => {
    expect(
      (await call(echo, event({ body: '{}', contentType }))).response
        .statusCode,
    ).toBe(200);
  });

  it.each([
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/jsonp',
    'multipart/form-data; boundary=x',
  ])(
    'answers 415 with a JSON error to the content type %s',
    async (contentType) => {
      const { response, body } = await call(
        echo,
        event({ body: '{}', contentType }),
      );
      expect(response.statusCode).toBe(415);
      expect(body).toEqual({
        code: 'unsupported_media_type',
        error: expect.stringContaining('application/json'),
      });
    },
  );

  it('answers 413 with a JSON error naming the limit to a body over it', async () => {
    const { response, body } = await call(
      echo,
      event({ body: JSON.stringify({ pad: 'x'.repeat(2000) }) }),
      { maxBodyBytes: 1024 },
    );
    expect(response.statusCode).toBe(413);
    expect(body).toEqual({
      code: 'payload_too_large',
      error: expect.stringContaining('1024 bytes'),
    });
  });

  it('counts the limit in UTF-8 bytes, not characters', async () => {
    const text = JSON.stringify({ pad: 'é'.repeat(400) }); // 400 characters, 800 bytes of é
    expect(
      (await call(echo, event({ body: text }), { maxBodyBytes: 600 })).response
        .statusCode,
    ).toBe(413);
  });

  it.each(['{"ip":', 'not json', '{"a":1}}', "{'a':1}"])(
    'answers 400 with a JSON error to the malformed body %j',
    async (text) => {
      const { response, body } = await call(echo, event({ body: text }));
      expect(response.statusCode).toBe(400);
      expect(body).toEqual({
        code: 'invalid_json',
        error: expect.stringMatching(/^body is not valid JSON/),
      });
    },
  );
});

describe('apiHandler error mapping', () => {
  it('writes a 400 with its issues as {"code", "error", "issues"}', async () => {
    const issues = [
      { path: 'heartbeats.3.ip', message: 'must be an IPv4 or IPv6 address' },
    ];
    const { response, body } = await call(
      async () => {
        throw badRequest('invalid heartbeats; nothing was stored', issues);
      },
      event({ body: '{}' }),
    );
    expect(response.statusCode).toBe(400);
    expect(body).toEqual({
      code: 'validation_failed',
      error: 'invalid heartbeats; nothing was stored',
      issues,
    });
  });

  it('writes a 404 without issues', async () => {
    const { response, body } = await call(async () => {
      throw notFound('no such ban');
    }, event({}));
    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ code: 'not_found', error: 'no such ban' });
  });

  it('keeps the headers of an HttpError', async () => {
    const { response } = await call(async () => {
      throw new HttpError(429, 'slow down', undefined, { 'retry-after': '7' });
    }, event({}));
    expect(response.headers?.['retry-after']).toBe('7');
  });

  it('answers a generic 500 to an unexpected error and never echoes its message', async () => {
    const { response, body, lines } = await call(async () => {
      throw new Error(SECRET);
    }, event({}));
    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ code: 'internal', error: 'internal error' });
    expect(response.body).not.toContain('10.1.2.3');
    // The detail goes to the log instead, for the operator.
    expect(
      lines.some(
        (line) => line.level === 'error' && String(line.error).includes(SECRET),
      ),
    ).toBe(true);
  });

  it('answers a generic body to a 5xx HttpError, hiding its message', async () => {
    const { response, body } = await call(async () => {
      throw new HttpError(502, SECRET);
    }, event({}));
    expect(response.statusCode).toBe(502);
    expect(body).toEqual({ code: 'internal', error: 'internal error' });
  });

  it('answers a generic 500 when something that is not an Error is thrown', async () => {
    const { response, body } = await call(async () => {
      throw { message: SECRET };
    }, event({}));
    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ code: 'internal', error: 'internal error' });
  });

  it.each([
    'ThrottlingException',
    'ProvisionedThroughputExceededException',
    'RequestLimitExceeded',
    'InternalServerError',
    'ServiceUnavailable',
    'TimeoutError',
  ])(
    'answers 503 with retry-after when the store fails with %s, without its message',
    async (name) => {
      const { response, body } = await call(async () => {
        const error = new Error(SECRET);
        error.name = name;
        throw error;
      }, event({}));
      expect(response.statusCode).toBe(503);
      expect(response.headers?.['retry-after']).toBe('1');
      expect(body).toEqual({
        code: 'store_unavailable',
        error: expect.stringContaining('retry'),
      });
      expect(response.body).not.toContain('10.1.2.3');
    },
  );

  it('answers 503 when the store gives up on unprocessed writes', async () => {
    const { response } = await call(async () => {
      throw new StoreUnavailableError(
        '3 writes still unprocessed after 6 attempts',
      );
    }, event({}));
    expect(response.statusCode).toBe(503);
  });

  it('answers 500, not 503, to a store validation error', async () => {
    const { response } = await call(async () => {
      const error = new Error(
        'Item size has exceeded the maximum allowed size',
      );
      error.name = 'ValidationException';
      throw error;
    }, event({}));
    expect(response.statusCode).toBe(500);
  });

  it('counts each 5xx in Errors by handler and kind, and a refusal not at all', async () => {
    // Prepare
    const errorsIn = (lines: Record<string, unknown>[]) =>
      lines.filter((line) => line.Errors !== undefined);
    // Act
    const unexpected = await call(async () => {
      throw new Error(SECRET);
    }, event({}));
    const busy = await call(async () => {
      throw new StoreUnavailableError('writes still unprocessed');
    }, event({}));
    const refused = await call(async () => {
      throw badRequest('no');
    }, event({}));
    // Assess
    expect(errorsIn(unexpected.lines)).toEqual([
      expect.objectContaining({
        Errors: 1,
        handler: 'post-heartbeats',
        kind: 'internal',
        service: 'relaywatch',
      }),
    ]);
    expect(errorsIn(busy.lines)).toEqual([
      expect.objectContaining({
        handler: 'post-heartbeats',
        kind: 'store_busy',
      }),
    ]);
    expect(errorsIn(refused.lines)).toEqual([]);
  });

  it('passes a successful response through unchanged', async () => {
    const { response, body } = await call(
      async () => accepted({ accepted: 3 }),
      event({}),
    );
    expect(response.statusCode).toBe(202);
    expect(body).toEqual({ accepted: 3 });
  });
});

describe('httpErrorResponse', () => {
  const JSON_HEADERS = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  };

  it('writes a 4xx HttpError as {"code", "error", "issues"} with its status and headers', () => {
    const issues = [{ path: 'ip', message: 'must be an IP address' }];

    expect(
      httpErrorResponse(
        new HttpError(400, 'invalid ban', issues, { 'x-why': 'test' }),
      ),
    ).toEqual({
      statusCode: 400,
      headers: { ...JSON_HEADERS, 'x-why': 'test' },
      body: JSON.stringify({
        code: 'validation_failed',
        error: 'invalid ban',
        issues,
      }),
    });
    expect(httpErrorResponse(notFound('no such ban'))).toEqual({
      statusCode: 404,
      headers: JSON_HEADERS,
      body: '{"code":"not_found","error":"no such ban"}',
    });
  });

  it('keeps the status and headers of a 5xx HttpError but hides its message', () => {
    expect(
      httpErrorResponse(
        new HttpError(503, SECRET, undefined, { 'retry-after': '1' }),
      ),
    ).toEqual({
      statusCode: 503,
      headers: { ...JSON_HEADERS, 'retry-after': '1' },
      body: '{"code":"internal","error":"internal error"}',
    });
  });

  it.each([new Error(SECRET), { message: SECRET }, undefined])(
    'answers a generic 500 to anything that is not an HttpError (%j)',
    (error) => {
      expect(httpErrorResponse(error)).toEqual({
        statusCode: 500,
        headers: JSON_HEADERS,
        body: '{"code":"internal","error":"internal error"}',
      });
    },
  );
});

describe('pathIp', () => {
  const ipOf = (raw: string) =>
    call(
      async ({ event: request }) => ok({ ip: pathIp(request) }),
      event({ token: TOKENS.admin, ip: raw }),
      { route: routes.putBan },
    );

  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001%3ADB8%3A%3A1', '2001:db8::1'],
    ['2001:DB8:0::1', '2001:db8::1'],
    ['%3A%3Affff%3A192.0.2.1', '192.0.2.1'],
  ])('reads the path ip %s as %s', async (raw, expected) => {
    const { response, body } = await ipOf(raw);
    expect(response.statusCode).toBe(200);
    expect(body).toEqual({ ip: expected });
  });

  it.each(['300.1.2.3', 'relay-7', '', '%20192.0.2.1'])(
    'answers 400 naming ip to the path ip %j',
    async (raw) => {
      const { response, body } = await ipOf(raw);
      expect(response.statusCode).toBe(400);
      expect(body.issues).toEqual([
        { path: 'ip', message: expect.any(String) },
      ]);
    },
  );

  it.each(['%', '%E0%A4%A', '192.0.2.1%zz'])(
    'answers 400 naming ip to malformed percent-encoding %j',
    async (raw) => {
      const { response, body } = await ipOf(raw);
      expect(response.statusCode).toBe(400);
      expect(body.issues).toEqual([
        { path: 'ip', message: expect.any(String) },
      ]);
    },
  );
});
