import { describe, expect, it } from 'vitest';
import { minuteOf } from '../../../functions/core/minutes.js';
import { machineReport } from '../../helpers/fleet.js';

describe("the fleet bench's machines (machineReport)", () => {
  const minute = minuteOf(Date.parse('2026-12-02T03:00:00Z'));
  const machines = Array.from({ length: 300 }, (_, n) => n);
  const failed = (report: ReturnType<typeof machineReport>) =>
    report.some((heartbeat) => heartbeat.status !== 'ok');
  const relays = (report: ReturnType<typeof machineReport>) =>
    report.filter((heartbeat) => heartbeat.kind !== 'probe').length;

  it('fails a few machines in a minute, and none in the healthy minute before the failures begin', () => {
    const usual = machines.map((n) => machineReport(n, minute));
    const healthy = machines.map((n) =>
      machineReport(n, minute, { healthy: true }),
    );

    expect(usual.filter(failed).length).toBeGreaterThan(0);
    expect(healthy.filter(failed)).toEqual([]);
    // The same machines, running as many relays.
    expect(healthy.map((report) => report[0]?.ip)).toEqual(
      usual.map((report) => report[0]?.ip),
    );
    expect(healthy.map(relays)).toEqual(usual.map(relays));
  });
});
