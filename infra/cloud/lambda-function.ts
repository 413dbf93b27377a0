import type { RemovalPolicy } from 'aws-cdk-lib';
import { Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { KNOBS } from '../../functions/core/config.js';
import type { LogLevel } from '../../functions/log.js';
import type { KeyAccess, TableAccess } from '../../functions/routes.js';
import { KEY_SCOPES, TABLE } from '../../functions/store/table.js';

/** The one place the Node major is chosen; local runs and CI use the same (the node devDependency in package.json). */
export const NODE_RUNTIME = Runtime.NODEJS_22_X;

/**
 * The smallest DynamoDB action sets per access level, matched to what the
 * stores send. 'write' adds and overwrites items; only 'readWrite' may
 * DeleteItem (lifting a ban). BatchWriteItem cannot be split by IAM into puts
 * and deletes, which is why writers that batch are confined to their own key
 * scopes (dynamodb:LeadingKeys): the ingest function can write, and so delete,
 * heartbeat rows and batch markers only, never a ban.
 */
const TABLE_ACTIONS = {
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'],
  write: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem'],
  delete: ['dynamodb:DeleteItem'],
} as const;

export type RelaywatchFunctionProps = Omit<
  NodejsFunctionProps,
  | 'runtime'
  | 'architecture'
  | 'bundling'
  | 'logGroup'
  | 'loggingFormat'
  | 'applicationLogLevelV2'
  | 'systemLogLevelV2'
  | 'role'
> & {
  /** Absolute path of the handler file; it must export `handler`. */
  entry: string;
  /** The LOG_LEVEL knob; unset means its default. */
  logLevel?: LogLevel;
  logRetention: RetentionDays;
  removalPolicy: RemovalPolicy;
};

/**
 * Every relaywatch Lambda: Node 22 on arm64 (faster init, cheaper GB-s), one
 * minified CommonJS file with the AWS SDK bundled in (loading the runtime's SDK
 * from disk measured slower to cold start), source maps, JSON logs without
 * Lambda's per-invocation START/END/REPORT lines, and its own log group.
 */
export class RelaywatchFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: RelaywatchFunctionProps) {
    const {
      logLevel = KNOBS.logLevel.fallback as LogLevel,
      logRetention,
      removalPolicy,
      ...functionProps
    } = props;
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: logRetention,
      removalPolicy,
    });
    // Our own role instead of AWSLambdaBasicExecutionRole, whose logs grant covers every log group.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
    });
    logGroup.grantWrite(role);
    super(scope, id, {
      // At 128 MB the first invoke after a cold start is CPU-starved (TLS to DynamoDB, lazy SDK code).
      memorySize: 256,
      ...functionProps,
      runtime: NODE_RUNTIME,
      architecture: Architecture.ARM_64,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      // START/END/REPORT are INFO: at fleet scale they would cost more than the DynamoDB writes.
      systemLogLevelV2: SystemLogLevel.WARN,
      applicationLogLevelV2: applicationLogLevel(logLevel),
      environment: {
        ...functionProps.environment,
        NODE_OPTIONS: '--enable-source-maps',
        ...(props.logLevel === undefined
          ? {}
          : { [KNOBS.logLevel.env]: props.logLevel }),
      },
      bundling: {
        // CommonJS, though the sources and the SDK's builds it takes are ESM:
        // an ESM file's import of node:http makes Node build that module's
        // ESM view, which loads undici (its WebSocket and fetch classes).
        // Loading a handler's bundle in a fresh Node 22 process took 89-145 ms
        // as ESM, 63-75 ms as CommonJS (npm run bench: bundles). Lambda's own
        // bootstrap may pay part of that for any bundle: not measured there.
        format: OutputFormat.CJS,
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Stack traces need file:line only; leaving the sources out keeps the zip small.
        sourcesContent: false,
        bundleAwsSDK: true,
      },
    });
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason: `Pinned to ${NODE_RUNTIME.name}, the Node major the local runtime, tests and CI run; raising it is the one-line NODE_RUNTIME change, made together with the node devDependency in package.json.`,
    });
  }

  /**
   * Grants the smallest IAM for `access` on the table (and its indexes for
   * reads) and sets TABLE_NAME. `writes`/`reads` key scopes add a
   * dynamodb:LeadingKeys condition: only items whose partition key matches.
   */
  bindTable({
    table,
    access,
    writes,
    reads,
  }: { table: ITable; access: TableAccess } & KeyAccess): void {
    this.addEnvironment(KNOBS.tableName.env, table.tableName);
    const onlyKeys = (scopes: KeyAccess['writes']) =>
      scopes
        ? {
            conditions: {
              'ForAllValues:StringLike': {
                'dynamodb:LeadingKeys': scopes.flatMap((scope) => [
                  ...KEY_SCOPES[scope],
                ]),
              },
            },
          }
        : {};
    if (access === 'read' || access === 'readWrite' || reads) {
      const indexArns = Object.values(TABLE.indexes).map(
        (index) => `${table.tableArn}/index/${index.name}`,
      );
      this.addToRolePolicy(
        new PolicyStatement({
          actions: [...TABLE_ACTIONS.read],
          resources: [table.tableArn, ...indexArns],
          ...onlyKeys(reads),
        }),
      );
    }
    if (access === 'write' || access === 'readWrite') {
      const actions = [
        ...TABLE_ACTIONS.write,
        ...(access === 'readWrite' ? TABLE_ACTIONS.delete : []),
      ];
      this.addToRolePolicy(
        new PolicyStatement({
          actions,
          resources: [table.tableArn],
          ...onlyKeys(writes),
        }),
      );
    }
  }

  /**
   * Lets the function read only the given secrets (the role tokens its route
   * admits, the reporter signing keys where it verifies or issues machine
   * tokens). Only ARNs reach the environment; the handler reads the values.
   */
  bindSecrets(secrets: Record<string, ISecret>): void {
    const arns = Object.fromEntries(
      Object.entries(secrets).map(([name, secret]) => [name, secret.secretArn]),
    );
    this.addEnvironment(KNOBS.tokenSecrets.env, this.stack.toJsonString(arns));
    this.addToRolePolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: Object.values(arns),
      }),
    );
  }
}

/**
 * Lambda files application lines without a "level" (the metric lines in
 * Embedded Metric Format) as INFO, so a WARN or ERROR filter here would drop
 * the metrics; the function's own logger already filters by LOG_LEVEL.
 */
function applicationLogLevel(logLevel: LogLevel): ApplicationLogLevel {
  return logLevel === 'debug'
    ? ApplicationLogLevel.DEBUG
    : ApplicationLogLevel.INFO;
}
