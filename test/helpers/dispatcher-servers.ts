/**
 * Loopback HTTP servers for the dispatcher's integration tests: a fake status
 * center that speaks the documented GET /v1/blocklist contract (bearer roles,
 * ETag, 304) and can be told to fail, and a relay agent that records jobs and
 * answers from the agent's POST /relays contract.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Agent } from '../../clients/dispatcher/index.js';
import type { BlocklistEntry } from '../../functions/core/blocklist.js';
import { blocklistEtag } from '../../functions/core/blocklist.js';
import { AGENT_TOKEN, JOB } from './dispatcher-fakes.js';

export type SeenHttpRequest = {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
};

/** Serves on a free loopback port; resolves with its base URL. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const sendJson = (
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) => {
  response.writeHead(status, {
    'content-type': 'application/json',
    ...headers,
  });
  response.end(JSON.stringify(body));
};

/** What the fake answers besides the normal list: a status code, or never answering. */
export type FakeFault = { status: number } | 'hang' | null;

export type FakeStatusCenter = {
  url: string;
  tokens: { reader: string; reporter: string };
  requests: SeenHttpRequest[];
  setEntries(entries: BlocklistEntry[]): void;
  setFault(fault: FakeFault): void;
  stop(): Promise<void>;
};

export async function startFakeStatusCenter(): Promise<FakeStatusCenter> {
  const tokens = {
    reader: 'reader-fake-token',
    reporter: 'reporter-fake-token',
  };
  const requests: SeenHttpRequest[] = [];
  let entries: BlocklistEntry[] = [];
  let fault: FakeFault = null;
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    requests.push({
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body,
    });
    if (fault === 'hang') return;
    if (fault !== null)
      return sendJson(response, fault.status, {
        error: 'fault injected by the test',
      });
    if (request.method !== 'GET' || request.url !== '/v1/blocklist')
      return sendJson(response, 404, { error: 'not found' });
    const token = /^Bearer (\S+)$/.exec(
      request.headers.authorization ?? '',
    )?.[1];
    if (token === tokens.reporter)
      return sendJson(response, 403, { error: 'forbidden' });
    if (token !== tokens.reader)
      return sendJson(response, 401, {
        error: 'missing or unknown bearer token',
      });
    const etag = blocklistEtag(entries);
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, { etag });
      return response.end();
    }
    sendJson(
      response,
      200,
      { generatedAt: new Date().toISOString(), entries },
      { etag, 'cache-control': 'no-cache' },
    );
  });
  const url = await listen(server);
  return {
    url,
    tokens,
    requests,
    setEntries: (next) => {
      entries = next;
    },
    setFault: (next) => {
      fault = next;
    },
    stop: () => close(server),
  };
}

export type FakeAgent = {
  url: string;
  token: string;
  posts: SeenHttpRequest[];
  stop(): Promise<void>;
};

/** What a scripted fake agent does with one request: answer, never answer, or close the connection. */
export type AgentReply = { status: number; body?: unknown } | 'hang' | 'drop';

/**
 * A relay agent that records every request (in `posts`, GETs and DELETEs too)
 * and, once the token checks out, answers from `reply`; by default it accepts
 * POST /relays with `status` (202) and `{"id", "state": "starting"}`.
 */
export async function startFakeAgent(
  options: {
    token?: string;
    status?: number;
    reply?: (request: SeenHttpRequest) => AgentReply;
  } = {},
): Promise<FakeAgent> {
  const token = options.token ?? AGENT_TOKEN;
  const posts: SeenHttpRequest[] = [];
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const seen = {
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body,
    };
    posts.push(seen);
    if (request.headers.authorization !== `Bearer ${token}`)
      return sendJson(response, 401, { error: 'bad token' });
    if (options.reply !== undefined) {
      const reply = options.reply(seen);
      if (reply === 'hang') return;
      if (reply === 'drop') return void request.socket.destroy();
      if (reply.body === undefined)
        return void response.writeHead(reply.status).end();
      return sendJson(response, reply.status, reply.body);
    }
    if (request.method !== 'POST' || request.url !== '/relays')
      return sendJson(response, 404, { error: 'not found' });
    const status = options.status ?? 202;
    sendJson(
      response,
      status,
      status < 300
        ? { id: JSON.parse(body).id, state: 'starting' }
        : { error: 'refused by the test' },
    );
  });
  const url = await listen(server);
  return { url, token, posts, stop: () => close(server) };
}

/** How a scripted fake agent answers one request. */
type AgentHandler = (request: SeenHttpRequest) => AgentReply;

/** 201 flowing: the relay of the JOB runs. */
export const flowing = (): AgentReply => ({
  status: 201,
  body: { ...JOB, status: 'ok', state: 'flowing' },
});

/** 502 relay_failed: the relay failed before it flowed, with ffmpeg's `status` and `detail`. */
export const failedStart = (status: string, detail: string): AgentReply => ({
  status: 502,
  body: {
    code: 'relay_failed',
    error: 'the relay failed before it flowed; the job was not kept',
    status,
    detail,
  },
});

/** 502 connect_failed: this agent cannot reach the origin. */
export const connectFailed = () =>
  failedStart(
    'connect_failed',
    'Connection to tcp://origin.example:1935 failed: Connection timed out',
  );

/** 400 invalid_relay naming one bad field: the job itself is bad. */
export const invalidJob =
  (path: string, message: string) => (): AgentReply => ({
    status: 400,
    body: {
      code: 'invalid_relay',
      error: 'the relay job is not valid',
      issues: [{ path, message }],
    },
  });

/** 409 relay_exists: a relay under this id is already there. */
export const relayExists = (): AgentReply => ({
  status: 409,
  body: {
    code: 'relay_exists',
    error: 'a relay with this id runs another job',
  },
});

/** Answers POST /relays with `post`, and GET or DELETE /relays/{id} with `other` (404 unless given). */
export const onPost =
  (
    post: AgentHandler,
    other: AgentHandler = () => ({
      status: 404,
      body: { code: 'relay_not_found', error: 'no such relay' },
    }),
  ): AgentHandler =>
  (request) =>
    request.method === 'POST' ? post(request) : other(request);

/** The fake agents as the dispatcher sees them: machines 198.51.100.1, .2, … in order. */
const agentsOf = (fakes: FakeAgent[]): Agent[] =>
  fakes.map((fake, i) => ({ url: fake.url, ip: `198.51.100.${i + 1}` }));

/** The --agent flags of agentsOf(fakes). */
export const agentFlags = (fakes: FakeAgent[]) =>
  agentsOf(fakes).flatMap(({ url, ip }) => ['--agent', `${url}=${ip}`]);

/** How many jobs (POSTs) each fake agent was sent. */
export const postsTo = (fakes: FakeAgent[]) =>
  fakes.map((fake) => fake.posts.filter((r) => r.method === 'POST').length);

/**
 * Starts fake agents and remembers them, so one stopAll() in afterEach stops
 * every agent a test started.
 */
export function fakeAgentPool() {
  const started: FakeAgent[] = [];
  const start = async (options?: Parameters<typeof startFakeAgent>[0]) => {
    const fake = await startFakeAgent(options);
    started.push(fake);
    return fake;
  };
  return {
    start,
    /** One agent per handler, each answering POST /relays with it (onPost). */
    async answering(...posts: AgentHandler[]) {
      const fakes = await Promise.all(
        posts.map((post) => start({ reply: onPost(post) })),
      );
      return { fakes, agents: agentsOf(fakes), flags: agentFlags(fakes) };
    },
    stopAll: async () => {
      await Promise.all(started.splice(0).map((fake) => fake.stop()));
    },
  };
}
