import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../clients/dispatcher/cli.js';
import { FLAGS } from '../../../clients/dispatcher/flags.js';
import type { SettingsTable } from '../../../clients/settings.js';
import {
  columnHelp,
  formerNote,
  parseDurationMs,
  parsePort,
  portSetting,
  readSettings,
  STATUS_URL,
  settingName,
  settingsMarkdown,
  UsageError,
} from '../../../clients/settings.js';
import { runCli } from '../../helpers/dispatcher-cli.js';

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

describe('ports, the same in every program', () => {
  it.each([
    ['0', 0],
    ['80', 80],
    [' 8080 ', 8080],
    ['65535', 65_535],
  ])('reads %j as %d', (text, port) => {
    expect(parsePort(text)).toBe(port);
  });

  it.each(['', 'http', '65536', '-1', '80.5', '1e3', '0x50', '8 0'])(
    'refuses %j',
    (text) => {
      expect(parsePort(text)).toBeUndefined();
    },
  );

  it('refuses a bad port setting with a usage error naming its variable and flag', () => {
    const setting = { flag: 'port', env: 'PORT', help: 'HTTP port' };

    expect(portSetting(setting, '3000')).toBe(3000);
    expect(() => portSetting(setting, '70000')).toThrow(UsageError);
    expect(() => portSetting(setting, '70000')).toThrow(
      'PORT (--port) must be a port number from 0 to 65535, not "70000"',
    );
  });
});

describe('renamed environment variables', () => {
  const TABLE = { url: { ...STATUS_URL, help: 'base URL' } };
  const readEnv = (env: Record<string, string>) =>
    readSettings(TABLE, { argv: [], env });
  it('reads the old name under the new one and warns, naming the new one', () => {
    const read = readEnv({ RELAYWATCH_STATUS_URL: 'http://old' });
    expect(read.text('url')).toBe('http://old');
    expect(read.warnings).toEqual([
      'RELAYWATCH_STATUS_URL is deprecated; set RELAYWATCH_URL instead',
    ]);
  });

  it('says nothing when only new names are used', () => {
    expect(readEnv({ RELAYWATCH_URL: 'http://new' }).warnings).toEqual([]);
  });
});

