import { fileURLToPath } from 'node:url';
import type { StackProps } from 'aws-cdk-lib';
import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import type { CfnStage, ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import {
  AttributeType,
  BillingMode,
  ProjectionType,
  StreamViewType,
  Table,
} from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import {
  FilterCriteria,
  FilterRule,
  StartingPosition,
} from 'aws-cdk-lib/aws-lambda';
import {
  DynamoEventSource,
  SqsDlq,
} from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { KNOBS, parseConfig } from '../../functions/core/config.js';
import type { LogLevel } from '../../functions/log.js';
import type { KeyAccess, Role } from '../../functions/routes.js';
import {
  publicRoutes,
  ROLE_ADMITS,
  routes,
  schedules,
  streamConsumers,
} from '../../functions/routes.js';
import { keys, TABLE } from '../../functions/store/table.js';
import { RelaywatchFunction } from './lambda-function.js';
import { Monitoring } from './monitoring.js';

/** Knobs the stack wires itself (or that must stay unset in AWS); the rest an operator may tune. */
const WIRED_KNOBS = [
  'tableName',
  'dynamodbEndpoint',
  'region',
  'reporterToken',
  'reporterKeys',
  'readerToken',
  'adminToken',
  'tokenSecrets',
] as const satisfies readonly (keyof typeof KNOBS)[];

export type TunableKnob = Exclude<
  keyof typeof KNOBS,
  (typeof WIRED_KNOBS)[number]
>;
export type KnobOverrides = Partial<
  Record<TunableKnob, string | number | boolean>
>;

export const TUNABLE_KNOBS = (
  Object.keys(KNOBS) as (keyof typeof KNOBS)[]
).filter(
  (knob): knob is TunableKnob =>
    !(WIRED_KNOBS as readonly string[]).includes(knob),
);

const CONTEXT_PREFIX = 'relaywatch:';

/** `-c relaywatch:FAIL_RATIO=0.6` names a knob by its variable without the RELAYWATCH_ prefix. */
export function knobContextKey(knob: TunableKnob): string {
  return `${CONTEXT_PREFIX}${KNOBS[knob].env.replace(/^RELAYWATCH_/, '')}`;
}

/** Secrets the stack may create: role tokens, and the key that signs per-machine reporter tokens. */
type SecretName = Role | 'reporterKeys';

/**
 * Per-route throttles (requests/s, burst) under the stage's: reporters get a
 * budget of their own, so a flood of heartbeats cannot starve blocklist reads.
 */
export const ROUTE_THROTTLES: Partial<
  Record<keyof typeof routes | keyof typeof publicRoutes, ThrottleSettings>
> = {
  postHeartbeats: { rateLimit: 500, burstLimit: 1000 },
  getBlocklist: { rateLimit: 300, burstLimit: 600 },
  getIp: { rateLimit: 50, burstLimit: 100 },
  getEvents: { rateLimit: 20, burstLimit: 40 },
  getFleet: { rateLimit: 20, burstLimit: 40 },
  putBan: { rateLimit: 10, burstLimit: 20 },
  deleteBan: { rateLimit: 10, burstLimit: 20 },
  postReporterToken: { rateLimit: 10, burstLimit: 20 },
  deleteReporterTokens: { rateLimit: 10, burstLimit: 20 },
  // Public: anyone can invoke it, so it gets a small budget of its own (a page load is one request).
  getDashboard: { rateLimit: 5, burstLimit: 10 },
  getOpenapi: { rateLimit: 5, burstLimit: 10 },
};

/** Requests to the status center are short DynamoDB round trips; API Gateway itself gives up at 30 s. */
const HTTP_TIMEOUT = Duration.seconds(10);
/** One batch of stream records is one BatchWriteItem round of events. */
const STREAM_TIMEOUT = Duration.seconds(30);

export type RelaywatchStackProps = StackProps & {
  /** Knob values for every function, over CDK context `relaywatch:<NAME>`; unset knobs keep their defaults. */
  knobs?: KnobOverrides;
  /** What happens to the table, the token secrets and the log groups when the stack goes. Default RETAIN. */
  removalPolicy?: RemovalPolicy;
  /** Default one month. */
  logRetention?: RetentionDays;
  /** Default stage throttle. Default 1,000 rps with bursts of 2,000: far above a fleet's steady rate, well under the account's 10,000. */
  throttle?: ThrottleSettings;
  /**
   * Also create the fleet-wide (unbound) reporter token: it may report for any
   * IP. Default false: relay machines get per-machine tokens from POST /v1/reporter-tokens.
   * For migrating a fleet that still uses one shared token.
   */
  fleetReporterToken?: boolean;
  /**
   * Memory of the aggregate function, MB (over CDK context
   * `relaywatch:aggregateMemoryMb`). Default 1,024, which decides 100,000
   * machines minute after minute, and catches them up on missed minutes one
   * minute at a time (docs/deploy.md).
   */
  aggregateMemoryMb?: number;
  /** Concurrency reserved for the aggregation, so API traffic cannot starve it. Default 2 (a run may overlap the next). */
  aggregateReservedConcurrency?: number;
  /**
   * Per-request API access logs. Off by default: at fleet scale one line per
   * heartbeat request costs about as much as the writes it logs; the stage's
   * metrics already count 4xx, 5xx and throttled requests.
   */
  apiAccessLogs?: boolean;
  /** An e-mail address subscribed to the alarm topic (AWS mails a confirmation link). Default none: subscribe yourself. */
  alarmEmail?: string;
};

/**
 * The status center in AWS: one DynamoDB table built from functions/store/table.ts,
 * one function per entry of functions/routes.ts (HTTP routes, schedules and
 * table-stream consumers), the HTTP API, the schedule rules and the three role tokens.
 */
export class RelaywatchStack extends Stack {
  readonly table: Table;
  readonly api: HttpApi;
  readonly functions: Record<string, RelaywatchFunction> = {};
  readonly tokenSecrets: Partial<Record<SecretName, Secret>>;
  /** Stream records the ban-expiry consumer gave up on (after bounded retries), kept 14 days. */
  readonly streamFailures: Queue;
  /** The alarms, their SNS topic and the CloudWatch dashboard. */
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: RelaywatchStackProps = {}) {
    super(scope, id, props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const knobEnvironment = knobEnvironmentOf(this, props.knobs);
    const logLevel = knobEnvironment[KNOBS.logLevel.env] as
      | LogLevel
      | undefined;
    delete knobEnvironment[KNOBS.logLevel.env];

    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // For the ban-expiry consumer: a TTL deletion shows up as a REMOVE with the old image.
      stream: StreamViewType.NEW_AND_OLD_IMAGES,
      removalPolicy,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(TABLE.indexes)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }

    const secretNames: SecretName[] = [
      'reader',
      'admin',
      'reporterKeys',
      ...(props.fleetReporterToken ? (['reporter'] as const) : []),
    ];
    this.tokenSecrets = Object.fromEntries(
      secretNames.map((name) => {
        const signing = name === 'reporterKeys';
        const secret = new Secret(
          this,
          signing ? 'ReporterSigningKeys' : `${capitalize(name)}Token`,
          {
            description: signing
              ? 'relaywatch key(s) signing per-machine reporter tokens; "new,old" while a key is rotated out (the first signs).'
              : `relaywatch API token(s) of the ${name} role${name === 'reporter' ? ' (fleet-wide, unbound: may report for any IP)' : ''}; several comma-separated while one is rotated out.`,
            // Generated by Secrets Manager at deploy time: the value is never in the template or the repo.
            generateSecretString: {
              excludePunctuation: true,
              includeSpace: false,
              passwordLength: signing ? 64 : 48,
            },
            removalPolicy,
          },
        );
        Validations.of(secret).acknowledge({
          id: 'AwsSolutions-SMG4',
          reason: signing
            ? 'Rotating the signing key invalidates every machine token, which must be re-issued to relay machines outside AWS; operators rotate by putting a new key first ("new,old"), re-issuing tokens, then removing the old key.'
            : 'The token is also configured on relay agents and dispatchers outside AWS, which a rotation Lambda cannot update; operators rotate by appending a new comma-separated token, rolling it out, then removing the old one.',
        });
        return [name, secret];
      }),
    ) as Partial<Record<SecretName, Secret>>;

    this.streamFailures = new Queue(this, 'StreamFailures', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
    });
    Validations.of(this.streamFailures).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the on-failure destination of the ban-expiry stream consumer; nothing consumes it automatically.',
    });

    const { api, stage } = this.createApi(props, logRetention, removalPolicy);
    this.api = api;

    const functionProps = {
      logLevel,
      logRetention,
      removalPolicy,
      environment: knobEnvironment,
      ...projectPaths(),
    };

    for (const [name, route] of Object.entries(routes)) {
      const fn = new RelaywatchFunction(this, name, {
        ...functionProps,
        entry: entryPath(route.entry),
        description: `relaywatch ${route.method} ${route.path} (${route.role})`,
        timeout: HTTP_TIMEOUT,
      });
      fn.bindTable({
        table: this.table,
        access: route.table,
        ...keyAccessOf(route),
      });
      fn.bindSecrets(secretsOf(route, this.tokenSecrets));
      this.api.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${name}Integration`, fn),
      });
      this.functions[name] = fn;
    }

    // Public routes (the dashboard page) hold no secret and get no table access:
    // no bindTable, no bindTokenSecrets.
    for (const [name, route] of Object.entries(publicRoutes)) {
      const fn = new RelaywatchFunction(this, name, {
        ...functionProps,
        entry: entryPath(route.entry),
        description: `relaywatch ${route.method} ${route.path} (public)`,
        timeout: HTTP_TIMEOUT,
      });
      this.api.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${name}Integration`, fn),
      });
      this.functions[name] = fn;
    }

    const aggregateMemory =
      aggregateMemoryMb(this, props) ?? schedules.aggregate.memoryMb;
    for (const [name, schedule] of Object.entries(schedules)) {
      const fn = new RelaywatchFunction(this, name, {
        ...functionProps,
        entry: entryPath(schedule.entry),
        description: `relaywatch ${name} every ${schedule.rate}`,
        timeout: Duration.seconds(schedule.timeoutSeconds),
        memorySize: name === 'aggregate' ? aggregateMemory : schedule.memoryMb,
        // A failed run is redone by the next tick, which takes every minute not decided yet;
        // Lambda's own retry would only add a run overlapping it.
        retryAttempts: 0,
        // Heartbeat floods must not take the account's concurrency from the one function that bans.
        reservedConcurrentExecutions: props.aggregateReservedConcurrency ?? 2,
      });
      fn.bindTable({
        table: this.table,
        access: schedule.table,
        ...keyAccessOf(schedule),
      });
      // A scheduled rule rather than EventBridge Scheduler, the newer service: the
      // handler takes the rule's event shape (its `time` picks the minutes), a rule
      // needs no IAM role, both cost nothing at one run a minute, and both deliver
      // at least once within the minute, which the aggregator already tolerates.
      new Rule(this, `${name}Schedule`, {
        description: `relaywatch ${name} every ${schedule.rate}`,
        schedule: Schedule.expression(`rate(${schedule.rate})`),
        targets: [
          new LambdaFunction(fn, {
            retryAttempts: 2,
            maxEventAge: Duration.minutes(5),
          }),
        ],
      });
      this.functions[name] = fn;
    }

    for (const [name, consumer] of Object.entries(streamConsumers)) {
      const fn = new RelaywatchFunction(this, name, {
        ...functionProps,
        entry: entryPath(consumer.entry),
        description: `relaywatch ${name} (table stream)`,
        timeout: STREAM_TIMEOUT,
      });
      fn.bindTable({
        table: this.table,
        access: consumer.table,
        ...keyAccessOf(consumer),
      });
      fn.addEventSource(
        new DynamoEventSource(this.table, {
          // From the oldest record kept (24 h): the consumer is idempotent, and no expiry
          // is missed between table creation and the first poll.
          startingPosition: StartingPosition.TRIM_HORIZON,
          batchSize: consumer.batchSize,
          // Every heartbeat write and every TTL deletion of a heartbeat row is a stream
          // record too; Lambda drops those before invoking (and billing) the consumer.
          filters: [
            FilterCriteria.filter({
              eventName: FilterRule.isEqual('REMOVE'),
              dynamodb: {
                Keys: {
                  [TABLE.partitionKey]: {
                    S: FilterRule.isEqual(keys.banPartition()),
                  },
                },
              },
            }),
          ],
          // A failing batch is split to isolate the bad record, then given up after
          // bounded retries so one record cannot hold the shard for the stream's 24 h.
          bisectBatchOnError: true,
          retryAttempts: 5,
          maxRecordAge: Duration.hours(6),
          // Records given up on are described in this queue (shard and sequence numbers) instead of lost silently.
          onFailure: new SqsDlq(this.streamFailures),
        }),
      );
      if (fn.role) {
        Validations.of(fn.role).acknowledge({
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            "dynamodb:ListStreams, which Lambda needs to poll a table stream, has no resource-level permissions; every other stream action is scoped to this table's stream ARN.",
        });
      }
      this.functions[name] = fn;
    }

    const cfnStage = stage.node.defaultChild as CfnStage;
    // RouteSettings is untyped JSON in the L1: CloudFormation's own property names, as written.
    cfnStage.routeSettings = Object.fromEntries(
      Object.entries(ROUTE_THROTTLES).map(([name, throttle]) => {
        const route =
          name in routes
            ? routes[name as keyof typeof routes]
            : publicRoutes[name as keyof typeof publicRoutes];
        return [
          `${route.method} ${route.path}`,
          {
            ThrottlingRateLimit: throttle.rateLimit,
            ThrottlingBurstLimit: throttle.burstLimit,
          },
        ];
      }),
    );
    // Route settings name route keys, which must exist when the stage is updated.
    for (const child of this.api.node.children)
      if (child.node.id !== stage.node.id) stage.node.addDependency(child);

    new CfnOutput(this, 'ApiUrl', {
      value: stage.url,
      description: 'Base URL of the status center API',
    });
    new CfnOutput(this, 'DashboardUrl', {
      // The $default stage's URL ends with a slash.
      value: `${stage.url}${publicRoutes.getDashboard.path.slice(1)}`,
      description: 'The dashboard page; it asks for a reader token',
    });
    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    for (const [name, secret] of Object.entries(this.tokenSecrets)) {
      new CfnOutput(
        this,
        name === 'reporterKeys'
          ? 'ReporterSigningKeysSecretArn'
          : `${capitalize(name)}TokenSecretArn`,
        {
          value: secret.secretArn,
          description:
            name === 'reporterKeys'
              ? 'Secret holding the key(s) that sign per-machine reporter tokens'
              : `Secret holding the ${name} token (read it with secretsmanager get-secret-value)`,
        },
      );
    }
    const aggregate = this.functions.aggregate;
    if (!aggregate) throw new Error('routes.ts has no aggregate schedule');
    this.monitoring = new Monitoring(this, 'Monitoring', {
      table: this.table,
      api: this.api,
      aggregate,
      aggregateMemoryMb: aggregateMemory,
      streamFailures: this.streamFailures,
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.monitoring.topic.topicArn,
      description: 'SNS topic of every relaywatch alarm: subscribe to it',
    });
    new CfnOutput(this, 'CloudWatchDashboardUrl', {
      value: `https://console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${this.monitoring.dashboard.dashboardName}`,
      description:
        'The CloudWatch dashboard of bans, fleet conditions and relaywatch health',
    });
    new CfnOutput(this, 'StreamFailuresQueueUrl', {
      value: this.streamFailures.queueUrl,
      description: 'Stream records the ban-expiry consumer gave up on',
    });
  }

  private createApi(
    props: RelaywatchStackProps,
    logRetention: RetentionDays,
    removalPolicy: RemovalPolicy,
  ): { api: HttpApi; stage: HttpStage } {
    const api = new HttpApi(this, 'Api', {
      description: 'relaywatch status center',
      // Our own $default stage below, to set its throttle and access logs.
      createDefaultStage: false,
    });
    const accessLogs = props.apiAccessLogs
      ? new LogGroup(this, 'ApiAccessLogs', {
          retention: logRetention,
          removalPolicy,
        })
      : undefined;
    const stage = new HttpStage(this, 'DefaultStage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 1000, burstLimit: 2000 },
      ...(accessLogs && {
        accessLogSettings: {
          destination: new LogGroupLogDestination(accessLogs),
          format: AccessLogFormat.custom(
            JSON.stringify({
              requestId: '$context.requestId',
              ip: '$context.identity.sourceIp',
              time: '$context.requestTime',
              route: '$context.routeKey',
              status: '$context.status',
              bytes: '$context.responseLength',
              latencyMs: '$context.integrationLatency',
              error: '$context.error.message',
            }),
          ),
        },
      }),
    });
    Validations.of(api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Every route authenticates in its function: a bearer token checked in constant time against the role tokens in Secrets Manager, answering 401 or 403; an API Gateway authorizer would add a second invocation per heartbeat request.',
    });
    if (!accessLogs) {
      Validations.of(stage).acknowledge({
        id: 'AwsSolutions-APIG1',
        reason:
          'Access logs are opt-in (apiAccessLogs): one line per heartbeat request costs about as much as the writes it logs; stage metrics count 4xx, 5xx and throttles, and the functions log rejected tokens.',
      });
    }
    return { api, stage };
  }
}

