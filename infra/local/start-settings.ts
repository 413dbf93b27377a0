/**
 * Every setting of `npm start`, named once in START_SETTINGS: its flag, its
 * variable, its default and its help line. The flag parsing, --help and the
 * README table are derived from that one table. Kept apart from start.ts,
 * which starts things as it is imported, so the README generator and the
 * tests can read the table.
 */
import type { Setting } from '../../clients/settings.js';
import {
  columnHelp,
  portSetting,
  readSettings,
  UsageError,
} from '../../clients/settings.js';
import type { LocalStatusCenterOptions } from './status-center.js';

export const START_SETTINGS = {
  port: {
    flag: 'port',
    env: 'PORT',
    value: '<n>',
    fallback: '3000',
    help: 'HTTP port of the API (default {default};\n0: any free port)',
  },
  host: {
    flag: 'host',
    env: 'HOST',
    value: '<address>',
    fallback: '127.0.0.1',
    help: 'address the API listens on\n(default {default})',
  },
  dynamodbPort: {
    flag: 'dynamodb-port',
    env: 'DYNAMODB_PORT',
    value: '<n>',
    fallback: '8000',
    help: 'port of the embedded DynamoDB Local\n(default {default}; 0: any free port)',
  },
  dataDir: {
    flag: 'data-dir',
    env: 'RELAYWATCH_DATA_DIR',
    value: '<dir>',
    help: "keep DynamoDB Local's data there\n(across restarts; default: in memory)",
  },
  dynamodbEndpoint: {
    flag: 'dynamodb-endpoint',
    env: 'DYNAMODB_ENDPOINT',
    value: '<url>',
    help: 'use the DynamoDB at this URL instead of\nstarting one',
  },
  noSchedule: {
    flag: 'no-schedule',
    boolean: true,
    help: 'do not aggregate every minute\n(POST /_local/run/aggregate runs it)',
  },
  metrics: {
    flag: 'metrics',
    boolean: true,
    help: 'print the CloudWatch metric lines (EMF)\nwith the logs (default: off)',
  },
  metricsFile: {
    flag: 'metrics-file',
    value: '<file>',
    help: 'append the metric lines to this file\ninstead (one JSON object per line)',
  },
  help: { flag: 'help', short: 'h', boolean: true, help: 'this text' },
  version: { flag: 'version', boolean: true, help: 'print the version' },
} as const satisfies Record<string, Setting>;

export const START_HELP = `relaywatch local status center

Starts DynamoDB Local (in memory unless --data-dir), creates the table, serves
the API with the same handlers as in AWS, and aggregates every minute.

Usage: npm start -- [options]

Options (a flag wins over its environment variable):
${columnHelp(Object.values(START_SETTINGS), {
  flagWidth: 29,
  envColumn: 70,
}).join('\n')}

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad option or could not start.

Tokens: RELAYWATCH_REPORTER_TOKEN (fleet-wide, unbound), RELAYWATCH_READER_TOKEN,
RELAYWATCH_ADMIN_TOKEN; random ones are generated and printed when unset.
RELAYWATCH_REPORTER_KEYS signs per-machine reporter tokens (POST /v1/reporter-tokens);
a random key is generated when unset, so those tokens then last one run. Every detection knob
(RELAYWATCH_FAIL_RATIO, ...) is read from the environment: see README.md.
`;

/** How `npm start` was asked to run, read and checked. */
export type StartSettings = {
  /** How to start the status center; its metric lines are start.ts's to wire. */
  center: Omit<LocalStatusCenterOptions, 'metrics'>;
  /** Print the metric lines with the logs. */
  metrics: boolean;
  /** Append the metric lines to this file instead. */
  metricsFile: string | undefined;
};

/**
 * Reads `npm start`'s flags over its variables over the defaults: 'help' or
 * 'version' when asked for (before anything else is checked), else the
 * settings. Throws a UsageError naming the setting on a bad port, and
 * parseArgs' own message followed by the help on an unknown flag or a
 * missing value. An empty flag or variable (`PORT=`, `--data-dir=`) stands
 * for the default (readSettings' emptyIsDefault).
 */
export function readStartSettings(input: {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}): 'help' | 'version' | StartSettings {
  let read: ReturnType<typeof readSettings<typeof START_SETTINGS>>;
  try {
    read = readSettings(START_SETTINGS, {
      argv: input.argv,
      env: input.env,
      emptyIsDefault: true,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${START_HELP}`);
  }
  const given = (key: keyof typeof START_SETTINGS) =>
    read.flags[START_SETTINGS[key].flag] === true;
  if (given('help')) return 'help';
  if (given('version')) return 'version';
  return {
    center: {
      port: portSetting(START_SETTINGS.port, read.text('port')),
      host: read.text('host'),
      dynamodbPort: portSetting(
        START_SETTINGS.dynamodbPort,
        read.text('dynamodbPort'),
      ),
      dataDir: read.text('dataDir'),
      dynamodbEndpoint: read.text('dynamodbEndpoint'),
      schedule: !given('noSchedule'),
    },
    metrics: given('metrics'),
    metricsFile: read.text('metricsFile'),
  };
}
