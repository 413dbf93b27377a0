import { appendFileSync } from 'node:fs';
import { ConfigError } from '../../functions/core/config.js';
import type { MetricsSink } from '../../functions/log.js';
import { publicRoutes, routes } from '../../functions/routes.js';
import packageJson from '../../package.json' with { type: 'json' };
import { readStartSettings, START_HELP } from './start-settings.js';
import {
  LOCAL_AGGREGATE_ROUTE,
  startLocalStatusCenter,
} from './status-center.js';

/** How its messages name this program: `relaywatch` is the operator CLI. */
const PROGRAM = 'npm start';

function fail(message: string): never {
  process.stderr.write(`${PROGRAM}: ${message}\n`);
  process.exit(2);
}

const settings = (() => {
  try {
    return readStartSettings({
      argv: process.argv.slice(2),
      env: process.env,
    });
  } catch (error) {
    return fail((error as Error).message);
  }
})();
if (settings === 'help') {
  process.stdout.write(START_HELP);
  process.exit(0);
}
if (settings === 'version') {
  process.stdout.write(`relaywatch ${packageJson.version}\n`);
  process.exit(0);
}

// In Lambda every metric line goes to CloudWatch; here they are noise in the terminal unless asked for.
const { metricsFile } = settings;
const metricsSink: MetricsSink = metricsFile
  ? (line) => appendFileSync(metricsFile, line)
  : settings.metrics;
if (metricsFile) {
  try {
    appendFileSync(metricsFile, '');
  } catch (error) {
    fail(`--metrics-file: ${(error as Error).message}`);
  }
}

try {
  const center = await startLocalStatusCenter({
    ...settings.center,
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
  DynamoDB   ${center.dynamodbEndpoint} (table ${center.tableName}${settings.center.dataDir ? '' : ', in memory'})
  aggregation ${settings.center.schedule ? 'every minute' : 'on demand only'}
  metrics    ${metricsFile ? `appended to ${metricsFile}` : settings.metrics ? 'printed with the logs' : 'off (--metrics, --metrics-file FILE)'}

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
