import {
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { Role } from '../routes.js';
import type { TokenSecrets } from './ports.js';

/** One client per region and process: secrets are read again every cache age, not only at cold start. */
const clients = new Map<string, SecretsManagerClient>();

/**
 * Reads the given secrets (role tokens, reporter signing keys) from Secrets
 * Manager. A value is the token or key, or several comma-separated during a rotation.
 */
export const readTokenSecrets: TokenSecrets = async <
  Name extends string = Role,
>(options: {
  region: string;
  secretArns: Partial<Record<Name, string>>;
}): Promise<Partial<Record<Name, string>>> => {
  let client = clients.get(options.region);
  if (!client) {
    client = new SecretsManagerClient({ region: options.region });
    clients.set(options.region, client);
  }
  const entries = await Promise.all(
    (Object.entries(options.secretArns) as [Name, string][]).map(
      async ([name, arn]) => {
        const result = await client.send(
          new GetSecretValueCommand({ SecretId: arn }),
        );
        return [name, result.SecretString ?? ''] as const;
      },
    ),
  );
  return Object.fromEntries(entries) as Partial<Record<Name, string>>;
};
