import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Role } from '../routes.js';

/**
 * Reads the given secrets (role tokens, reporter signing keys) from Secrets
 * Manager. A value is the token or key, or several comma-separated during a rotation.
 */
export async function readTokenSecrets<Name extends string = Role>(options: {
  region: string;
  secretArns: Partial<Record<Name, string>>;
}): Promise<Partial<Record<Name, string>>> {
  const client = new SecretsManagerClient({ region: options.region });
  const entries = await Promise.all(
    (Object.entries(options.secretArns) as [Name, string][]).map(async ([role, arn]) => {
      const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
      return [role, result.SecretString ?? ''] as const;
    }),
  );
  return Object.fromEntries(entries) as Partial<Record<Name, string>>;
}
