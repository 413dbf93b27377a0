/**
 * The job API the dispatcher talks to. Every request needs the agent's bearer
 * token; every refusal is the contract's error body, JSON
 * `{"code", "error", "issues": [{"path", "message"}]}`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentErrorCode } from '#contract/errors';
import { errorBody } from '#contract/errors';
import type { HeartbeatStatus } from '#contract/heartbeat';
import type { Logger } from '#contract/log';
import type { InputIssue } from '#contract/validation';
import { parseWith } from '#contract/validation';
import type { RelayJob } from './job.js';
import { JOB_LIMITS, relayJobSchema } from './job.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import type { RelayView } from './relay.js';

export type AddOutcome =
  /** Frames flow (201), neither frames nor a failure within the confirm timeout (202), the same job already exists (200). */
  | { outcome: 'flowing' | 'starting' | 'exists'; relay: RelayView }
  /** The relay failed before it flowed; it is stopped and not kept (502). */
  | {
      outcome: 'failed';
      status: HeartbeatStatus;
      cause: string;
      detail: string;
    }
  /** DELETE, or the agent stopping, ended the relay before it flowed or failed (409). */
  | { outcome: 'stopped' }
  | { outcome: 'conflict' }
  | { outcome: 'limit'; limit: number };

/** What the API needs from the agent, and nothing more. */
export type RelayRegistry = {
  /** Starts the relay and answers once its start is confirmed, refused, or the confirm timeout passed. */
  add(job: RelayJob): Promise<AddOutcome>;
  get(id: string): RelayView | undefined;
  list(): RelayView[];
  /** Stops the relay's ffmpeg; false when no such relay. */
  remove(id: string): Promise<boolean>;
  status(): unknown;
  /** The counters and gauges in Prometheus text format. */
  metrics(): string;
};

/** A request line longer than this is refused before routing (414). */
const MAX_REQUEST_PATH = JOB_LIMITS.maxIdLength * 3 + 64;

/** The sentence of each code; what exactly was wrong is in the issues. */
const SENTENCES: Record<AgentErrorCode, string> = {
  invalid_json: 'the body is not JSON',
  invalid_relay: 'the relay job is not valid',
  invalid_id: 'the relay id is not valid',
  unauthorized: 'the agent token is missing or wrong',
  not_found: 'no such route',
  relay_not_found: 'no such relay',
  method_not_allowed: 'this method is not allowed here',
  relay_exists: 'a relay with this id runs another job',
  relay_stopped: 'the relay was stopped before it flowed or failed',
  relay_limit: 'this agent runs its maximum number of relays',
  body_too_large: 'the body is too large',
  uri_too_long: 'the request path is too long',
  unsupported_media_type: 'the body must be application/json',
  internal: 'internal error',
  relay_failed: 'the relay failed before it flowed; the job was not kept',
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: AgentErrorCode,
    readonly issues: InputIssue[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(SENTENCES[code]);
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function send(
  response: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (body === undefined) {
    response.writeHead(status, headers).end();
    return;
  }
  response
    .writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      ...headers,
    })
    .end(`${JSON.stringify(body)}\n`);
}

