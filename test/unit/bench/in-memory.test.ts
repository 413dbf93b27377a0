import { describe, expect, it } from 'vitest';
import { minuteOf } from '../../../functions/core/minutes.js';
import { benchInMemory } from '../../bench/in-memory.js';
import { machineReport } from '../../helpers/fleet.js';

describe('the in-memory bench (npm run bench -- --in-memory N)', () => {
  it('aggregates a fleet with the real stores over its fake table and bans exactly the failing machines', async () => {
    const machines = 300;
    const minute = minuteOf(Date.now()) - 3;
    const failing = Array.from({ length: machines }, (_, n) =>
      machineReport(n, minute),
    ).filter((report) =>
      report.some((heartbeat) => heartbeat.status === 'connect_failed'),
    ).length;

    const result = await benchInMemory(machines);

    expect(failing).toBeGreaterThan(0);
    expect(result.machines).toBe(machines);
    expect(result.decisions).toEqual({ ban: failing });
    // Every failing machine's ban went in a transaction; the rows were read, not written again.
    expect(result.calls.TransactWriteCommand).toBeGreaterThan(0);
    expect(result.calls.QueryCommand).toBeGreaterThan(0);
  });
});
