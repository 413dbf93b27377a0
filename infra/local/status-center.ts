import { randomBytes } from 'node:crypto';
import type { Context, DynamoDBStreamEvent, ScheduledEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { parseWith } from '#contract/validation';
import { apiHandler } from '../../functions/http/api-handler.js';
import type { ApiRuntime } from '../../functions/http/api-runtime.js';
import { createApiRuntime } from '../../functions/http/api-runtime.js';
import { badRequest } from '../../functions/http/errors.js';
import { ok } from '../../functions/http/responses.js';
import type { MetricsSink } from '../../functions/log.js';
import type { HttpRoute } from '../../functions/routes.js';
import {
  publicRoutes,
  routes,
  schedules,
  streamConsumers,
} from '../../functions/routes.js';
import type { RuntimeOverrides } from '../../functions/runtime.js';
import type { DynamoDbLocal } from './dynamodb-local.js';
import { startDynamoDbLocal } from './dynamodb-local.js';
import { entryHandler } from './entries.js';
import type { GatewayRoute, HttpLambda } from './gateway.js';
import { startGateway } from './gateway.js';
import { createInFlight, STOP_WAIT_MS } from './in-flight.js';
import { lambdaContext } from './lambda-context.js';
import { startScheduler } from './scheduler.js';
import { startStreamPoller } from './stream-poller.js';
import { ensureTable } from './table.js';

/** The local-only route that runs the aggregation on demand. */
export const LOCAL_AGGREGATE_ROUTE: HttpRoute = {
  method: 'POST',
  path: '/_local/run/aggregate',
  role: 'admin',
  entry: '(local)',
  table: 'readWrite',
};

const aggregateRequestSchema = z.object({
  time: z.optional(z.iso.datetime({ offset: true })),
});

/**
 * How far ahead of the clock a requested aggregation time may be. Further
 * ahead, the run would record progress for minutes that have not happened,
 * and every later run would decide nothing until the clock caught up.
 */
export const MAX_AGGREGATE_AHEAD_MS = 60_000;

export type LocalStatusCenterOptions = {
  /** HTTP port; 0 picks a free one. */
  port: number;
  host?: string;
  /** Use this DynamoDB endpoint instead of starting DynamoDB Local. */
  dynamodbEndpoint?: string | undefined;
  /** Port for the embedded DynamoDB Local (default 8000); 0 picks a free one. */
  dynamodbPort?: number;
  /** Keep DynamoDB Local's data in this directory (in memory when unset). */
  dataDir?: string | undefined;
  /** Environment the handlers read their knobs from; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Run the aggregation every minute like the EventBridge rule. */
  schedule?: boolean;
  /** Feed the table's stream to the stream consumers (ban expiry events); default true. */
  streams?: boolean;
  /**
   * Where CloudWatch metric lines go; default nowhere: in a terminal they are
   * noise (a few every minute). npm start --metrics or --metrics-file.
   */
  metrics?: MetricsSink;
  overrides?: RuntimeOverrides;
};

export type LocalStatusCenter = {
  url: string;
  dynamodbEndpoint: string;
  tableName: string;
  tokens: { reporter: string; reader: string; admin: string };
  runtime: ApiRuntime;
  /** Runs the aggregation as if EventBridge fired at `time` (default now). */
  aggregate(time?: string): Promise<unknown>;
  /**
   * Stops the schedule, the pollers and the API, lets the requests and
   * aggregation runs under way end (up to STOP_WAIT_MS; their waits between
   * passes are cut short), closes the DynamoDB client, then stops an embedded
   * DynamoDB Local; a second call waits for the first.
   */
  stop(): Promise<void>;
};

const generatedToken = (role: string) =>
  `${role}-${randomBytes(18).toString('base64url')}`;

/**
 * The whole status center on one machine: DynamoDB Local, the table, the HTTP
 * routes from functions/routes.ts served by the very handlers Lambda runs, and
 * the minute schedule. Used by `npm start` and by the tests.
 */
export async function startLocalStatusCenter(
  options: LocalStatusCenterOptions,
): Promise<LocalStatusCenter> {
  const baseEnv = options.env ?? process.env;
  const dynamodb: DynamoDbLocal | undefined = options.dynamodbEndpoint
    ? undefined
    : await startDynamoDbLocal({
        port: options.dynamodbPort ?? 8000,
        dataDir: options.dataDir,
      });
  const endpoint =
    options.dynamodbEndpoint ?? (dynamodb as DynamoDbLocal).endpoint;
  try {
    const tokens = {
      reporter: baseEnv.RELAYWATCH_REPORTER_TOKEN || generatedToken('reporter'),
      reader: baseEnv.RELAYWATCH_READER_TOKEN || generatedToken('reader'),
      admin: baseEnv.RELAYWATCH_ADMIN_TOKEN || generatedToken('admin'),
    };
    const env: Record<string, string | undefined> = {
      ...baseEnv,
      DYNAMODB_ENDPOINT: endpoint,
      RELAYWATCH_REPORTER_TOKEN: tokens.reporter,
      RELAYWATCH_READER_TOKEN: tokens.reader,
      RELAYWATCH_ADMIN_TOKEN: tokens.admin,
      // Signs per-machine reporter tokens; a new one each start unless set (tokens then last one run).
      RELAYWATCH_REPORTER_KEYS:
        baseEnv.RELAYWATCH_REPORTER_KEYS ||
        randomBytes(36).toString('base64url'),
      RELAYWATCH_TOKEN_SECRETS: undefined,
    };
    // A scheduled run sleeps between its passes; stop() cuts those sleeps short
    // so no run goes on against a stopped table.
    let stopped = false;
    const sleeping = new Set<{
      timer: NodeJS.Timeout;
      reject: (error: Error) => void;
    }>();
    const sleep = (ms: number) =>
      new Promise<void>((resolve, reject) => {
        if (stopped)
          return reject(new Error('the local status center stopped'));
        const entry = {
          timer: setTimeout(() => {
            sleeping.delete(entry);
            resolve();
          }, ms),
          reject,
        };
        sleeping.add(entry);
      });
    // The one runtime every handler below is given, built from `env`: the
    // handlers' exported entries (which read process.env) are never called
    // here, so nothing is copied into process.env.
    const runtime = await createApiRuntime(env, {
      sleep,
      metrics: options.metrics ?? false,
      ...options.overrides,
    });
    const { config } = runtime;
    const table = await ensureTable({
      endpoint,
      region: config.region,
      tableName: config.tableName,
    });
    const gatewayRoutes: GatewayRoute[] = [];
    for (const [name, route] of Object.entries(routes)) {
      gatewayRoutes.push({
        name,
        route,
        handler: await entryHandler<ApiRuntime, HttpLambda>(
          route.entry,
          runtime,
        ),
      });
    }
    for (const [name, route] of Object.entries(publicRoutes)) {
      // Public routes hold no runtime: their createHandler takes none.
      gatewayRoutes.push({
        name,
        route,
        handler: await entryHandler<undefined, HttpLambda>(
          route.entry,
          undefined,
        ),
      });
    }
    const aggregateLambda = await entryHandler<
      ApiRuntime,
      (
        event: Pick<ScheduledEvent, 'time'>,
        context: Context,
      ) => Promise<unknown>
    >(schedules.aggregate.entry, runtime);
    // Runs called here, by the schedule or the local route: stop() lets them end first.
    const runs = createInFlight();
    const aggregate = (time?: string) =>
      runs.track(
        aggregateLambda(
          { time: time ?? new Date(runtime.now()).toISOString() },
          lambdaContext('aggregate', schedules.aggregate.timeoutSeconds * 1000),
        ),
      );

    gatewayRoutes.push({
      name: 'localAggregate',
      route: LOCAL_AGGREGATE_ROUTE,
      handler: apiHandler(LOCAL_AGGREGATE_ROUTE, runtime, async ({ body }) => {
        const parsed = parseWith(aggregateRequestSchema, body ?? {});
        if (!parsed.ok)
          throw badRequest('invalid aggregation request', parsed.issues);
        const { time } = parsed.value;
        if (
          time !== undefined &&
          Date.parse(time) > runtime.now() + MAX_AGGREGATE_AHEAD_MS
        ) {
          throw badRequest('invalid aggregation request', [
            {
              path: 'time',
              message: `must be at most ${MAX_AGGREGATE_AHEAD_MS / 1000} s ahead of the clock (${new Date(runtime.now()).toISOString()})`,
            },
          ]);
        }
        return ok(await aggregate(time));
      }) as HttpLambda,
    });

    const gateway = await startGateway({
      host: options.host ?? '127.0.0.1',
      port: options.port,
      routes: gatewayRoutes,
    });
    const pollers =
      options.streams === false || !table.streamArn
        ? []
        : await Promise.all(
            Object.values(streamConsumers).map(async (consumer) =>
              startStreamPoller({
                endpoint,
                region: config.region,
                streamArn: table.streamArn as string,
                handler: await entryHandler<
                  ApiRuntime,
                  (event: DynamoDBStreamEvent) => Promise<unknown>
                >(consumer.entry, runtime),
                log: runtime.log,
              }),
            ),
          );
    const scheduler = options.schedule
      ? startScheduler({
          everyMs: schedules.aggregate.everyMs,
          run: (time) => aggregate(time),
          log: runtime.log,
        })
      : undefined;

    // Stopping twice waits for the one stop (a test's afterAll and the one
    // that deletes its table may both stop it).
    let stopping: Promise<void> | undefined;
    return {
      url: gateway.url,
      dynamodbEndpoint: endpoint,
      tableName: config.tableName,
      tokens,
      runtime,
      aggregate,
      stop() {
        stopping ??= (async () => {
          stopped = true;
          scheduler?.stop();
          for (const entry of sleeping) {
            clearTimeout(entry.timer);
            entry.reject(new Error('the local status center stopped'));
          }
          sleeping.clear();
          await Promise.all(pollers.map((poller) => poller.stop()));
          await gateway.close();
          // Nothing may call the table once its DynamoDB Local is gone: an
          // SDK retrying there could reach whatever takes the port next.
          const left = await runs.settled();
          if (left)
            runtime.log.warn('stopped with aggregation runs still going', {
              runs: left,
              waitedMs: STOP_WAIT_MS,
            });
          runtime.close();
          await dynamodb?.stop();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await dynamodb?.stop();
    throw error;
  }
}
