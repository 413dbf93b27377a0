/**
 * Running the real agent in a test: short intervals, a free port, captured
 * logs, a client for its job API, and a heartbeat recorder that stands in for
 * the status center or sits in front of a real one to simulate outages.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '../../clients/agent/agent.js';
import { startAgent } from '../../clients/agent/agent.js';
import type { AgentConfig } from '../../clients/agent/config.js';
import { parseAgentConfig } from '../../clients/agent/config.js';
import type { TestOrigin, TestSink } from '../../clients/test-stream/media.js';
import {
  createTestFlv,
  startOrigin,
  startSink,
} from '../../clients/test-stream/media.js';
import type { Heartbeat } from '../../functions/core/heartbeat.js';
import { createLogger } from '../../functions/log.js';
import { sendRequest } from './http.js';
import type { TestStatusCenter } from './status-center.js';
import { startStatusCenter } from './status-center.js';

/** Polls until `check` returns a value other than undefined/false; bounded. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs: number; everyMs?: number } = { timeoutMs: 10_000 },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${options.timeoutMs} ms waiting for ${what}`,
      );
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}

export type RecordedPost = {
  receivedAt: number;
  batchId: string;
  heartbeats: Heartbeat[];
  authorization: string;
  /** What happened to it: answered by the recorder, forwarded, refused, or dropped after forwarding. */
  fate: 'accepted' | 'forwarded' | 'unavailable' | 'forwarded-then-dropped';
};

export type RecorderMode =
  /** Answer 202 (or forward to the upstream and pass its answer back). */
  | 'up'
  /** Answer 503 without storing anything. */
  | 'unavailable'
  /** Store (forward) the batch, then cut the connection before the answer: a lost ack. */
  | 'store-then-drop';

export type HeartbeatRecorder = {
  url: string;
  /** Every report that carried heartbeats. */
  posts: RecordedPost[];
  /** Lease renewals: reports of an agent with nothing to report (no heartbeats). */
  renewals: RecordedPost[];
  /** Every heartbeat stored (a batch sent twice appears twice), with the time its request arrived. */
  received(): (Heartbeat & { receivedAt: number })[];
  setMode(mode: RecorderMode): void;
  stop(): Promise<void>;
};

/**
 * Receives POST /v1/heartbeats. Without `upstream` it answers like the status
 * center (202 {"accepted"}); with it, it forwards to a real status center.
 */
