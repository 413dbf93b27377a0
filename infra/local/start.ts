import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../functions/core/config.js';
import type { MetricsSink } from '../../functions/log.js';
import { publicRoutes, routes } from '../../functions/routes.js';
import packageJson from '../../package.json' with { type: 'json' };
import {
  LOCAL_AGGREGATE_ROUTE,
  startLocalStatusCenter,
} from './status-center.js';

const HELP = `relaywatch local status center

Starts DynamoDB Local (in memory unless --data-dir), creates the table, serves
the API with the same handlers as in AWS, and aggregates every minute.

Usage: npm start -- [options]

Options (each also settable by the environment variable shown):
  --port N              HTTP port (PORT, default 3000)
  --host H              listen address (HOST, default 127.0.0.1)
  --dynamodb-port N     port of the embedded DynamoDB Local (DYNAMODB_PORT, default 8000)
  --data-dir DIR        keep DynamoDB Local's data in DIR (RELAYWATCH_DATA_DIR; default: in memory)
  --dynamodb-endpoint U use this DynamoDB instead of starting one (DYNAMODB_ENDPOINT)
  --no-schedule         do not aggregate every minute (use POST /_local/run/aggregate)
  --metrics             print the CloudWatch metric lines (EMF) with the logs; off by default
  --metrics-file FILE   append the metric lines to FILE instead (one JSON object per line)
  -h, --help            this text
  --version             print the version

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad option or could not start.

Tokens: RELAYWATCH_REPORTER_TOKEN (fleet-wide, unbound), RELAYWATCH_READER_TOKEN,
RELAYWATCH_ADMIN_TOKEN; random ones are generated and printed when unset.
RELAYWATCH_REPORTER_KEYS signs per-machine reporter tokens (POST /v1/reporter-tokens);
a random key is generated when unset, so those tokens then last one run. Every detection knob
(RELAYWATCH_FAIL_RATIO, ...) is read from the environment: see README.md.
`;

function fail(message: string): never {
  process.stderr.write(`relaywatch: ${message}\n`);
  process.exit(2);
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'dynamodb-port': { type: 'string' },
        'data-dir': { type: 'string' },
        'dynamodb-endpoint': { type: 'string' },
        'no-schedule': { type: 'boolean' },
        metrics: { type: 'boolean' },
        'metrics-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n\n${HELP}`);
  }
})();
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (values.version) {
  process.stdout.write(`relaywatch ${packageJson.version}\n`);
  process.exit(0);
}

const portOf = (name: string, text: string | undefined, fallback: number) => {
  if (text === undefined || text === '') return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    fail(`${name} must be a port number (0-65535), not "${text}"`);
  return port;
};

// In Lambda every metric line goes to CloudWatch; here they are noise in the terminal unless asked for.
const metricsFile = values['metrics-file'];
const metricsSink: MetricsSink = metricsFile
  ? (line) => appendFileSync(metricsFile, line)
  : (values.metrics ?? false);
if (metricsFile) {
  try {
    appendFileSync(metricsFile, '');
  } catch (error) {
    fail(`--metrics-file: ${(error as Error).message}`);
  }
}

try {
  const center = await startLocalStatusCenter({
    port: portOf('--port / PORT', values.port ?? process.env.PORT, 3000),
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    dynamodbPort: portOf(
      '--dynamodb-port / DYNAMODB_PORT',
      values['dynamodb-port'] ?? process.env.DYNAMODB_PORT,
      8000,
    ),
    dataDir: values['data-dir'] ?? process.env.RELAYWATCH_DATA_DIR,
    dynamodbEndpoint:
      values['dynamodb-endpoint'] ?? process.env.DYNAMODB_ENDPOINT,
    schedule: !values['no-schedule'],
    metrics: metricsSink,
  });
  const routeLines = [...Object.values(routes), LOCAL_AGGREGATE_ROUTE]
    .map(
      (route) =>
        `  ${route.method.padEnd(6)} ${center.url}${route.path}  (${route.role})`,
    )
    .join('\n')
    .concat(
      Object.values(publicRoutes)
        .map(
          (route) =>
            `\n  ${route.method.padEnd(6)} ${center.url}${route.path}  (no token)`,
        )
        .join(''),
    );
  process.stdout.write(`
relaywatch status center is running
  API        ${center.url}
  dashboard  ${center.url}${publicRoutes.getDashboard.path}  (paste the reader token)
  DynamoDB   ${center.dynamodbEndpoint} (table ${center.tableName}${(values['data-dir'] ?? process.env.RELAYWATCH_DATA_DIR) ? '' : ', in memory'})
  aggregation ${values['no-schedule'] ? 'on demand only' : 'every minute'}
  metrics    ${metricsFile ? `appended to ${metricsFile}` : values.metrics ? 'printed with the logs' : 'off (--metrics, --metrics-file FILE)'}

Tokens (Authorization: Bearer <token>)
  reporter  ${center.tokens.reporter}   (fleet-wide: may report for ANY IP; for trials)
  reader    ${center.tokens.reader}
  admin     ${center.tokens.admin}

A relay machine's own token (it may report only for its IP):
  curl -s -X POST ${center.url}/v1/reporter-tokens -H 'authorization: Bearer ${center.tokens.admin}' \\
    -H 'content-type: application/json' -d '{"ip":"203.0.113.7"}'

Routes
${routeLines}

Try:
  curl -s -X POST ${center.url}/v1/heartbeats -H 'authorization: Bearer ${center.tokens.reporter}' \\
    -H 'content-type: application/json' -d '{"ip":"203.0.113.7","process":"ffmpeg-1","status":"ok"}'
  curl -s ${center.url}/v1/blocklist -H 'authorization: Bearer ${center.tokens.reader}'
  RELAYWATCH_URL=${center.url} RELAYWATCH_TOKEN=${center.tokens.admin} npx relaywatch status

Ctrl-C stops everything.
`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(
      `\n${signal}: stopping the API and DynamoDB Local...\n`,
    );
    await center.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
} catch (error) {
  fail(
    error instanceof ConfigError
      ? error.message
      : `could not start: ${(error as Error).message}`,
  );
}
