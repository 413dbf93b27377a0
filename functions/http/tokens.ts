import { createHash, timingSafeEqual } from 'node:crypto';
import type { Role } from '../routes.js';
import type { SigningKey } from './reporter-credentials.js';
import { machineClaimsOf, verifyMachineToken } from './reporter-credentials.js';

export type TokensByRole = Partial<Record<Role, readonly string[]>>;

/**
 * Who is calling. `actor` names the credential in events and logs without
 * revealing it (a digest prefix, or the machine a machine token is bound to).
 * `ip` is set for a machine token: it may only report for that IP.
 * `verified: false` means the role was only read off the token's shape
 * because this function does not hold that role's secret: enough for a 403.
 */
export type Principal = {
  role: Role;
  actor: string;
  verified: boolean;
  ip?: string;
  issuedAt?: number;
};

export type TokenCheck = { known: false } | ({ known: true } & Principal);

const ROLES: readonly Role[] = ['reporter', 'reader', 'admin'];

const digest = (token: string) => createHash('sha256').update(token).digest();

/** A stable, non-secret name for a role token: role and 12 hex digits of its SHA-256. */
export const actorOf = (role: Role, token: string) =>
  `${role}:${digest(token).toString('hex').slice(0, 12)}`;

/**
 * Finds which role a bearer token belongs to. Compares fixed-length digests in
 * constant time, so response timing says nothing about how much of a token matched.
 *
 * A function holds only the secrets of the roles its route admits (`tokens`
 * names those roles, `reporterKeys` when it verifies machine tokens). A token of
 * another role is still told apart by its shape, a machine token's prefix or a
 * `<role>-` prefix, and answered as that role unverified (403, not 401).
 */
export function createTokenChecker(
  tokens: TokensByRole,
  options: { reporterKeys?: readonly SigningKey[] } = {},
): (token: string) => TokenCheck {
  const known = (Object.entries(tokens) as [Role, readonly string[]][]).flatMap(
    ([role, list]) =>
      list.map((token) => ({
        role,
        digest: digest(token),
        actor: actorOf(role, token),
      })),
  );
  const held = new Set(Object.keys(tokens) as Role[]);
  return (token) => {
    const candidate = digest(token);
    let match: (typeof known)[number] | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, candidate)) match = entry;
    }
    if (match)
      return {
        known: true,
        role: match.role,
        actor: match.actor,
        verified: true,
      };
    const claims = machineClaimsOf(token);
    if (claims) {
      if (!options.reporterKeys)
        return {
          known: true,
          role: 'reporter',
          actor: `machine:${claims.ip}`,
          verified: false,
        };
      const machine = verifyMachineToken(token, options.reporterKeys);
      if (!machine) return { known: false };
      return {
        known: true,
        role: 'reporter',
        actor: `machine:${machine.ip}`,
        verified: true,
        ip: machine.ip,
        issuedAt: machine.issuedAt,
      };
    }
    const claimed = ROLES.find(
      (role) => !held.has(role) && token.startsWith(`${role}-`),
    );
    return claimed
      ? {
          known: true,
          role: claimed,
          actor: `${claimed}:unverified`,
          verified: false,
        }
      : { known: false };
  };
}

/** "a, b" → ["a", "b"]: a role may have several tokens while one is rotated out. */
export function splitTokens(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}