export async function startHeartbeatRecorder(
  options: { upstream?: string; host?: string } = {},
): Promise<HeartbeatRecorder> {
  const posts: RecordedPost[] = [];
  const renewals: RecordedPost[] = [];
  const sockets = new Set<Socket>();
  let mode: RecorderMode = 'up';
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', async () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const authorization = request.headers.authorization ?? '';
      let body: { batchId?: string; heartbeats?: Heartbeat[] } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // recorded as empty; the agent never sends this
      }
      const record = (fate: RecordedPost['fate']) => {
        const post = {
          receivedAt: Date.now(),
          batchId: body.batchId ?? '',
          heartbeats: body.heartbeats ?? [],
          authorization,
          fate,
        };
        (post.heartbeats.length ? posts : renewals).push(post);
      };
      if (request.url !== '/v1/heartbeats' || request.method !== 'POST') {
        response.writeHead(404).end();
        return;
      }
      if (mode === 'unavailable') {
        record('unavailable');
        response
          .writeHead(503, { 'content-type': 'application/json' })
          .end('{"error":"unavailable","issues":[]}');
        return;
      }
      let status = 202;
      let answer = JSON.stringify({ accepted: body.heartbeats?.length ?? 0 });
      if (options.upstream) {
        const forwarded = await fetch(`${options.upstream}/v1/heartbeats`, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: text,
          signal: AbortSignal.timeout(10_000),
        });
        status = forwarded.status;
        answer = await forwarded.text();
      }
      if (mode === 'store-then-drop') {
        record('forwarded-then-dropped');
        request.socket.destroy();
        return;
      }
      record(options.upstream ? 'forwarded' : 'accepted');
      response
        .writeHead(status, { 'content-type': 'application/json' })
        .end(answer);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    posts,
    renewals,
    received: () =>
      posts
        .filter((post) => post.fate !== 'unavailable')
        .flatMap((post) =>
          post.heartbeats.map((heartbeat) => ({
            ...heartbeat,
            receivedAt: post.receivedAt,
          })),
        ),
    setMode: (next) => {
      mode = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Settings that make a test agent report, detect and retry within seconds. */
export const FAST_AGENT_ENV: Record<string, string> = {
  RELAYWATCH_AGENT_PORT: '0',
  RELAYWATCH_AGENT_INTERVAL: '2',
  RELAYWATCH_AGENT_CHANGE_GAP: '0.5',
  RELAYWATCH_AGENT_IO_TIMEOUT: '2',
  RELAYWATCH_AGENT_PROGRESS_PERIOD: '0.5',
  RELAYWATCH_AGENT_STALL_CHECK: '1',
  RELAYWATCH_AGENT_STALL_TIMEOUT: '2',
  RELAYWATCH_AGENT_ORIGIN_CHECK_TIMEOUT: '1',
  RELAYWATCH_AGENT_STARTUP_TIMEOUT: '10',
  RELAYWATCH_AGENT_RETRY_MIN: '0.3',
  RELAYWATCH_AGENT_RETRY_MAX: '2',
  RELAYWATCH_AGENT_STOP_GRACE: '2',
  RELAYWATCH_AGENT_PROBE_TIMEOUT: '1',
  RELAYWATCH_AGENT_PROBE_ORIGINS: 'false',
  RELAYWATCH_AGENT_REPORT_TIMEOUT: '3',
  RELAYWATCH_AGENT_REPORT_RETRY_MAX: '1',
  RELAYWATCH_AGENT_LOG_LEVEL: 'debug',
};

/**
 * The environment of a test agent: its status center, its tokens, an IP from
 * a documentation range (RFC 5737, unique per agent; data only), the fast
 * settings, then `env`.
 */
function testAgentEnv(options: {
  statusUrl: string;
  reporterToken?: string;
  agentToken: string;
  env?: Record<string, string>;
}): Record<string, string> {
  return {
    RELAYWATCH_URL: options.statusUrl,
    RELAYWATCH_REPORTER_TOKEN: options.reporterToken ?? 'reporter-token',
    RELAYWATCH_AGENT_TOKEN: options.agentToken,
    RELAYWATCH_AGENT_IP: `198.51.100.${1 + Math.floor(Math.random() * 254)}`,
    ...FAST_AGENT_ENV,
    ...options.env,
  };
}

export type ApiAnswer = {
  status: number;
  headers: Headers;
  json: any;
  text: string;
};

export type TestAgent = {
  agent: Agent;
  config: AgentConfig;
  logs: Record<string, unknown>[];
  /** Calls the job API with the agent token (or `token`, or none with `token: null`). */
  request(
    method: string,
    path: string,
    options?: {
      body?: unknown;
      token?: string | null;
      headers?: Record<string, string>;
    },
  ): Promise<ApiAnswer>;
  stop(): Promise<void>;
};

/** A client for the job API at `url`: the agent token unless `token` says otherwise (null: none). */
function jobApi(url: string, agentToken: string): TestAgent['request'] {
  return (method, path, requestOptions = {}) => {
    const token =
      requestOptions.token === undefined ? agentToken : requestOptions.token;
    return sendRequest(`${url}${path}`, method, {
      ...requestOptions,
      token: token ?? undefined,
      timeoutMs: 30_000,
    });
  };
}

/** Starts the agent in this process (see testAgentEnv). */
export async function startTestAgent(options: {
  statusUrl: string;
  reporterToken?: string;
  env?: Record<string, string>;
}): Promise<TestAgent> {
  const agentToken = `agent-${randomBytes(12).toString('hex')}`;
  const config = parseAgentConfig({
    argv: [],
    env: testAgentEnv({ ...options, agentToken }),
    detectIp: () => undefined,
  });
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({
    level: config.logLevel,
    write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>),
  });
  const agent = await startAgent({ config, log });
  return {
    agent,
    config,
    logs,
    request: jobApi(agent.url, agentToken),
    stop: () => agent.stop(),
  };
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** A started agent process that does not stop on SIGTERM within this is killed. */
const PROCESS_STOP_BOUND_MS = 15_000;

export type AgentProcess = Pick<TestAgent, 'logs' | 'request' | 'stop'> & {
  url: string;
  pid: number;
};

/**
 * Runs the agent's bin as its own process, inside network namespace `netns`
 * (`ip netns exec`), so its origin checks and its ffmpegs see the same network
 * and the same faults. Its job API listens on `host` (the namespace's address).
 */
export async function startAgentProcess(options: {
  statusUrl: string;
  netns: string;
  host: string;
  env?: Record<string, string>;
}): Promise<AgentProcess> {
  const agentToken = `agent-${randomBytes(12).toString('hex')}`;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      options.netns,
      process.execPath,
      '--import',
      'tsx',
      'clients/agent/bin.ts',
      '--host',
      options.host,
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        ...testAgentEnv({ ...options, agentToken }),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ message: line });
      }
    }
  });
  const closed = new Promise<void>((resolve) =>
    child.once('close', () => resolve()),
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const bound = setTimeout(
      () => child.kill('SIGKILL'),
      PROCESS_STOP_BOUND_MS,
    );
    child.kill('SIGTERM');
    await closed;
    clearTimeout(bound);
  };
  let url: string;
  try {
    url = await waitFor(
      'the agent process to start',
      () => {
        if (child.exitCode !== null)
          throw new Error(`the agent exited: ${JSON.stringify(logs)}`);
        const started = logs.find((entry) => entry.message === 'agent started');
        return typeof started?.url === 'string' ? started.url : undefined;
      },
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url,
    pid: child.pid ?? 0,
    logs,
    request: jobApi(url, agentToken),
    stop,
  };
}

