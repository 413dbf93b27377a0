import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../../../../functions/core/leases.js';
import {
  automaticBanCap,
  decideMinute,
} from '../../../../../functions/core/policy.js';
import type { MinuteTally } from '../../../../../functions/core/tally.js';
import {
  automaticBan,
  input,
  KNOBS,
  knobsWith,
  lease,
  NOW,
  ORIGINS,
  row,
} from '../policy-fixtures.js';

/**
 * Invariants of the silence rule and of late reports over generated fleets:
 * leased IPs with random intervals, ages and activity, some already banned,
 * and failing IPs whose reports arrive late.
 */

const RUNS = { numRuns: 300 };
const POOL = Array.from({ length: 16 }, (_, i) => `10.1.0.${i + 1}`);

const leaseArb = fc.tuple(
  fc.integer({ min: 0, max: 400_000 }),
  fc.constantFrom(5, 15, 60, 120),
  fc.constantFrom<0 | 1>(0, 1, 1),
);
const fleetArb = fc.record({
  leases: fc.uniqueArray(fc.tuple(fc.constantFrom(...POOL), leaseArb), {
    selector: ([ip]) => ip,
    minLength: 1,
    maxLength: POOL.length,
  }),
  banned: fc.subarray(POOL, { maxLength: 4 }),
  fraction: fc.constantFrom(0.1, 0.2, 0.5, 1),
  share: fc.constantFrom(0.3, 0.55, 0.8, 1),
});

describe('rule silent invariants (fast-check)', () => {
  it('never bans for silence while at least FLEET_SILENCE_SHARE of the recent leased IPs missed a report, and never past the cap', () => {
    fc.assert(
      fc.property(fleetArb, ({ leases: entries, banned, fraction, share }) => {
        const leases: Record<string, Lease> = Object.fromEntries(
          entries.map(([ip, [age, interval, active]]) => [
            ip,
            lease(age, interval, active),
          ]),
        );
        const knobs = knobsWith({
          maxBanFraction: fraction,
          fleetSilenceShare: share,
        });
        const bans = banned.map((ip) => automaticBan(ip, NOW - 60_000));
        const result = decideMinute(input({ leases, bans }), knobs);
        const silentBans = result.decisions.flatMap((d) =>
          d.type === 'ban' || d.type === 'escalation' ? [d] : [],
        );

        const recent = entries.filter(
          ([, [age, interval]]) =>
            age <= (3 * interval + KNOBS.graceSeconds) * 1000,
        );
        const quiet = recent.filter(
          ([, [age, interval]]) => age > (interval + KNOBS.graceSeconds) * 1000,
        );
        if (recent.length && quiet.length / recent.length >= share - 1e-9)
          expect(silentBans).toEqual([]);
        for (const d of silentBans) {
          const [seenAt, interval, active] = leases[d.ip]!;
          expect(active).toBe(1);
          expect(NOW - seenAt).toBeGreaterThan(
            (2 * interval + KNOBS.graceSeconds) * 1000,
          );
          expect(banned).not.toContain(d.ip);
        }
        if (silentBans.length) {
          const fleet = new Set([...banned, ...recent.map(([ip]) => ip)]).size;
          expect(banned.length + silentBans.length).toBeLessThanOrEqual(
            automaticBanCap(fleet, fraction),
          );
        }
      }),
      RUNS,
    );
  });
});

describe('late reports invariants (fast-check)', () => {
  it('never bans an IP whose connect failures all arrived late, whatever the rest of the fleet says', () => {
    const statusArb = fc.constantFrom('ok', 'connect_failed', 'ok', 'ok');
    fc.assert(
      fc.property(
        fc.array(statusArb, { minLength: 3, maxLength: 12 }),
        fc.integer({ min: 11_000, max: 300_000 }),
        (others, lateness) => {
          const window: MinuteTally[] = others.map((status, i) =>
            row(
              POOL[i]!,
              ORIGINS.map((origin) => ({ origin, [status]: 6 })),
              { observedAt: NOW - 20_000, receivedAt: NOW - 20_000 },
            ),
          );
          const suspect = POOL[15]!;
          window.push(
            row(
              suspect,
              ORIGINS.map((origin) => ({ origin, connect_failed: 12 })),
              { observedAt: NOW - 5_000 - lateness, receivedAt: NOW - 5_000 },
            ),
          );
          const result = decideMinute(input({ window }), KNOBS);
          const bannedIps = result.decisions.flatMap((d) =>
            d.type === 'ban' || d.type === 'escalation' ? [d.ip] : [],
          );
          expect(bannedIps).not.toContain(suspect);
        },
      ),
      RUNS,
    );
  });
});
