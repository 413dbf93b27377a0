import { describe, expect, it } from 'vitest';
import { EXIT } from '../../clients/dispatcher/cli.js';
import { rewriteDurationFlags } from '../../clients/dispatcher/duration-flags.js';
import { parseDurationMs, withRenamedEnv } from '../../clients/settings.js';
import { runCli } from '../helpers/dispatcher-cli.js';

describe('durations, the same in every program', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1_500],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1d', 86_400_000],
    ['60', 60_000],
    ['0.25', 250],
    [' 10S ', 10_000],
  ])('reads %j as %d ms (a plain number is seconds)', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 'soon', '10 s', '-5s', '5x', 's', '1e3'])(
    'refuses %j',
    (text) => {
      expect(parseDurationMs(text)).toBeUndefined();
    },
  );
});

describe('renamed environment variables', () => {
  it('reads the old name under the new one and warns, naming the new one', () => {
    const { env, warnings } = withRenamedEnv({
      RELAYWATCH_STATUS_URL: 'http://old',
    });
    expect(env.RELAYWATCH_URL).toBe('http://old');
    expect(warnings).toEqual([
      'RELAYWATCH_STATUS_URL is deprecated; set RELAYWATCH_URL instead',
    ]);
  });

  it('says nothing when only new names are used', () => {
    expect(withRenamedEnv({ RELAYWATCH_URL: 'http://new' }).warnings).toEqual(
      [],
    );
  });
});

describe("the dispatcher's duration flags", () => {
  it('rewrites the new flags, in both spellings, to milliseconds', () => {
    expect(
      rewriteDurationFlags([
        '--timeout',
        '5s',
        '--post-timeout=500ms',
        '--max-stale',
        '10m',
        '--total-timeout',
        '90',
        '--id',
        'x',
      ]),
    ).toEqual({
      ok: true,
      argv: [
        '--timeout-ms',
        '5000',
        '--post-timeout-ms',
        '500',
        '--max-stale-ms',
        '600000',
        '--total-timeout-ms',
        '90000',
        '--id',
        'x',
      ],
      warnings: [],
    });
  });

  it('keeps the old millisecond flags, with a warning naming the new flag', () => {
    const result = rewriteDurationFlags(['--post-timeout-ms', '2000']);
    expect(result).toEqual({
      ok: true,
      argv: ['--post-timeout-ms', '2000'],
      warnings: [
        expect.stringContaining(
          '--post-timeout-ms is deprecated; use --post-timeout',
        ),
      ],
    });
  });

  it('refuses a duration it cannot read, naming the flag, with exit 2 from the CLI', async () => {
    expect(rewriteDurationFlags(['--timeout', 'soon'])).toEqual({
      ok: false,
      message: expect.stringContaining('--timeout must be a duration'),
    });
    const run = await runCli(['--timeout', 'soon']);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain('--timeout must be a duration');
  });

  it('warns on stderr when an old flag is used', async () => {
    const run = await runCli(['--timeout-ms', '5000', '--help']);
    expect(run.code).toBe(EXIT.dispatched);
    expect(run.stderr).toContain('--timeout-ms is deprecated; use --timeout');
  });
});
