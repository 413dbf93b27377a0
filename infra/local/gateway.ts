import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { HttpError, httpErrorResponse } from '../../functions/http/errors.js';
import type { HttpRoute } from '../../functions/routes.js';
import { createInFlight, STOP_WAIT_MS } from './in-flight.js';
import { lambdaContext } from './lambda-context.js';

export type HttpLambda = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2 | undefined>;

export type GatewayRoute = {
  name: string;
  route: Pick<HttpRoute, 'method' | 'path'>;
  handler: HttpLambda;
};

/** API Gateway HTTP APIs refuse payloads over 10 MB; so does the local gateway. */
export const GATEWAY_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

type CompiledRoute = GatewayRoute & { pattern: RegExp; params: string[] };

function compile(route: GatewayRoute): CompiledRoute {
  const params: string[] = [];
  const source = route.route.path
    .split('/')
    .map((part) => {
      const param = part.match(/^\{(\w+)\}$/);
      if (!param?.[1]) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      params.push(param[1]);
      return '([^/]+)';
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}$`), params };
}

/** API Gateway's own answer to an oversized payload: 413, and the connection is not reused. */
const payloadTooLarge = () =>
  new HttpError(
    413,
    `payload over ${GATEWAY_MAX_PAYLOAD_BYTES} bytes`,
    undefined,
    {
      connection: 'close',
    },
  );

/** After a 413, the rest of an oversized body is read and dropped (so the client sees the answer, not a reset), up to this much. */
const DRAIN_MAX_BYTES = 4 * GATEWAY_MAX_PAYLOAD_BYTES;
const DRAIN_MAX_MS = 10_000;

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > GATEWAY_MAX_PAYLOAD_BYTES) {
      reject(payloadTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > GATEWAY_MAX_PAYLOAD_BYTES) {
        request.off('data', onData);
        reject(payloadTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/**
 * Drops what is left of an oversized body, bounded in bytes and time, then
 * closes the connection. Destroying the socket at once would make the client
 * see a reset instead of the 413.
 */
function drainAndClose(request: IncomingMessage): void {
  let drained = 0;
  const close = () => {
    clearTimeout(timer);
    request.socket.destroy();
  };
  const timer = setTimeout(close, DRAIN_MAX_MS);
  timer.unref();
  request.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_MAX_BYTES) close();
  });
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
  request.resume();
}

/** Turns a node:http request into the API Gateway v2 (HTTP API) event a Lambda receives. */
export function toApiGatewayEvent(
  request: IncomingMessage,
  body: Buffer,
  match: { routeKey: string; pathParameters: Record<string, string> },
): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined)
      headers[name.toLowerCase()] = Array.isArray(value)
        ? value.join(',')
        : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = name in query ? `${query[name]},${value}` : value;
  const now = new Date();
  const text = body.toString('utf8');
  // Like API Gateway: bodies that are not valid UTF-8 arrive base64-encoded.
  const binary = !Buffer.from(text, 'utf8').equals(body);
  return {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(Object.keys(match.pathParameters).length
      ? { pathParameters: match.pathParameters }
      : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: match.routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length
      ? {
          body: binary ? body.toString('base64') : text,
          isBase64Encoded: binary,
        }
      : { isBase64Encoded: false }),
  };
}

function send(
  response: ServerResponse,
  result: APIGatewayProxyStructuredResultV2 | undefined,
): void {
  const statusCode = result?.statusCode ?? 200;
  const headers = { ...(result?.headers ?? {}) } as Record<
    string,
    string | number | boolean
  >;
  let body: string | Buffer = result?.body ?? '';
  if (result?.isBase64Encoded) body = Buffer.from(result.body ?? '', 'base64');
  response.writeHead(statusCode, headers as Record<string, string>);
  response.end(statusCode === 204 || statusCode === 304 ? undefined : body);
}

export type Gateway = {
  url: string;
  port: number;
  server: Server;
  /** Stops listening, lets the requests under way be answered (up to STOP_WAIT_MS), then closes every connection. */
  close(): Promise<void>;
};

/**
 * Serves the route table over HTTP, turning each request into the event API
 * Gateway would send and the handler's result back into a response, so the
 * same handler code answers locally and in Lambda.
 */
export async function startGateway(options: {
  host: string;
  port: number;
  routes: readonly GatewayRoute[];
}): Promise<Gateway> {
  const compiled = options.routes.map(compile);
  const handling = createInFlight();
  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const candidates = compiled.filter((route) => route.pattern.test(path));
    const route = candidates.find(
      (candidate) => candidate.route.method === request.method,
    );
    if (!route) {
      send(
        response,
        httpErrorResponse(
          candidates.length
            ? new HttpError(
                405,
                `${request.method} is not allowed on ${path}; allowed: ${candidates.map((c) => c.route.method).join(', ')}`,
                undefined,
                undefined,
                'method_not_allowed',
              )
            : new HttpError(
                404,
                `no route for ${request.method} ${path}`,
                undefined,
                undefined,
                'route_not_found',
              ),
        ),
      );
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(request);
    } catch (error) {
      if (error instanceof HttpError) {
        // The size cap, the one refusal while reading: the connection is not reused.
        response.shouldKeepAlive = false;
        send(response, httpErrorResponse(error));
        drainAndClose(request);
      } else {
        send(
          response,
          httpErrorResponse(
            new HttpError(
              400,
              'could not read the request body',
              undefined,
              undefined,
              'validation_failed',
            ),
          ),
        );
      }
      return;
    }
    const values = path.match(route.pattern)?.slice(1) ?? [];
    const pathParameters = Object.fromEntries(
      route.params.map((name, i) => [name, values[i] ?? '']),
    );
    const event = toApiGatewayEvent(request, body, {
      routeKey: `${route.route.method} ${route.route.path}`,
      pathParameters,
    });
    try {
      send(
        response,
        await handling.track(
          Promise.resolve(route.handler(event, lambdaContext(route.name))),
        ),
      );
    } catch (error) {
      // A handler that throws is a 500 in API Gateway too, whatever it threw
      // (an HttpError included: Lambda does not read it); say so without details.
      process.stderr.write(
        `${JSON.stringify({ level: 'error', message: 'handler threw', route: route.name, error: String(error) })}\n`,
      );
      send(response, httpErrorResponse(new HttpError(500, 'handler threw')));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost =
    options.host === '0.0.0.0' || options.host === '::'
      ? '127.0.0.1'
      : options.host;
  return {
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`,
    port,
    server,
    async close() {
      const closed = new Promise<void>((resolve) =>
        server.close(() => resolve()),
      );
      // Requests under way get their answers (up to STOP_WAIT_MS), so no
      // handler goes on after close() against what stops next.
      server.closeIdleConnections();
      const left = await handling.settled();
      if (left)
        process.stderr.write(
          `${JSON.stringify({ level: 'warn', message: 'gateway closed with requests still being handled', requests: left, waitedMs: STOP_WAIT_MS })}\n`,
        );
      server.closeAllConnections();
      await closed;
    },
  };
}
