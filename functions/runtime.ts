import type { Config } from './core/config.js';
import { ConfigError, parseConfig } from './core/config.js';
import type { TokenCheck } from './http/tokens.js';
import { createTokenChecker, splitTokens } from './http/tokens.js';
import type { Logger } from './log.js';
import { createLogger } from './log.js';
import type { Role } from './routes.js';
import { createBanStore } from './store/ban-store.js';
import { createDocumentClient } from './store/client.js';
import { createEventStore } from './store/event-store.js';
import { createHeartbeatStore } from './store/heartbeat-store.js';
import { createStateStore } from './store/state-store.js';
import { readTokenSecrets } from './store/token-secrets.js';

/** Everything a handler needs, wired once per process (a Lambda cold start). */
export type Runtime = {
  config: Config;
  log: Logger;
  heartbeats: ReturnType<typeof createHeartbeatStore>;
  bans: ReturnType<typeof createBanStore>;
  events: ReturnType<typeof createEventStore>;
  state: ReturnType<typeof createStateStore>;
  checkToken: (token: string) => TokenCheck;
  /** The clock; tests and the local runtime may replace it. */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
};

export type RuntimeOverrides = Partial<Pick<Runtime, 'now' | 'sleep' | 'log'>> & {
  /** Replaces knobs after the environment was read (scenario tests). */
  config?: Partial<Config>;
  /** false for functions that serve no HTTP route (they never read the token secrets). */
  tokens?: boolean;
};

const ROLES: readonly Role[] = ['reporter', 'reader', 'admin'];

async function loadTokens(config: Config): Promise<Record<Role, string[]>> {
  let raw: Partial<Record<Role, string | undefined>> = {
    reporter: config.reporterToken,
    reader: config.readerToken,
    admin: config.adminToken,
  };
  if (config.tokenSecrets) {
    let secretArns: Partial<Record<Role, string>>;
    try {
      secretArns = JSON.parse(config.tokenSecrets);
    } catch {
      throw new ConfigError('RELAYWATCH_TOKEN_SECRETS must be JSON like {"reporter": "<secret ARN>", ...}');
    }
    raw = await readTokenSecrets({ region: config.region, secretArns });
  }
  const tokens = Object.fromEntries(ROLES.map((role) => [role, splitTokens(raw[role])])) as Record<Role, string[]>;
  if (ROLES.every((role) => tokens[role].length === 0)) {
    throw new ConfigError(
      'no API tokens configured: set RELAYWATCH_REPORTER_TOKEN, RELAYWATCH_READER_TOKEN and RELAYWATCH_ADMIN_TOKEN (or RELAYWATCH_TOKEN_SECRETS in AWS)',
    );
  }
  return tokens;
}

/**
 * Builds the runtime from environment variables: parses and validates every
 * knob (throwing a ConfigError naming the variable), creates the DynamoDB
 * client once, and loads the API tokens.
 */
export async function createRuntime(
  env: Record<string, string | undefined>,
  overrides: RuntimeOverrides = {},
): Promise<Runtime> {
  const config: Config = Object.freeze({ ...parseConfig(env), ...overrides.config });
  const client = createDocumentClient({ region: config.region, endpoint: config.dynamodbEndpoint });
  const { tableName } = config;
  return {
    config,
    log: overrides.log ?? createLogger({ level: config.logLevel }),
    heartbeats: createHeartbeatStore({ client, tableName, shards: config.shards, bucketTtlHours: config.bucketTtlHours }),
    bans: createBanStore({ client, tableName }),
    events: createEventStore({ client, tableName, eventTtlDays: config.eventTtlDays }),
    state: createStateStore({ client, tableName }),
    checkToken:
      overrides.tokens === false
        ? () => ({ known: false })
        : createTokenChecker(await loadTokens(config)),
    now: overrides.now ?? Date.now,
    sleep: overrides.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
}