/**
 * Environment variables for the knobs set by props or context. Every function
 * gets all of them: each parses the whole configuration at cold start, and
 * writers and readers must agree (RELAYWATCH_SHARDS). Validated here with the
 * functions' own schema, so a bad value fails synth, not a cold start.
 */
function knobEnvironmentOf(
  scope: Construct,
  overrides: KnobOverrides = {},
): Record<string, string> {
  const known = new Set([
    ...TUNABLE_KNOBS.map(knobContextKey),
    AGGREGATE_MEMORY_CONTEXT,
  ]);
  const unknown = Object.keys(scope.node.getAllContext()).filter(
    (key) => key.startsWith(CONTEXT_PREFIX) && !known.has(key),
  );
  if (unknown.length > 0) {
    throw new Error(
      `unknown context ${unknown.join(', ')}; knobs are ${[...known].join(', ')}`,
    );
  }
  const environment: Record<string, string> = {};
  for (const knob of TUNABLE_KNOBS) {
    const value =
      overrides[knob] ?? scope.node.tryGetContext(knobContextKey(knob));
    if (value !== undefined) environment[KNOBS[knob].env] = String(value);
  }
  parseConfig(environment);
  return environment;
}

const AGGREGATE_MEMORY_CONTEXT = `${CONTEXT_PREFIX}aggregateMemoryMb`;
/** The aggregate function's memory asked for by the props or the context, if any: a whole number of MB that Lambda allows. */
function aggregateMemoryMb(
  scope: Construct,
  props: RelaywatchStackProps,
): number | undefined {
  const asked =
    props.aggregateMemoryMb ??
    scope.node.tryGetContext(AGGREGATE_MEMORY_CONTEXT);
  if (asked === undefined) return undefined;
  const mb = Number(asked);
  if (!Number.isInteger(mb) || mb < 128 || mb > 10_240)
    throw new Error(
      `${AGGREGATE_MEMORY_CONTEXT} must be a whole number of MB from 128 to 10240, got ${JSON.stringify(asked)}`,
    );
  return mb;
}

