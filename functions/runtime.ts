import type { Config } from './core/config.js';
import { parseConfig } from './core/config.js';
import type { Logger, MetricsSink } from './log.js';
import { createLogger, lambdaFields } from './log.js';
import { createBanStore } from './store/ban-store.js';
import { createBatchStore } from './store/batch-store.js';
import { createDocumentClient } from './store/client.js';
import { createEventStore } from './store/event-store.js';
import { createHeartbeatStore } from './store/heartbeat-store.js';
import type {
  BanStore,
  BatchStore,
  EventStore,
  HeartbeatStore,
  RevocationStore,
  StateStore,
} from './store/ports.js';
import { createRevocationStore } from './store/revocation-store.js';
import { createStateStore } from './store/state-store.js';

/** Everything a handler needs, wired once per process (a Lambda cold start). */
export type Runtime = {
  config: Config;
  log: Logger;
  heartbeats: HeartbeatStore;
  bans: BanStore;
  events: EventStore;
  state: StateStore;
  /** Which batchIds were posted, with what content and when. */
  batches: BatchStore;
  /** Revoked per-machine reporter tokens. */
  revocations: RevocationStore;
  /** The clock; tests and the local runtime may replace it. */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /**
   * Closes the DynamoDB client's connections once no handler runs any more,
   * for a process that goes on after (the local status center's stop); a
   * Lambda never calls it.
   */
  close: () => void;
};

export type RuntimeOverrides = Partial<
  Pick<Runtime, 'now' | 'sleep' | 'log'>
> & {
  /** Replaces knobs after the environment was read (scenario tests). */
  config?: Partial<Config>;
  /** Where the default log's metric lines go (log.ts); with the log lines unless set. */
  metrics?: MetricsSink;
};

/**
 * Builds the runtime from environment variables: parses and validates every
 * knob (throwing a ConfigError naming the variable), creates the DynamoDB
 * client once. API handlers add the role tokens (http/api-runtime.ts).
 */
export function createRuntime(
  env: Record<string, string | undefined>,
  overrides: RuntimeOverrides = {},
): Runtime {
  const config: Config = Object.freeze({
    ...parseConfig(env),
    ...overrides.config,
  });
  const client = createDocumentClient({
    region: config.region,
    endpoint: config.dynamodbEndpoint,
  });
  const { tableName } = config;
  const now = overrides.now ?? Date.now;
  const log =
    overrides.log ??
    createLogger({
      level: config.logLevel,
      fields: lambdaFields(env),
      ...(overrides.metrics === undefined
        ? {}
        : { metrics: overrides.metrics }),
    });
  return {
    config,
    log,
    heartbeats: createHeartbeatStore({
      client,
      tableName,
      shards: config.shards,
      bucketTtlHours: config.bucketTtlHours,
    }),
    bans: createBanStore({
      client,
      tableName,
      log,
      clock: now,
      // An endpoint override is DynamoDB Local (or an emulator like it): it
      // runs transactions one at a time, and 4 in flight took 2-4x as long as 1.
      ...(config.dynamodbEndpoint === undefined
        ? {}
        : { transactionConcurrency: 1 }),
    }),
    events: createEventStore({
      client,
      tableName,
      eventTtlDays: config.eventTtlDays,
      log,
    }),
    state: createStateStore({ client, tableName }),
    batches: createBatchStore({
      client,
      tableName,
      ttlHours: config.bucketTtlHours,
    }),
    revocations: createRevocationStore({ client, tableName }),
    now,
    sleep:
      overrides.sleep ??
      ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    close: () => client.destroy(),
  };
}
