import type { Config } from '../core/config.js';
import { ConfigError } from '../core/config.js';
import type { Role } from '../routes.js';
import type { Runtime, RuntimeOverrides } from '../runtime.js';
import { createRuntime } from '../runtime.js';
import { readTokenSecrets } from '../store/token-secrets.js';
import type { TokenCheck } from './tokens.js';
import { createTokenChecker, splitTokens } from './tokens.js';

/** The runtime of a function that serves API routes: the common one plus the role tokens. */
export type ApiRuntime = Runtime & { checkToken: (token: string) => TokenCheck };

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
 * The runtime of an API function: knobs, stores and the role tokens, read once
 * per cold start (from the environment locally, from Secrets Manager in AWS).
 * Functions without routes use createRuntime and never load the secrets client.
 */
export async function createApiRuntime(
  env: Record<string, string | undefined>,
  overrides: RuntimeOverrides = {},
): Promise<ApiRuntime> {
  const runtime = createRuntime(env, overrides);
  return { ...runtime, checkToken: createTokenChecker(await loadTokens(runtime.config)) };
}
