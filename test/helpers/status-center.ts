import { randomBytes } from 'node:crypto';
import { createLogger } from '../../functions/log.js';
import type { RuntimeOverrides } from '../../functions/runtime.js';
import type { LocalStatusCenter } from '../../infra/local/status-center.js';
import { startLocalStatusCenter } from '../../infra/local/status-center.js';
import { sendRequest } from './http.js';
import { fileTables, localEndpoint } from './local-tables.js';
import { startMeteringProxy } from './metering-proxy.js';

/** A metering proxy in front of the suite's DynamoDB Local (localEndpoint). */
export function startMeteringProxyOnLocal() {
  return startMeteringProxy(Number(new URL(localEndpoint()).port));
}

export type TestStatusCenter = LocalStatusCenter & {
  tokens: LocalStatusCenter['tokens'];
};

/**
 * A status center on the run's DynamoDB Local with a table of its own, served
 * on a free loopback port. `env` sets knobs (RELAYWATCH_*), `overrides` can
 * replace the clock. Call stop() in afterAll; its table is deleted when the
 * file ends (local-tables.ts), and stop() may come before or after that.
 */
export async function startStatusCenter(
  options: {
    env?: Record<string, string>;
    overrides?: RuntimeOverrides;
    /**
     * Start a DynamoDB Local of its own: its TTL sweeper then serves this one
     * table instead of every table of the run, so expiries come within seconds.
     */
    ownDynamoDb?: boolean;
    /** Reach the run's DynamoDB Local through this endpoint (a metering proxy in front of it). */
    dynamodbEndpoint?: string;
  } = {},
): Promise<TestStatusCenter> {
  const env = {
    TABLE_NAME: `relaywatch-test-${randomBytes(6).toString('hex')}`,
    LOG_LEVEL: 'warn',
    RELAYWATCH_AGGREGATE_WAITS: 'false',
    ...options.env,
  };
  const common = {
    port: 0,
    env,
    schedule: false,
    // Metric lines would flood the test output; tests that check them pass their own log.
    overrides: {
      log: createLogger({ level: 'warn', metrics: false }),
      ...options.overrides,
    },
  };
  // Its own Local stops with it, and its table with that.
  if (options.ownDynamoDb)
    return startLocalStatusCenter({
      ...common,
      dynamodbPort: 0,
    });
  fileTables.record(env.TABLE_NAME);
  const center = await startLocalStatusCenter({
    ...common,
    dynamodbEndpoint: options.dynamodbEndpoint ?? localEndpoint(),
  });
  // The file's own afterAll and the one that deletes its tables both stop it,
  // in either order (a second stop() waits for the first), so the stream
  // poller never reads a deleted table.
  fileTables.stopFirst(center.stop);
  return center;
}

/** Posts heartbeats with the fleet-wide reporter token; answers the HTTP status (202: accepted). */
export async function postHeartbeats(
  api: ReturnType<typeof apiClient>,
  heartbeats: readonly unknown[],
): Promise<number> {
  return (
    await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body: { heartbeats },
    })
  ).status;
}

/**
 * One IP's reports of a minute starting at `start`: 12 relays over 3
 * origins, 3 s apart from its first second, every one with `status`.
 */
export function minuteOfRelays(
  ip: string,
  start: number,
  status: 'ok' | 'connect_failed',
) {
  return Array.from({ length: 12 }, (_, i) => ({
    ip,
    process: `ffmpeg-${i}`,
    status,
    origin: `rtmp://origin-${i % 3}.example.net/live/s${i}`,
    ts: start + 1_000 + i * 3_000,
  }));
}

/** A request with the role's bearer token (admin unless `role` says; null: none) and a JSON body. */
export function apiClient(center: Pick<LocalStatusCenter, 'url' | 'tokens'>) {
  return async (
    method: string,
    path: string,
    options: {
      role?: keyof LocalStatusCenter['tokens'] | null;
      token?: string;
      body?: unknown;
      headers?: Record<string, string>;
    } = {},
  ) =>
    sendRequest(`${center.url}${path}`, method, {
      ...options,
      token:
        options.token ??
        (options.role === null
          ? undefined
          : center.tokens[options.role ?? 'admin']),
    });
}
