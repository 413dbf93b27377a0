import { describe, expect, it } from 'vitest';
import type {
  AuditEvent,
  FleetView,
  IpView,
} from '../../../../clients/cli/format.js';
import {
  describeEvent,
  statusText,
  whyText,
} from '../../../../clients/cli/format.js';

const NOW = Date.parse('2026-12-01T10:00:30Z');
const counts = { ok: 0, connect_failed: 0, origin_error: 0, error: 0 };

function fleet(overrides: Partial<FleetView> = {}): FleetView {
  return {
    generatedAt: '2026-12-01T10:00:30.000Z',
    aggregatedMinute: '202612010959',
    aggregationLagMinutes: 0,
    dryRun: false,
    reporting: [],
    banned: [],
    silent: [],
    originOutages: [],
    fleetWideFailure: false,
    fleetSilence: false,
    capInForce: false,
    capped: [],
    ...overrides,
  };
}

describe('relaywatch in words', () => {
  it('explains a silent ban by its silence, not by samples it never sent', () => {
    const ban = {
      ip: '198.51.100.9',
      reason:
        'silent for 190 s (report interval 60 s; limit 3 x 60 s + 10 s grace)',
      since: '2026-12-01T10:00:10.000Z',
      until: '2026-12-01T11:00:10.000Z',
      failRatio: 0,
      samples: 0,
      manual: false,
      offense: 1,
      rule: 'silent',
    };
    const view: IpView = {
      ip: ban.ip,
      banned: true,
      ban,
      minutes: [
        {
          minute: '202612011000',
          start: '2026-12-01T10:00:00.000Z',
          relay: counts,
          probe: counts,
          origins: 0,
        },
      ],
    };
    const event: AuditEvent = {
      type: 'ban',
      at: '2026-12-01T10:00:10.000Z',
      ip: ban.ip,
      enforced: true,
      rule: 'silent',
      evidence: {
        silence: {
          lastSeen: '2026-12-01T09:57:00.000Z',
          silentSeconds: 190,
          limitSeconds: 190,
        },
        ban: { ...ban, until: Date.parse(ban.until) },
      },
    };
    const text = whyText({
      ip: view,
      fleet: fleet(),
      events: [event],
      now: NOW,
    });
    expect(text).toContain(
      '198.51.100.9 is BANNED until 2026-12-01T11:00:10Z (in 59m 40s), since 2026-12-01T10:00:10Z.',
    );
    expect(text).toContain('An automatic ban (rule silent):');
    expect(text).toContain(
      'It is released as soon as the machine reports healthy again',
    );
    expect(text).not.toContain('counted samples (ok');
    expect(text).toContain(
      'banned until 2026-12-01T11:00:10Z: silent for 190 s, last heard 2026-12-01T09:57:00Z (limit 190 s)',
    );
  });

  it('marks an event decided in dry run as not enforced', () => {
    const event: AuditEvent = {
      type: 'fleet_silence',
      at: '2026-12-01T10:00:10.000Z',
      enforced: false,
      evidence: { quietIps: 7, recentIps: 10, share: 0.7 },
    };
    expect(describeEvent(event)).toBe(
      'fleet silence: 7 of 10 recently reporting IPs went quiet at once; nobody is banned for silence while it lasts (dry run: not enforced)',
    );
  });

  it('flags a lagging aggregation, a fleet silence and the cap in the status', () => {
    const text = statusText(
      fleet({
        aggregationLagMinutes: 7,
        fleetSilence: true,
        capInForce: true,
        capped: ['192.0.2.4'],
      }),
      0,
      'http://status',
    );
    expect(text).toMatch(
      /aggregation lag:\s+7 min {2}\(BEHIND: is the schedule running\?\)/,
    );
    expect(text).toContain('FLEET SILENCE');
    expect(text).toContain('CAP IN FORCE (not banned: 192.0.2.4)');
  });
});
