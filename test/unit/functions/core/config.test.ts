import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  KNOBS,
  parseConfig,
} from '../../../../functions/core/config.js';

/**
 * Values each knob must refuse. A knob whose schema takes any non-empty text
 * maps to null (an empty value means "use the default"). A new knob must be
 * added here: the coverage test below fails until it is.
 */
const BAD_VALUES: Record<string, string[] | null> = {
  TABLE_NAME: ['ab', 'has space', 'x'.repeat(256), 'a/b'],
  DYNAMODB_ENDPOINT: null,
  AWS_REGION: ['US-EAST-1', 'mars', 'us_east_1'],
  RELAYWATCH_SHARDS: ['0', '65', '2.5', 'four', '-1', '1e2', ' 4'],
  RELAYWATCH_GRACE_SECONDS: ['-1', '51', '1.5', 'ten'],
  RELAYWATCH_MAX_CATCHUP_MINUTES: ['0', '121', '3.5', 'x'],
  RELAYWATCH_WINDOW_MINUTES: ['0', '16', '1.5', 'one'],
  RELAYWATCH_FAIL_RATIO: ['0', '1.01', '-0.5', '50%', 'half', '.5'],
  RELAYWATCH_MIN_SAMPLES: ['0', '1000001', '2.5', 'ten'],
  RELAYWATCH_BAN_SECONDS: ['0', String(7 * 86_400 + 1), '60.5', '1h'],
  RELAYWATCH_MAX_BAN_SECONDS: ['0', String(30 * 86_400 + 1), '1.5', '4h'],
  RELAYWATCH_MAX_BAN_FRACTION: ['0', '1.5', 'all'],
  RELAYWATCH_ORIGIN_OUTAGE_MIN_IPS: ['1', '10001', '2.5', 'three'],
  RELAYWATCH_ORIGIN_OUTAGE_RATIO: ['0', '2', 'most'],
  RELAYWATCH_FLEET_FAILURE_SHARE: ['0', '1.1', 'most'],
  RELAYWATCH_FLEET_MIN_IPS: ['1', '10001', '3.5', 'x'],
  RELAYWATCH_RELEASE_MINUTES: ['0', '61', '1.5', 'x'],
  RELAYWATCH_PROBE_OK_RATIO: ['0', '1.2', 'x'],
  RELAYWATCH_PROBE_MIN_SAMPLES: ['0', '100001', '1.5', 'x'],
  RELAYWATCH_ALLOWLIST: [
    'example.net',
    '10.0.0.0/33',
    '10.0.0.0/8, 300.1.1.1',
    '10.0.0.0/8;192.0.2.1',
  ],
  RELAYWATCH_DRY_RUN: ['maybe', 'TRUE', '2'],
  RELAYWATCH_SILENT_LEASES: ['0', '11', '1.5', 'x'],
  RELAYWATCH_FLEET_SILENCE_SHARE: ['0', '1.5', 'x'],
  RELAYWATCH_PASS_SECONDS: ['4', '61', '7.5', 'x'],
  RELAYWATCH_SILENT_MINUTES: ['0', '1441', '2.5', 'x'],
  RELAYWATCH_BUCKET_TTL_HOURS: ['0', String(24 * 90 + 1), '1.5', 'x'],
  RELAYWATCH_EVENT_TTL_DAYS: ['0', '3651', '1.5', 'x'],
  RELAYWATCH_AGGREGATE_WAITS: ['sometimes', 'Yes'],
  LOG_LEVEL: ['trace', 'INFO', 'verbose'],
  RELAYWATCH_REPORTER_TOKEN: null,
  RELAYWATCH_REPORTER_KEYS: ['short', `${'k'.repeat(40)},short`],
  RELAYWATCH_CREDENTIAL_CACHE_SECONDS: ['-1', '3601', '1.5', 'x'],
  RELAYWATCH_READER_TOKEN: null,
  RELAYWATCH_ADMIN_TOKEN: null,
  RELAYWATCH_TOKEN_SECRETS: null,
};

const knobList = Object.entries(KNOBS).map(([key, knob]) => ({
  key,
  env: knob.env,
  fallback: knob.fallback,
}));