const repoRoot = () => fileURLToPath(new URL('../../', import.meta.url));

/** Handler files are named in routes.ts relative to functions/. */
function entryPath(entry: string): string {
  return fileURLToPath(new URL(`../../functions/${entry}`, import.meta.url));
}

function projectPaths() {
  return {
    projectRoot: repoRoot(),
    depsLockFilePath: `${repoRoot()}package-lock.json`,
  };
}

/** The key scopes of a routes.ts entry, if it has any. */
function keyAccessOf(value: object): KeyAccess {
  const entry = value as KeyAccess;
  return {
    ...(entry.writes ? { writes: entry.writes } : {}),
    ...(entry.reads ? { reads: entry.reads } : {}),
  };
}

/** The secrets a route's function may read: the tokens of the roles it admits, and the signing keys if it needs them. */
function secretsOf(
  route: (typeof routes)[keyof typeof routes],
  secrets: Partial<Record<SecretName, Secret>>,
): Record<string, Secret> {
  const names: SecretName[] = [
    ...ROLE_ADMITS[route.role],
    ...('reporterKeys' in route && route.reporterKeys
      ? (['reporterKeys'] as const)
      : []),
  ];
  return Object.fromEntries(
    names.flatMap((name) => (secrets[name] ? [[name, secrets[name]]] : [])),
  );
}

const capitalize = (text: string) =>
  `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
