import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { schedules } from '../../../functions/routes.js';
import { lambdaHeapFlags } from '../../bench/fleet.js';

describe("the fleet bench's heap (lambdaHeapFlags)", () => {
  it("sizes the heap as Lambda's Node.js runtime does: a tenth of the memory young, half of it per semi-space, the rest old", () => {
    expect(lambdaHeapFlags(1024)).toEqual([
      '--max-semi-space-size=51',
      '--max-old-space-size=922',
    ]);
    expect(lambdaHeapFlags(2048)).toEqual([
      '--max-semi-space-size=102',
      '--max-old-space-size=1844',
    ]);
  });

  it('gives a node started with them a larger young generation than V8 picks for that old space', () => {
    const heapLimitMb = (flags: string[]) =>
      Number(
        spawnSync(
          process.execPath,
          [
            ...flags,
            '-e',
            'console.log(require("node:v8").getHeapStatistics().heap_size_limit / 2 ** 20)',
          ],
          { encoding: 'utf8' },
        ).stdout.trim(),
      );
    const flags = lambdaHeapFlags(schedules.aggregate.memoryMb);
    const oldSpaceOnly = heapLimitMb(flags.slice(1));
    // V8's limit is the old space plus the young generation (its semi-spaces and their large-object space).
    expect(oldSpaceOnly).toBeGreaterThan(922);
    expect(heapLimitMb(flags)).toBeGreaterThan(oldSpaceOnly + 100);
  });
});
