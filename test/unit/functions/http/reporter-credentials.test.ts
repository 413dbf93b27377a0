import { describe, expect, it } from 'vitest';
import {
  issueMachineToken,
  machineClaimsOf,
  parseSigningKeys,
  verifyMachineToken,
} from '../../../../functions/http/reporter-credentials.js';
import { createTokenChecker } from '../../../../functions/http/tokens.js';

const [KEY, OLD] = parseSigningKeys(`${'k'.repeat(40)},${'o'.repeat(40)}`);
const ISSUED = Date.parse('2026-11-24T14:03:20Z');

describe('per-machine reporter tokens', () => {
  it('verify for the canonical IP they were issued for, whatever its spelling at issue', () => {
    const token = issueMachineToken({
      key: KEY!,
      ip: '::ffff:192.0.2.7',
      issuedAt: ISSUED,
    });
    expect(verifyMachineToken(token, [KEY!])).toEqual({
      keyId: KEY!.id,
      ip: '192.0.2.7',
      issuedAt: ISSUED,
    });
    const v6 = issueMachineToken({
      key: KEY!,
      ip: '2001:DB8:0:0::7',
      issuedAt: ISSUED,
    });
    expect(verifyMachineToken(v6, [KEY!])?.ip).toBe('2001:db8::7');
  });

  it('refuse a token whose IP or issue time was changed, or whose signature was cut', () => {
    const token = issueMachineToken({
      key: KEY!,
      ip: '192.0.2.7',
      issuedAt: ISSUED,
    });
    const [prefix, keyId, , issued, signature] = token.split('.');
    const otherIp = Buffer.from('192.0.2.8').toString('base64url');
    expect(
      verifyMachineToken(
        [prefix, keyId, otherIp, issued, signature].join('.'),
        [KEY!],
      ),
    ).toBeUndefined();
    expect(
      verifyMachineToken(token.replace(`.${ISSUED}.`, `.${ISSUED + 1}.`), [
        KEY!,
      ]),
    ).toBeUndefined();
    expect(verifyMachineToken(token.slice(0, -2), [KEY!])).toBeUndefined();
  });

  it('refuse every other spelling of the signature, even one that decodes to the same bytes', () => {
    // 32 bytes of MAC are 43 base64url characters whose last one carries 2 unused bits.
    const alphabet =
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let issuedAt = ISSUED; issuedAt < ISSUED + 20; issuedAt++) {
      const token = issueMachineToken({ key: KEY!, ip: '192.0.2.7', issuedAt });
      const others = [...alphabet]
        .filter((c) => c !== token.at(-1))
        .map((c) => `${token.slice(0, -1)}${c}`);
      expect(
        others.filter(
          (other) => verifyMachineToken(other, [KEY!]) !== undefined,
        ),
      ).toEqual([]);
      const ipPart = token.split('.')[2]!;
      const ipSpellings = [...alphabet]
        .map((c) =>
          token.replace(`.${ipPart}.`, `.${ipPart.slice(0, -1)}${c}.`),
        )
        .filter((t) => t !== token);
      expect(
        ipSpellings.filter(
          (other) => verifyMachineToken(other, [KEY!]) !== undefined,
        ),
      ).toEqual([]);
    }
  });

  it('verify with any configured key while one is rotated out, and not once it is gone', () => {
    const signedByOld = issueMachineToken({
      key: OLD!,
      ip: '192.0.2.7',
      issuedAt: ISSUED,
    });
    expect(verifyMachineToken(signedByOld, [KEY!, OLD!])?.ip).toBe('192.0.2.7');
    expect(verifyMachineToken(signedByOld, [KEY!])).toBeUndefined();
  });

  it('refuse signing keys shorter than 32 characters', () => {
    expect(() => parseSigningKeys('short')).toThrow(/32 characters/);
  });

  it('are told apart from other tokens by their shape alone', () => {
    expect(machineClaimsOf('reporter-abc')).toBeUndefined();
    expect(
      machineClaimsOf(
        `rwm1.x.${Buffer.from('not-an-ip').toString('base64url')}.1.sig`,
      ),
    ).toBeUndefined();
    expect(
      machineClaimsOf(
        issueMachineToken({ key: KEY!, ip: '192.0.2.7', issuedAt: ISSUED }),
      )?.ip,
    ).toBe('192.0.2.7');
  });
});

describe('the token checker', () => {
  const machine = issueMachineToken({
    key: KEY!,
    ip: '192.0.2.7',
    issuedAt: ISSUED,
  });

  it('binds a machine token to its IP and names it by that IP', () => {
    const check = createTokenChecker(
      { reporter: [] },
      { reporterKeys: [KEY!] },
    )(machine);
    expect(check).toEqual({
      known: true,
      role: 'reporter',
      actor: 'machine:192.0.2.7',
      verified: true,
      ip: '192.0.2.7',
      issuedAt: ISSUED,
    });
  });

  it('names a role token by role and digest prefix, never by the token', () => {
    const check = createTokenChecker({ admin: ['admin-secret-token'] })(
      'admin-secret-token',
    );
    expect(check).toMatchObject({ known: true, role: 'admin', verified: true });
    expect(check.known && check.actor).toMatch(/^admin:[0-9a-f]{12}$/);
    expect(JSON.stringify(check)).not.toContain('secret');
  });

  it('recognises the role of a token whose secret it does not hold, unverified', () => {
    const reader = createTokenChecker({
      reader: ['reader-x'],
      admin: ['admin-y'],
    });
    expect(reader(machine)).toMatchObject({
      known: true,
      role: 'reporter',
      verified: false,
    });
    expect(
      createTokenChecker(
        { reporter: [] },
        { reporterKeys: [KEY!] },
      )('admin-anything'),
    ).toMatchObject({
      known: true,
      role: 'admin',
      verified: false,
    });
    // A role it holds is checked, never claimed.
    expect(reader('reader-forged')).toEqual({ known: false });
  });

  it('refuses a machine token signed with a key it does not have', () => {
    const other = parseSigningKeys('z'.repeat(40));
    expect(
      createTokenChecker({ reporter: [] }, { reporterKeys: other })(machine),
    ).toEqual({ known: false });
  });
});
