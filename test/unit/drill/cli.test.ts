import { describe, expect, it } from 'vitest';
import {
  HELP,
  LIMITS,
  parseDrillArgs,
  SCENARIOS,
  UsageError,
} from '../../drill/cli.js';
import { rotation } from '../../drill/jobs.js';

const names = (parsed: ReturnType<typeof parseDrillArgs>) =>
  typeof parsed === 'string'
    ? parsed
    : parsed.scenarios.map((spec) => spec.name);

describe('parseDrillArgs', () => {
  it('runs every scenario three times on six machines by default', () => {
    const parsed = parseDrillArgs([]);
    expect(names(parsed)).toEqual(SCENARIOS.map((spec) => spec.name));
    expect(parsed).toMatchObject({
      repeat: 3,
      machines: 6,
      short: false,
      strict: false,
      agentIntervalSeconds: 15,
    });
  });

  it('runs one cut and repair per topology, once, with --short', () => {
    const parsed = parseDrillArgs(['--short']);
    expect(names(parsed)).toEqual(['cut-internal', 'cut-silenced']);
    expect(parsed).toMatchObject({ repeat: 1, short: true });
  });

  it('keeps an explicit --repeat and --scenario with --short', () => {
    const parsed = parseDrillArgs([
      '--short',
      '--repeat',
      '2',
      '--scenario',
      'fleet-cut,origin-stopped',
    ]);
    expect(names(parsed)).toEqual(['origin-stopped', 'fleet-cut']);
    expect(parsed).toMatchObject({ repeat: 2 });
  });

  it('answers help and version', () => {
    expect(parseDrillArgs(['--help'])).toBe('help');
    expect(parseDrillArgs(['--version'])).toBe('version');
    for (const spec of SCENARIOS) expect(HELP).toContain(spec.name);
  });

  it.each([
    [
      ['--machines', '3'],
      /--machines must be a whole number from 4 to 20 \(got "3"\)/,
    ],
    [['--machines', '6.5'], /--machines must be a whole number/],
    [['--repeat', 'x'], /--repeat must be a whole number from 1/],
    [['--job-every', '0'], /--job-every must be a number from 0.5 to 30/],
    [
      ['--scenario', 'cut-everything'],
      /--scenario "cut-everything" is not one of cut-internal/,
    ],
    [['--frobnicate'], /frobnicate/],
  ])('refuses %j naming the flag', (argv, message) => {
    expect(() => parseDrillArgs(argv)).toThrow(UsageError);
    expect(() => parseDrillArgs(argv)).toThrow(message);
  });

  it('accepts the limits themselves', () => {
    const parsed = parseDrillArgs([
      '--machines',
      String(LIMITS.machines.max),
      '--job-seconds',
      String(LIMITS.jobSeconds.min),
    ]);
    expect(parsed).toMatchObject({
      machines: LIMITS.machines.max,
      jobSeconds: LIMITS.jobSeconds.min,
    });
  });
});

describe('rotation', () => {
  it("puts job n's turn first and keeps the rest in order", () => {
    expect(rotation(['a', 'b', 'c', 'd'], 0)).toEqual(['a', 'b', 'c', 'd']);
    expect(rotation(['a', 'b', 'c', 'd'], 6)).toEqual(['c', 'd', 'a', 'b']);
  });
});
