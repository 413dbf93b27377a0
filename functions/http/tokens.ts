import { createHash, timingSafeEqual } from 'node:crypto';
import type { Role } from '../routes.js';

export type TokensByRole = Record<Role, readonly string[]>;

export type TokenCheck = { known: false } | { known: true; role: Role };

const digest = (token: string) => createHash('sha256').update(token).digest();

/**
 * Finds which role a bearer token belongs to. Compares fixed-length digests in
 * constant time, so response timing says nothing about how much of a token matched.
 */
export function createTokenChecker(tokens: TokensByRole): (token: string) => TokenCheck {
  const known = (Object.entries(tokens) as [Role, readonly string[]][]).flatMap(([role, list]) =>
    list.map((token) => ({ role, digest: digest(token) })),
  );
  return (token) => {
    const candidate = digest(token);
    let match: Role | undefined;
    for (const entry of known) {
      if (timingSafeEqual(entry.digest, candidate)) match = entry.role;
    }
    return match ? { known: true, role: match } : { known: false };
  };
}

/** "a, b" → ["a", "b"]: a role may have several tokens while one is rotated out. */
export function splitTokens(value: string | undefined): string[] {
  return (value ?? '').split(',').map((t) => t.trim()).filter(Boolean);
}
