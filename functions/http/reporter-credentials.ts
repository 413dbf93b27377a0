import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalIp } from '#contract/ip';

/**
 * Per-machine reporter tokens: a keyed signature over the machine's canonical
 * IP, so the status center stores nothing per machine. A token reads
 *
 *   rwm1.<key id>.<base64url(ip)>.<issued at, epoch ms>.<base64url(HMAC-SHA256)>
 *
 * The key id names the signing key (the first 8 hex digits of its SHA-256), so
 * several keys can verify while one is rotated out; the issue time lets one
 * machine's tokens be revoked ("issued before T") and a new one issued after.
 */
export const MACHINE_TOKEN_PREFIX = 'rwm1.';

export type SigningKey = { id: string; secret: Buffer };

export type MachineClaims = { keyId: string; ip: string; issuedAt: number };

/** The longest token format we parse; anything longer is not a machine token. */
const MAX_TOKEN_LENGTH = 200;

const keyIdOf = (secret: string) =>
  createHash('sha256').update(secret).digest('hex').slice(0, 8);

/**
 * "new, old" → signing keys, the first one signing new tokens. Secrets under
 * 32 characters are refused: the key is all that stands between a relay
 * machine and every other machine's identity.
 */
export function parseSigningKeys(value: string | undefined): SigningKey[] {
  const secrets = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const secret of secrets) {
    if (secret.length < 32)
      throw new Error(
        'each reporter signing key must be at least 32 characters',
      );
  }
  return secrets.map((secret) => ({
    id: keyIdOf(secret),
    secret: Buffer.from(secret, 'utf8'),
  }));
}

const mac = (key: SigningKey, ip: string, issuedAt: number) =>
  createHmac('sha256', key.secret)
    .update(`${MACHINE_TOKEN_PREFIX}${key.id}|${ip}|${issuedAt}`)
    .digest();

/**
 * A token that may report only for `ip` (any spelling of it).
 * @example issueMachineToken({ key, ip: '::ffff:192.0.2.7', issuedAt: Date.now() }) // 'rwm1.1a2b3c4d.MTkyLjAuMi43.17…'
 */
export function issueMachineToken(options: {
  key: SigningKey;
  ip: string;
  issuedAt: number;
}): string {
  const ip = canonicalIp(options.ip);
  if (!ip) throw new Error(`not an IP address: ${options.ip}`);
  const { key, issuedAt } = options;
  const encodedIp = Buffer.from(ip, 'utf8').toString('base64url');
  return `${MACHINE_TOKEN_PREFIX}${key.id}.${encodedIp}.${issuedAt}.${mac(key, ip, issuedAt).toString('base64url')}`;
}

/** The claims a token carries, unverified: enough to tell its role without the key. */
export function machineClaimsOf(
  token: string,
): (MachineClaims & { signature: string }) | undefined {
  if (
    !token.startsWith(MACHINE_TOKEN_PREFIX) ||
    token.length > MAX_TOKEN_LENGTH
  )
    return undefined;
  const [keyId, encodedIp, issued, signature] = token
    .slice(MACHINE_TOKEN_PREFIX.length)
    .split('.');
  if (
    !keyId ||
    !encodedIp ||
    !issued ||
    !signature ||
    !/^\d{1,15}$/.test(issued)
  )
    return undefined;
  const ipBytes = Buffer.from(encodedIp, 'base64url');
  if (ipBytes.toString('base64url') !== encodedIp) return undefined;
  const ip = canonicalIp(ipBytes.toString('utf8'));
  if (!ip) return undefined;
  return { keyId, ip, issuedAt: Number(issued), signature };
}

/**
 * The machine a token speaks for, when one of `keys` signed it; the signature
 * is compared in constant time.
 */
export function verifyMachineToken(
  token: string,
  keys: readonly SigningKey[],
): MachineClaims | undefined {
  const claims = machineClaimsOf(token);
  if (!claims) return undefined;
  const key = keys.find((k) => k.id === claims.keyId);
  if (!key) return undefined;
  // Compared as text, not as decoded bytes: base64url's last character carries
  // unused bits, so two spellings decode to the same MAC; only ours is valid.
  const expected = Buffer.from(
    mac(key, claims.ip, claims.issuedAt).toString('base64url'),
  );
  const given = Buffer.from(claims.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return undefined;
  return { keyId: claims.keyId, ip: claims.ip, issuedAt: claims.issuedAt };
}