function readBody(request: IncomingMessage): Promise<string> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > JOB_LIMITS.maxBodyBytes) {
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > JOB_LIMITS.maxBodyBytes) {
        request.removeAllListeners('data');
        request.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function tooLarge(): ApiError {
  return new ApiError(413, 'body_too_large', [
    {
      path: '(body)',
      message: `must be at most ${JOB_LIMITS.maxBodyBytes} bytes`,
    },
  ]);
}

function relayId(encoded: string): string {
  let id: string;
  try {
    id = decodeURIComponent(encoded);
  } catch {
    throw new ApiError(400, 'invalid_id', [
      { path: 'id', message: 'is not valid percent-encoding' },
    ]);
  }
  const parsed = parseWith(relayJobSchema.shape.id, id);
  if (!parsed.ok) {
    throw new ApiError(
      400,
      'invalid_id',
      parsed.issues.map((issue) => ({ ...issue, path: 'id' })),
    );
  }
  return id;
}

function methodNotAllowed(allowed: string): ApiError {
  return new ApiError(405, 'method_not_allowed', [], { allow: allowed });
}

export function createJobApi(options: {
  token: string;
  registry: RelayRegistry;
  log: Logger;
}) {
  const { registry, log } = options;
  const expected = digest(options.token);

  async function postRelay(
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const type = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) {
      throw new ApiError(415, 'unsupported_media_type', [
        { path: 'content-type', message: 'must be application/json' },
      ]);
    }
    const text = await readBody(request);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new ApiError(400, 'invalid_json', [
        { path: '(body)', message: `is not JSON: ${(error as Error).message}` },
      ]);
    }
    const parsed = parseWith(relayJobSchema, body);
    if (!parsed.ok) throw new ApiError(400, 'invalid_relay', parsed.issues);
    const added = await registry.add(parsed.value);
    const location = {
      location: `/relays/${encodeURIComponent(parsed.value.id)}`,
    };
    switch (added.outcome) {
      case 'flowing':
      case 'starting':
        log.info('relay added', {
          relay: parsed.value.id,
          state: added.relay.state,
        });
        return send(
          response,
          added.outcome === 'flowing' ? 201 : 202,
          added.relay,
          location,
        );
      case 'failed':
        // Not a refusal of the request: the relay ran and failed; the job is not kept.
        return send(response, 502, {
          ...errorBody(
            'relay_failed',
            `${SENTENCES.relay_failed} (${added.status}, ${added.cause})`,
          ),
          status: added.status,
          cause: added.cause,
          detail: added.detail,
        });
      case 'stopped':
        throw new ApiError(409, 'relay_stopped', [
          {
            path: 'id',
            message:
              'was deleted, or the agent stopped, before the relay flowed or failed',
          },
        ]);
      case 'exists':
        return send(response, 200, added.relay);
      case 'conflict':
        throw new ApiError(409, 'relay_exists', [
          {
            path: 'id',
            message:
              'already names a relay with another source or target; DELETE it first',
          },
        ]);
      case 'limit':
        throw new ApiError(409, 'relay_limit', [
          {
            path: '(body)',
            message: `this agent already runs its maximum of ${added.limit} relays`,
          },
        ]);
    }
  }

  async function route(
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const url = request.url ?? '/';
    if (url.length > MAX_REQUEST_PATH) {
      throw new ApiError(414, 'uri_too_long', [
        {
          path: '(url)',
          message: `must be at most ${MAX_REQUEST_PATH} characters`,
        },
      ]);
    }
    // The scheme is case-insensitive (RFC 9110); digests make the comparison constant-time.
    const presented =
      /^Bearer +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
    if (!timingSafeEqual(digest(presented), expected)) {
      throw new ApiError(
        401,
        'unauthorized',
        [{ path: 'authorization', message: 'must be "Bearer <agent token>"' }],
        { 'www-authenticate': 'Bearer' },
      );
    }
    const path = url.split('?')[0] ?? '/';
    const method = request.method ?? 'GET';
    if (path === '/relays') {
      if (method === 'GET')
        return send(response, 200, { relays: registry.list() });
      if (method === 'POST') return postRelay(request, response);
      throw methodNotAllowed('GET, POST');
    }
    const one = /^\/relays\/([^/]+)$/.exec(path);
    if (one) {
      const id = relayId(one[1] ?? '');
      if (method === 'GET') {
        const relay = registry.get(id);
        if (relay === undefined)
          throw new ApiError(404, 'relay_not_found', [
            { path: 'id', message: 'no such relay' },
          ]);
        return send(response, 200, relay);
      }
      if (method === 'DELETE') {
        if (!(await registry.remove(id))) {
          throw new ApiError(404, 'relay_not_found', [
            { path: 'id', message: 'no such relay' },
          ]);
        }
        log.info('relay removed', { relay: id });
        return send(response, 204);
      }
      throw methodNotAllowed('GET, DELETE');
    }
    if (path === '/metrics') {
      if (method !== 'GET') throw methodNotAllowed('GET');
      response
        .writeHead(200, {
          'content-type': PROMETHEUS_CONTENT_TYPE,
          'cache-control': 'no-store',
        })
        .end(registry.metrics());
      return;
    }
    if (path === '/status') {
      if (method === 'GET') return send(response, 200, registry.status());
      throw methodNotAllowed('GET');
    }
    throw new ApiError(404, 'not_found', [
      { path: '(url)', message: 'no such route' },
    ]);
  }

  return (request: IncomingMessage, response: ServerResponse): void => {
    route(request, response).catch((error: unknown) => {
      if (response.headersSent) return;
      if (error instanceof ApiError) {
        // A refused body may still be arriving; do not keep the connection for it.
        const closing: Record<string, string> =
          error.status === 413 ? { connection: 'close' } : {};
        send(
          response,
          error.status,
          errorBody(error.code, error.message, error.issues),
          { ...error.headers, ...closing },
        );
        return;
      }
      log.error('job API failure', {
        error: error as Error,
        method: request.method,
      });
      send(response, 500, errorBody('internal', SENTENCES.internal, []));
    });
  };
}
