import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../clients/settings.js';
import {
  readStartSettings,
  START_HELP,
  START_SETTINGS,
} from '../../../../infra/local/start-settings.js';

const read = (argv: string[], env: Record<string, string> = {}) =>
  readStartSettings({ argv, env });

describe("npm start's settings", () => {
  it('starts on the documented defaults when nothing is given', () => {
    expect(read([])).toEqual({
      center: {
        port: 3000,
        host: '127.0.0.1',
        dynamodbPort: 8000,
        dataDir: undefined,
        dynamodbEndpoint: undefined,
        schedule: true,
      },
      metrics: false,
      metricsFile: undefined,
    });
  });

  it('reads each flag over its variable', () => {
    const env = {
      PORT: '5000',
      HOST: '0.0.0.0',
      DYNAMODB_PORT: '9000',
      RELAYWATCH_DATA_DIR: 'from-env',
      DYNAMODB_ENDPOINT: 'http://127.0.0.1:9001',
    };

    const fromEnv = read([], env);
    const fromFlags = read(
      [
        '--port',
        '4123',
        '--host=::1',
        '--dynamodb-port',
        '0',
        '--data-dir',
        'from-flag',
        '--dynamodb-endpoint',
        'http://127.0.0.1:9002',
        '--no-schedule',
        '--metrics',
        '--metrics-file',
        'metrics.jsonl',
      ],
      env,
    );

    expect(fromEnv).toMatchObject({
      center: {
        port: 5000,
        host: '0.0.0.0',
        dynamodbPort: 9000,
        dataDir: 'from-env',
        dynamodbEndpoint: 'http://127.0.0.1:9001',
        schedule: true,
      },
    });
    expect(fromFlags).toEqual({
      center: {
        port: 4123,
        host: '::1',
        dynamodbPort: 0,
        dataDir: 'from-flag',
        dynamodbEndpoint: 'http://127.0.0.1:9002',
        schedule: false,
      },
      metrics: true,
      metricsFile: 'metrics.jsonl',
    });
  });

  it('counts an empty variable as unset', () => {
    const settings = read([], {
      PORT: '',
      HOST: '',
      RELAYWATCH_DATA_DIR: '',
    });

    expect(settings).toMatchObject({
      center: { port: 3000, host: '127.0.0.1', dataDir: undefined },
    });
  });

  it('reads an empty flag as the default, over its variable', () => {
    const settings = read(['--port=', '--host=', '--data-dir='], {
      PORT: '5000',
      HOST: '0.0.0.0',
      RELAYWATCH_DATA_DIR: 'from-env',
    });

    expect(settings).toMatchObject({
      center: { port: 3000, host: '127.0.0.1', dataDir: undefined },
    });
  });

  it('answers --help and --version before checking anything else', () => {
    expect(read(['--help'], { PORT: 'nope' })).toBe('help');
    expect(read(['-h'])).toBe('help');
    expect(read(['--version'], { DYNAMODB_PORT: '99999' })).toBe('version');
  });

  it('refuses a bad port naming its variable and flag', () => {
    expect(() => read([], { DYNAMODB_PORT: '99999' })).toThrow(
      'DYNAMODB_PORT (--dynamodb-port) must be a port number from 0 to 65535, not "99999"',
    );
    expect(() => read(['--port', 'http'])).toThrow(UsageError);
  });

  it('refuses an unknown flag naming it, followed by the usage', () => {
    let thrown: unknown;
    try {
      read(['--data-directory', 'x']);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toContain(
      "Unknown option '--data-directory'",
    );
    expect((thrown as Error).message).toContain('Usage: npm start');
  });

  it('refuses a flag given without its value', () => {
    expect(() => read(['--port'])).toThrow(/--port/);
  });

  it('documents every setting in --help, with its variable', () => {
    for (const setting of Object.values(START_SETTINGS)) {
      expect(START_HELP).toContain(`--${setting.flag}`);
      if ('env' in setting) expect(START_HELP).toContain(`env ${setting.env}`);
    }
  });
});