/** Heartbeats of one process, oldest first by their timestamp. */
export function heartbeatsOf(recorder: HeartbeatRecorder, process: string) {
  return recorder
    .received()
    .filter((heartbeat) => heartbeat.process === process)
    .sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0));
}

/** Whether a process with this pid still exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls GET `path` of the agent's job API until `accept` holds for its JSON; resolves with that JSON. */
export function pollAgent(
  agent: Pick<TestAgent, 'request'>,
  path: string,
  what: string,
  accept: (json: any) => unknown,
  options: { timeoutMs: number } = { timeoutMs: 20_000 },
): Promise<any> {
  return waitFor(
    what,
    async () => {
      const { json } = await agent.request('GET', path);
      return accept(json) ? json : undefined;
    },
    options,
  );
}

export type Canary = {
  port: number;
  /** host:port, as the agent's probe setting takes it. */
  target: string;
  stop(): Promise<void>;
};

/** A TCP canary on loopback that accepts every connection and closes it: a probe of it is ok. */
export async function startCanary(): Promise<Canary> {
  const server = createTcpServer((socket) => socket.end());
  await new Promise<void>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve()),
  );
  const { port } = server.address() as AddressInfo;
  return {
    port,
    target: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * A real status center for agents to report to, with the longest grace (50 s)
 * so their heartbeats count however late in a minute they arrive, and a
 * canary for their probes. stop() stops both.
 */
export async function startCenterAndCanary(): Promise<{
  center: TestStatusCenter;
  canary: Canary;
  stop(): Promise<void>;
}> {
  const center = await startStatusCenter({
    env: { RELAYWATCH_GRACE_SECONDS: '50' },
  });
  const canary = await startCanary();
  return {
    center,
    canary,
    stop: async () => {
      await canary.stop();
      await center.stop();
    },
  };
}

/** POSTs relay job `id` from `source` to `target`, by default the sink's /ingest/{id}.flv. */
export function postRelay(
  agent: Pick<TestAgent, 'request'>,
  sink: Pick<TestSink, 'url'>,
  id: string,
  source: string,
  target = sink.url(`/ingest/${id}.flv`),
): Promise<ApiAnswer> {
  return agent.request('POST', '/relays', { body: { id, source, target } });
}

export type RelayRig = {
  dir: string;
  /** A test stream in `dir`, served by `origin` at /live.flv. */
  flvPath: string;
  origin: TestOrigin;
  sink: TestSink;
  recorder: HeartbeatRecorder;
  agent: TestAgent;
  /** POSTs a relay job from `source` (the origin's stream) to `target` (the sink's /ingest/{id}.flv). */
  post(id: string, source?: string, target?: string): Promise<ApiAnswer>;
  stop(): Promise<void>;
};

/**
 * Everything a relay needs on loopback: a test stream in a temp dir, an HTTP
 * origin serving it, a sink for the pushes, a heartbeat recorder standing in
 * for the status center, and an agent (settings `env`) reporting to it.
 */
export async function startRelayRig(
  options: { env?: Record<string, string> } = {},
): Promise<RelayRig> {
  const dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-'));
  const flvPath = await createTestFlv({ dir });
  const origin = await startOrigin({ flvPath });
  const sink = await startSink();
  const recorder = await startHeartbeatRecorder();
  const stopServers = async () => {
    await Promise.all([origin.stop(), sink.stop(), recorder.stop()]);
    await rm(dir, { recursive: true, force: true });
  };
  let agent: TestAgent;
  try {
    agent = await startTestAgent({ statusUrl: recorder.url, env: options.env });
  } catch (error) {
    await stopServers();
    throw error;
  }
  return {
    dir,
    flvPath,
    origin,
    sink,
    recorder,
    agent,
    post: (id, source = origin.url('/live.flv'), target) =>
      postRelay(agent, sink, id, source, target),
    stop: async () => {
      await agent.stop();
      await stopServers();
    },
  };
}