describe("the dispatcher's duration flags", () => {
  const durations = (argv: string[]) => {
    const read = readSettings(FLAGS, { argv, env: {} });
    return {
      ms: (['timeout', 'postTimeout', 'maxStale', 'totalTimeout'] as const).map(
        (key) => read.durationMs(key),
      ),
      warnings: read.warnings,
    };
  };

  it('reads the new flags, in both spellings, in milliseconds', () => {
    expect(
      durations([
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
    ).toEqual({ ms: [5_000, 500, 600_000, 90_000], warnings: [] });
  });

  it('reads the defaults in milliseconds', () => {
    expect(durations([]).ms).toEqual([5_000, 15_000, 600_000, 60_000]);
  });

  it('keeps the old millisecond flags, with a warning naming the new flag', () => {
    expect(durations(['--post-timeout-ms', '2000'])).toEqual({
      ms: [5_000, 2_000, 600_000, 60_000],
      warnings: [
        expect.stringContaining(
          '--post-timeout-ms is deprecated; use --post-timeout',
        ),
      ],
    });
  });

  it('says where each value came from, old names included', () => {
    const read = readSettings(FLAGS, {
      argv: ['--post-timeout-ms', '1500', '--timeout', '2s'],
      env: { RELAYWATCH_URL: 'http://x' },
    });

    expect(read.given('postTimeout')).toEqual({
      name: '--post-timeout-ms',
      former: true,
      unit: 'ms',
    });
    expect(read.given('timeout')).toEqual({ name: '--timeout', former: false });
    expect(read.given('url')).toEqual({
      name: 'RELAYWATCH_URL',
      former: false,
    });
    expect(read.given('totalTimeout')).toBeUndefined();
  });

  it('refuses a duration it cannot read, naming the flag, with exit 2 from the CLI', async () => {
    expect(() => durations(['--timeout', 'soon'])).toThrow(
      '--timeout must be a duration',
    );
    expect(() => durations(['--timeout-ms', '5s'])).toThrow(
      '--timeout-ms must be a number of milliseconds (got "5s")',
    );
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

describe('where a value came from, told with the value', () => {
  const RENAMED = {
    wait: {
      flag: 'wait',
      env: 'X_WAIT',
      fallback: '9s',
      help: 'how long to wait',
      formerly: { flag: 'wait-ms', env: 'X_WAIT_MS', unit: 'ms' },
    },
  } as const satisfies SettingsTable;
  // Each name with a text of its own, in the order they win.
  const NAMES = [
    {
      label: 'new flag',
      argv: ['--wait', '1s'],
      env: {},
      text: '1s',
      ms: 1_000,
      given: { name: '--wait', former: false },
    },
    {
      label: 'old flag',
      argv: ['--wait-ms', '2000'],
      env: {},
      text: '2000',
      ms: 2_000,
      given: { name: '--wait-ms', former: true, unit: 'ms' },
    },
    {
      label: 'new variable',
      argv: [],
      env: { X_WAIT: '3s' },
      text: '3s',
      ms: 3_000,
      given: { name: 'X_WAIT', former: false },
    },
    {
      label: 'old variable',
      argv: [],
      env: { X_WAIT_MS: '4000' },
      text: '4000',
      ms: 4_000,
      given: { name: 'X_WAIT_MS', former: true, unit: 'ms' },
    },
  ];
  const combinations = Array.from({ length: 2 ** NAMES.length - 1 }, (_, i) =>
    NAMES.filter((_, bit) => ((i + 1) >> bit) & 1),
  );

  it.each(
    combinations.map((names) => [
      names.map(({ label }) => label).join(' + '),
      names,
    ]),
  )(
    '%s: the text, its name and its unit are those of the first that wins',
    (_, names) => {
      const read = readSettings(RENAMED, {
        argv: names.flatMap(({ argv }) => argv),
        env: Object.assign({}, ...names.map(({ env }) => env)),
      });
      const [winner] = names as [(typeof NAMES)[number]];

      expect({
        text: read.text('wait'),
        given: read.given('wait'),
        nameOf: read.nameOf('wait'),
        ms: read.durationMs('wait'),
      }).toEqual({
        text: winner.text,
        given: winner.given,
        nameOf: winner.given.former ? winner.given.name : 'X_WAIT (--wait)',
        ms: winner.ms,
      });
    },
  );

  it('names no source for the default', () => {
    const read = readSettings(RENAMED, { argv: [], env: {} });

    expect([read.text('wait'), read.given('wait')]).toEqual(['9s', undefined]);
  });

  it('with emptyIsDefault, reads an empty flag or variable as the default', () => {
    const read = (argv: string[], env: Record<string, string>) => {
      const settings = readSettings(RENAMED, {
        argv,
        env,
        emptyIsDefault: true,
      });
      return [settings.text('wait'), settings.given('wait')];
    };

    expect(read(['--wait='], { X_WAIT: '3s' })).toEqual(['9s', undefined]);
    expect(read([], { X_WAIT: '' })).toEqual(['9s', undefined]);
    expect(read([], { X_WAIT_MS: '' })).toEqual(['9s', undefined]);
    expect(read([], { X_WAIT: '3s' })).toEqual([
      '3s',
      { name: 'X_WAIT', former: false },
    ]);
    expect(
      readSettings(RENAMED, { argv: ['--wait='], env: {} }).given('wait'),
    ).toEqual({ name: '--wait', former: false });
  });
});

describe('a settings table', () => {
  const TABLE = {
    url: {
      flag: 'url',
      env: 'X_URL',
      value: '<url>',
      help: 'where it is',
      formerly: { env: 'X_OLD_URL', flag: 'old-url' },
    },
    wait: {
      flag: 'wait',
      value: '<duration>',
      fallback: '5s',
      help: 'how long to wait\n(default {default})',
    },
    quiet: { flag: 'quiet', short: 'q', boolean: true, help: 'say less' },
  } as const satisfies SettingsTable;

  it('reads a flag over its variable over its default', () => {
    const fromFlag = readSettings(TABLE, {
      argv: ['--url', 'http://flag', '--wait=1m'],
      env: { X_URL: 'http://env' },
    });
    const fromEnv = readSettings(TABLE, {
      argv: ['-q'],
      env: { X_URL: 'http://env' },
    });

    expect([fromFlag.text('url'), fromFlag.text('wait')]).toEqual([
      'http://flag',
      '1m',
    ]);
    expect([fromEnv.text('url'), fromEnv.text('wait')]).toEqual([
      'http://env',
      '5s',
    ]);
    expect(fromEnv.flags.quiet).toBe(true);
  });

  it('reads old names under the new ones, with one warning each', () => {
    const read = readSettings(TABLE, {
      argv: ['--old-url', 'http://flag'],
      env: { X_OLD_URL: 'http://env' },
    });

    expect(read.text('url')).toBe('http://flag');
    expect(read.warnings).toEqual([
      'X_OLD_URL is deprecated; set X_URL instead',
      '--old-url is deprecated; use --url instead',
    ]);
  });

  it('refuses an unknown flag with parseArgs’ own message', () => {
    expect(() => readSettings(TABLE, { argv: ['--nope'], env: {} })).toThrow(
      "Unknown option '--nope'",
    );
  });

  it('writes help lines and README rows from the same rows', () => {
    expect(
      columnHelp(Object.values(TABLE), { flagWidth: 20, envColumn: 40 }),
    ).toEqual([
      '  --url <url>       where it is         env X_URL',
      '  --wait <duration> how long to wait',
      '                    (default 5s)',
      '  -q, --quiet       say less',
    ]);
    expect(settingsMarkdown(Object.values(TABLE)).split('\n')).toEqual([
      '| flag | variable | default | meaning |',
      '|---|---|---|---|',
      '| `--url <url>` | `X_URL` |  | where it is (formerly `--old-url`, `X_OLD_URL`, still read with a warning) |',
      '| `--wait <duration>` |  | `5s` | how long to wait (default 5s) |',
      '| `--quiet` |  |  | say less |',
      '',
    ]);
  });

  it('notes the old names for --help as they are, unless the help already names them', () => {
    expect(formerNote(TABLE.url)).toEqual([
      '(formerly --old-url, X_OLD_URL, still read with a warning)',
    ]);
    expect(
      formerNote({ ...TABLE.url, help: 'where it is (was --old-url)' }),
    ).toEqual(['(formerly X_OLD_URL, still read with a warning)']);
    expect(
      formerNote({
        ...TABLE.url,
        help: 'where it is (was --old-url, X_OLD_URL)',
      }),
    ).toEqual([]);
    expect(formerNote(TABLE.wait)).toEqual([]);
  });

  it('reads an old name that took milliseconds in milliseconds, saying so in its warning and README row', () => {
    const TIMED = {
      wait: {
        flag: 'wait',
        env: 'X_WAIT',
        value: '<duration>',
        fallback: '5s',
        help: 'how long to wait',
        formerly: { flag: 'wait-ms', env: 'X_WAIT_MS', unit: 'ms' },
      },
    } as const satisfies SettingsTable;
    const fromOldFlag = readSettings(TIMED, {
      argv: ['--wait-ms', '1500'],
      env: {},
    });
    const fromOldEnv = readSettings(TIMED, {
      argv: [],
      env: { X_WAIT_MS: '250' },
    });
    const fromNew = readSettings(TIMED, {
      argv: [],
      env: { X_WAIT: '1500' },
    });

    expect(fromOldFlag.durationMs('wait')).toBe(1_500);
    expect(fromOldFlag.given('wait')).toEqual({
      name: '--wait-ms',
      former: true,
      unit: 'ms',
    });
    expect(fromOldFlag.warnings).toEqual([
      '--wait-ms is deprecated; use --wait instead, which takes a duration such as 500ms or 10s (a plain number there is seconds, not milliseconds)',
    ]);
    expect(fromOldEnv.durationMs('wait')).toBe(250);
    expect(fromOldEnv.warnings).toEqual([
      expect.stringMatching(
        /^X_WAIT_MS is deprecated; set X_WAIT instead, .*not milliseconds\)$/,
      ),
    ]);
    expect(fromNew.durationMs('wait')).toBe(1_500_000);
    expect(fromNew.given('wait')).toEqual({ name: 'X_WAIT', former: false });
    expect(settingsMarkdown(Object.values(TIMED))).toContain(
      '(formerly `--wait-ms`, `X_WAIT_MS`, in milliseconds, still read with a warning)',
    );
  });

  it('refuses a duration it cannot read, naming the name it came under', () => {
    const TIMED = {
      wait: {
        flag: 'wait',
        env: 'X_WAIT',
        fallback: '5s',
        help: 'how long to wait',
        formerly: { env: 'X_WAIT_MS', unit: 'ms' },
      },
    } as const satisfies SettingsTable;
    const read = (argv: string[], env: Record<string, string>) => () =>
      readSettings(TIMED, { argv, env }).durationMs('wait');

    expect(read(['--wait', 'soon'], {})).toThrow(
      '--wait must be a duration such as 500ms, 10s, 2m or 1h (a plain number is seconds) (got "soon")',
    );
    expect(read([], { X_WAIT: '2x' })).toThrow('X_WAIT must be a duration');
    expect(read([], { X_WAIT_MS: '2s' })).toThrow(
      'X_WAIT_MS must be a number of milliseconds (got "2s")',
    );
    expect(read([], { X_WAIT_MS: '2s' })).toThrow(UsageError);
  });

  it('says nothing of where a default came from', () => {
    const read = readSettings(TABLE, { argv: [], env: {} });

    expect(read.given('wait')).toBeUndefined();
    expect(read.durationMs('wait')).toBe(5_000);
    expect(read.durationMs('url')).toBeUndefined();
  });

  it('names a setting by its variable and flag', () => {
    expect(settingName(TABLE.url)).toBe('X_URL (--url)');
    expect(settingName(TABLE.wait)).toBe('--wait');
  });
});
