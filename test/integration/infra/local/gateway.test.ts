import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HttpError } from '../../../../functions/http/errors.js';
import { ok } from '../../../../functions/http/responses.js';
import type { Gateway } from '../../../../infra/local/gateway.js';
import { startGateway } from '../../../../infra/local/gateway.js';
import { deferred } from '../../../helpers/deferred.js';

const SECRET = 'table arn:aws:dynamodb:eu-west-1:123456789012:table/x';

/** Status, the headers an error response sets, and the body, as a client sees them. */
async function answer(response: Response) {
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control'),
    body: await response.json(),
  };
}

/** The gateway's own answers and its answer to a handler that throws: no DynamoDB needed. */
describe('the local gateway’s error responses', () => {
  let gateway: Gateway;

  beforeAll(async () => {
    gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      routes: [
        {
          name: 'getThing',
          route: { method: 'GET', path: '/things/{id}' },
          handler: async () => ok({ thing: true }),
        },
        {
          name: 'putThing',
          route: { method: 'PUT', path: '/things/{id}' },
          handler: async () => {
            throw new Error(SECRET);
          },
        },
        {
          name: 'postThing',
          route: { method: 'POST', path: '/things/{id}' },
          handler: async () => {
            throw new HttpError(404, SECRET);
          },
        },
      ],
    });
  });
  afterAll(() => gateway.close());

  it('answers 404 route_not_found as JSON to a path no route has', async () => {
    const response = await fetch(`${gateway.url}/nothing/here`);

    expect(await answer(response)).toEqual({
      status: 404,
      contentType: 'application/json; charset=utf-8',
      cacheControl: 'no-store',
      body: {
        code: 'route_not_found',
        error: 'no route for GET /nothing/here',
      },
    });
  });

  it('answers 405 method_not_allowed naming the allowed methods', async () => {
    const response = await fetch(`${gateway.url}/things/7`, {
      method: 'DELETE',
    });

    expect(await answer(response)).toEqual({
      status: 405,
      contentType: 'application/json; charset=utf-8',
      cacheControl: 'no-store',
      body: {
        code: 'method_not_allowed',
        error: 'DELETE is not allowed on /things/7; allowed: GET, PUT, POST',
      },
    });
  });

  it('answers a generic 500 to a handler that throws, whatever it threw, and logs it', async () => {
    const stderr = vi
      .spyOn(process.stderr, 'write')
      .mockImplementation(() => true);
    try {
      const thrown = await fetch(`${gateway.url}/things/7`, { method: 'PUT' });
      const httpError = await fetch(`${gateway.url}/things/7`, {
        method: 'POST',
      });

      for (const response of [thrown, httpError]) {
        expect(await answer(response)).toEqual({
          status: 500,
          contentType: 'application/json; charset=utf-8',
          cacheControl: 'no-store',
          body: { code: 'internal', error: 'internal error' },
        });
      }
      const logged = stderr.mock.calls.map(([line]) => String(line));
      expect(logged.filter((line) => line.includes('handler threw'))).toEqual([
        expect.stringContaining(SECRET),
        expect.stringContaining(SECRET),
      ]);
    } finally {
      stderr.mockRestore();
    }
  });
});

describe('closing the local gateway', () => {
  it('answers a request under way before it closes, and refuses new connections meanwhile', async () => {
    const inHandler = deferred();
    const finished = deferred();
    const gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      routes: [
        {
          name: 'slowThing',
          route: { method: 'GET', path: '/slow' },
          handler: async () => {
            inHandler.resolve();
            await finished.promise;
            return ok({ slow: true });
          },
        },
      ],
    });
    const under = fetch(`${gateway.url}/slow`);
    await inHandler.promise;

    let closed = false;
    const closing = gateway.close().then(() => (closed = true));
    await expect(fetch(`${gateway.url}/slow`)).rejects.toThrow();
    expect(closed).toBe(false);

    finished.resolve();
    const response = await under;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ slow: true });
    await closing;
    expect(closed).toBe(true);
  });
});