function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe('parseConfig defaults', () => {
  it('starts with no variables set', () => {
    expect(() => parseConfig({})).not.toThrow();
  });

  it('applies the documented defaults', () => {
    expect(parseConfig({})).toMatchObject({
      tableName: 'relaywatch',
      region: 'us-east-1',
      shards: 4,
      graceSeconds: 10,
      maxCatchUpMinutes: 10,
      windowMinutes: 1,
      failRatio: 0.5,
      minSamples: 10,
      banSeconds: 3600,
      maxBanSeconds: 14_400,
      maxBanFraction: 0.5,
      allowlist: [],
      dryRun: false,
      waitForGrace: true,
      logLevel: 'info',
    });
    expect(parseConfig({}).dynamodbEndpoint).toBeUndefined();
    expect(parseConfig({}).reporterToken).toBeUndefined();
  });

  it('treats an empty variable as unset', () => {
    expect(
      parseConfig({ RELAYWATCH_SHARDS: '', TABLE_NAME: '' }),
    ).toMatchObject({ shards: 4, tableName: 'relaywatch' });
  });

  it('returns a frozen object', () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads numbers, ratios, flags and lists from their variables', () => {
    const config = parseConfig({
      RELAYWATCH_SHARDS: '16',
      RELAYWATCH_FAIL_RATIO: '0.75',
      RELAYWATCH_DRY_RUN: 'yes',
      RELAYWATCH_AGGREGATE_WAITS: 'off',
      RELAYWATCH_ALLOWLIST: ' 10.0.0.0/8 , 2001:db8::/32,,192.0.2.7 ',
      LOG_LEVEL: 'debug',
      TABLE_NAME: 'relaywatch-prod',
    });
    expect(config).toMatchObject({
      shards: 16,
      failRatio: 0.75,
      dryRun: true,
      waitForGrace: false,
      logLevel: 'debug',
      tableName: 'relaywatch-prod',
    });
    expect(config.allowlist.map((cidr) => [cidr.version, cidr.prefix])).toEqual(
      [
        [4, 8],
        [6, 32],
        [4, 32],
      ],
    );
  });

  it.each([
    ['1', true],
    ['true', true],
    ['on', true],
    ['0', false],
    ['false', false],
    ['no', false],
  ])('reads the flag value %s as %s', (value, expected) => {
    expect(parseConfig({ RELAYWATCH_DRY_RUN: value }).dryRun).toBe(expected);
  });

  it('accepts a ratio of exactly 1', () => {
    expect(parseConfig({ RELAYWATCH_FAIL_RATIO: '1' }).failRatio).toBe(1);
  });
});

describe('parseConfig refuses a bad value, naming the variable', () => {
  it('has bad values listed for every knob, so a new knob cannot go untested', () => {
    expect(Object.keys(BAD_VALUES).sort()).toEqual(
      knobList.map((knob) => knob.env).sort(),
    );
  });

  const cases = knobList.flatMap(({ env }) =>
    (BAD_VALUES[env] ?? []).map((value) => [env, value] as const),
  );

  it.each(cases)(
    '%s=%j throws a ConfigError naming the variable',
    (env, value) => {
      const error = configErrorOf({ [env]: value });
      expect(error.name).toBe('ConfigError');
      expect(error.message).toContain(`${env}=`);
    },
  );

  it.each(knobList.filter(({ env }) => BAD_VALUES[env] === null))(
    'takes any non-empty text for $env',
    ({ key, env }) => {
      const config = parseConfig({
        [env]: 'some text, with punctuation: {"a": 1}',
      }) as Record<string, unknown>;
      expect(config[key]).toBe('some text, with punctuation: {"a": 1}');
    },
  );

  it('names every bad variable in one error, not just the first', () => {
    const error = configErrorOf({
      RELAYWATCH_SHARDS: '0',
      RELAYWATCH_FAIL_RATIO: '2',
      LOG_LEVEL: 'loud',
    });
    expect(error.message).toContain('RELAYWATCH_SHARDS=');
    expect(error.message).toContain('RELAYWATCH_FAIL_RATIO=');
    expect(error.message).toContain('LOG_LEVEL=');
  });

  it('says what a ratio must be', () => {
    expect(configErrorOf({ RELAYWATCH_FAIL_RATIO: '1.5' }).message).toContain(
      'must be a number in (0, 1]',
    );
  });

  it('quotes the allowlist item that is not an IP or CIDR', () => {
    expect(
      configErrorOf({ RELAYWATCH_ALLOWLIST: '10.0.0.0/8,relay-7' }).message,
    ).toContain('"relay-7" is not an IP or CIDR');
  });

  it('refuses a maximum ban shorter than the first ban', () => {
    const error = configErrorOf({
      RELAYWATCH_BAN_SECONDS: '7200',
      RELAYWATCH_MAX_BAN_SECONDS: '3600',
    });
    expect(error.message).toContain(
      'RELAYWATCH_MAX_BAN_SECONDS must be at least RELAYWATCH_BAN_SECONDS',
    );
  });
});
