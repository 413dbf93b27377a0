import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Role } from '../routes.js';

/**
 * Reads each role's token(s) from Secrets Manager once per cold start. The
 * secret's value is the token, or several comma-separated during a rotation.
 */
export async function readTokenSecrets(options: {
  region: string;
  secretArns: Partial<Record<Role, string>>;
}): Promise<Partial<Record<Role, string>>> {
  const client = new SecretsManagerClient({ region: options.region });
  const entries = await Promise.all(
    (Object.entries(options.secretArns) as [Role, string][]).map(async ([role, arn]) => {
      const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
      return [role, result.SecretString ?? ''] as const;
    }),
  );
  return Object.fromEntries(entries);
}
