import type { Config } from '../core/config.js';
import { ConfigError } from '../core/config.js';
import type { Logger } from '../log.js';
import type { Role } from '../routes.js';
import type { Runtime, RuntimeOverrides } from '../runtime.js';
import { createRuntime } from '../runtime.js';
import { readTokenSecrets } from '../store/token-secrets.js';
import type { SigningKey } from './reporter-credentials.js';
import { parseSigningKeys } from './reporter-credentials.js';
import type { TokenCheck, TokensByRole } from './tokens.js';
import { createTokenChecker, splitTokens } from './tokens.js';

/** The runtime of a function that serves API routes: the common one plus its credentials. */
export type ApiRuntime = Runtime & {
  /** Who a bearer token is (revocations aside: see isRevoked). */
  checkToken: (token: string) => TokenCheck | Promise<TokenCheck>;
  /** Whether the machine token of `ip` issued at `issuedAt` was revoked; unset where no machine token is verified. */
  isRevoked?: (machine: { ip: string; issuedAt: number }) => Promise<boolean>;
  /** The key that signs new machine tokens; undefined where the function holds none. */
  signingKey?: () => Promise<SigningKey | undefined>;
};

const ROLES: readonly Role[] = ['reporter', 'reader', 'admin'];

type SecretNames = Partial<Record<Role | 'reporterKeys', string>>;
type Credentials = {
  tokens: TokensByRole;
  reporterKeys: SigningKey[] | undefined;
};

async function loadCredentials(config: Config): Promise<Credentials> {
  if (!config.tokenSecrets) {
    // Locally every route runs in one process, which holds every credential.
    return {
      tokens: Object.fromEntries(
        ROLES.map((role) => [
          role,
          splitTokens(config[`${role}Token` as 'readerToken']),
        ]),
      ) as TokensByRole,
      reporterKeys: parseSigningKeys(config.reporterKeys),
    };
  }
  let secretArns: SecretNames;
  try {
    secretArns = JSON.parse(config.tokenSecrets);
  } catch {
    throw new ConfigError(
      'RELAYWATCH_TOKEN_SECRETS must be JSON like {"reader": "<secret ARN>", ...}',
    );
  }
  // Only the secrets this function was given: the roles its route admits.
  const raw = await readTokenSecrets({ region: config.region, secretArns });
  const tokens: TokensByRole = {};
  for (const role of ROLES)
    if (role in secretArns) tokens[role] = splitTokens(raw[role]);
  return {
    tokens,
    reporterKeys:
      'reporterKeys' in secretArns
        ? parseSigningKeys(raw.reporterKeys)
        : undefined,
  };
}

/**
 * Reads a value again once it is older than `maxAgeMs`, so a rotated secret
 * or a revocation takes effect within that age. A failed refresh keeps the
 * last value (logged) rather than failing requests while Secrets Manager or
 * DynamoDB has a bad minute.
 */
export function boundedAge<T>(options: {
  initial?: T;
  load: () => Promise<T>;
  maxAgeMs: number;
  log: Logger;
  what: string;
}) {
  let value = options.initial;
  let loadedAt =
    options.initial === undefined ? Number.NEGATIVE_INFINITY : Date.now();
  let pending: Promise<T> | undefined;
  return async (): Promise<T> => {
    if (value !== undefined && Date.now() - loadedAt < options.maxAgeMs)
      return value;
    pending ??= options
      .load()
      .then((fresh) => {
        value = fresh;
        loadedAt = Date.now();
        return fresh;
      })
      .catch((error) => {
        // Never loaded: nothing to fall back on, the request fails (503 when DynamoDB is busy).
        if (value === undefined) throw error;
        options.log.warn(
          `could not refresh ${options.what}; keeping the last one`,
          { error: String(error) },
        );
        return value;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

/**
 * The runtime of an API function: knobs, stores and its credentials, read at
 * cold start (from the environment locally, from Secrets Manager in AWS) and
 * again once older than RELAYWATCH_CREDENTIAL_CACHE_SECONDS. Functions without
 * routes use createRuntime and never load the secrets client.
 */
export async function createApiRuntime(
  env: Record<string, string | undefined>,
  overrides: RuntimeOverrides = {},
): Promise<ApiRuntime> {
  const runtime = createRuntime(env, overrides);
  const { config, log } = runtime;
  const maxAgeMs = config.credentialCacheSeconds * 1000;
  const initial = await loadCredentials(config);
  const held =
    Object.values(initial.tokens).some((list) => list.length > 0) ||
    (initial.reporterKeys?.length ?? 0) > 0;
  if (!held) {
    throw new ConfigError(
      'no API credentials configured: set RELAYWATCH_READER_TOKEN, RELAYWATCH_ADMIN_TOKEN and RELAYWATCH_REPORTER_KEYS (or RELAYWATCH_TOKEN_SECRETS in AWS)',
    );
  }
  const credentials = boundedAge({
    initial,
    load: () => loadCredentials(config),
    maxAgeMs,
    log,
    what: 'credentials',
  });
  const { revocations } = runtime;
  // Read on first use, not at cold start: a module import does no DynamoDB I/O.
  const revoked = boundedAge({
    load: () => revocations.listRevocations(),
    maxAgeMs,
    log,
    what: 'reporter revocations',
  });

  let checker = {
    from: initial,
    check: createTokenChecker(initial.tokens, optionalKeys(initial)),
  };
  const checkerOf = (current: Credentials) => {
    if (checker.from !== current)
      checker = {
        from: current,
        check: createTokenChecker(current.tokens, optionalKeys(current)),
      };
    return checker.check;
  };

  return {
    ...runtime,
    checkToken: async (token) => checkerOf(await credentials())(token),
    ...(initial.reporterKeys
      ? {
          signingKey: async () => (await credentials()).reporterKeys?.[0],
          isRevoked: async ({ ip, issuedAt }) => {
            const before = (await revoked()).get(ip);
            return before !== undefined && issuedAt <= before;
          },
        }
      : {}),
  };
}

const optionalKeys = (credentials: Credentials) =>
  credentials.reporterKeys ? { reporterKeys: credentials.reporterKeys } : {};
