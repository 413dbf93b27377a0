import { execFile } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CfnElement } from 'aws-cdk-lib';
import { App, Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { Match } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KNOBS } from '../../functions/core/config.js';
import { DASHBOARD } from '../../functions/http/dashboard-page.js';
import {
  publicRoutes,
  routes,
  schedules,
  streamConsumers,
} from '../../functions/routes.js';
import { keys, TABLE } from '../../functions/store/table.js';
import { RelaywatchStack } from '../../infra/cloud/relaywatch-stack.js';
import type { Synthesized } from './synth.js';
import { actionsOf, nagFindings, resourcesOf, synthesize } from './synth.js';

const ROUTE_NAMES = Object.keys(routes) as (keyof typeof routes)[];
const SCHEDULE_NAMES = Object.keys(schedules) as (keyof typeof schedules)[];
const STREAM_NAMES = Object.keys(
  streamConsumers,
) as (keyof typeof streamConsumers)[];
const PUBLIC_NAMES = Object.keys(publicRoutes) as (keyof typeof publicRoutes)[];
const ALL_NAMES = [
  ...ROUTE_NAMES,
  ...PUBLIC_NAMES,
  ...SCHEDULE_NAMES,
  ...STREAM_NAMES,
];

const execFileAsync = promisify(execFile);
const PAGE_LINES = new Set(DASHBOARD.html.split('\n'));

const DYNAMODB_WRITES = [
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:BatchWriteItem',
];

describe('the relaywatch stack', () => {
  let synth: Synthesized;
  let template: Template;
  const logicalId = (name: string) => {
    const fn = synth.stack.functions[name];
    if (!fn) throw new Error(`no function ${name}`);
    return Stack.of(fn).getLogicalId(fn.node.defaultChild as CfnFunction);
  };
  const functionProps = (name: string) =>
    (
      template.toJSON().Resources[logicalId(name)] as {
        Properties: Record<string, any>;
      }
    ).Properties;

  // One synth with bundling for the whole file: esbuild per function is the slow part.
  beforeAll(() => {
    synth = synthesize();
    template = synth.template;
  });
  afterAll(() => synth?.cleanUp());

  describe('the table', () => {
    it('is built from TABLE: string pk/sk keys, on-demand, TTL on expiresAt, point-in-time recovery', () => {
      template.resourceCountIs('AWS::DynamoDB::Table', 1);
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [
          { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
        ],
        AttributeDefinitions: Match.arrayWith([
          { AttributeName: TABLE.partitionKey, AttributeType: 'S' },
          { AttributeName: TABLE.sortKey, AttributeType: 'S' },
        ]),
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      });
    });

    it('has exactly the secondary indexes TABLE declares', () => {
      const table = Object.values(
        resourcesOf(template, 'AWS::DynamoDB::Table'),
      )[0];
      const indexes = (table?.Properties.GlobalSecondaryIndexes ?? []) as {
        IndexName: string;
        KeySchema: unknown;
      }[];
      expect(
        indexes.map((index) => ({
          name: index.IndexName,
          keys: index.KeySchema,
        })),
      ).toEqual(
        Object.values(TABLE.indexes).map((index) => ({
          name: index.name,
          keys: [
            { AttributeName: index.partitionKey, KeyType: 'HASH' },
            { AttributeName: index.sortKey, KeyType: 'RANGE' },
          ],
        })),
      );
    });

    it('streams new and old images for the ban-expiry consumer', () => {
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      });
    });

    it('is kept, with the token secrets and log groups, when the stack is deleted', () => {
      for (const type of [
        'AWS::DynamoDB::Table',
        'AWS::SecretsManager::Secret',
        'AWS::Logs::LogGroup',
      ]) {
        const policies = Object.values(resourcesOf(template, type)).map(
          (resource) => resource.DeletionPolicy,
        );
        expect(policies.length).toBeGreaterThan(0);
        expect(policies.every((policy) => policy === 'Retain')).toBe(true);
      }
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        DeletionProtectionEnabled: true,
      });
    });
  });

  describe('the functions', () => {
    it('are one per route, schedule and stream consumer entry, and nothing else', () => {
      template.resourceCountIs('AWS::Lambda::Function', ALL_NAMES.length);
      expect(Object.keys(synth.stack.functions).sort()).toEqual(
        [...ALL_NAMES].sort(),
      );
    });

    it('run nodejs22.x on arm64 with JSON logs, system log level WARN, source maps and their own log group', () => {
      for (const name of ALL_NAMES) {
        const props = functionProps(name);
        expect(props.Runtime, name).toBe('nodejs22.x');
        expect(props.Architectures, name).toEqual(['arm64']);
        expect(props.Handler, name).toBe('index.handler');
        expect(props.LoggingConfig, name).toMatchObject({
          LogFormat: 'JSON',
          SystemLogLevel: 'WARN',
          ApplicationLogLevel: 'INFO',
        });
        expect(props.LoggingConfig.LogGroup, name).toHaveProperty('Ref');
        expect(props.Environment.Variables.NODE_OPTIONS, name).toBe(
          '--enable-source-maps',
        );
      }
      const retentions = Object.values(
        resourcesOf(template, 'AWS::Logs::LogGroup'),
      ).map((g) => g.Properties.RetentionInDays);
      expect(retentions).toHaveLength(ALL_NAMES.length);
      expect(
        retentions.every((days) => typeof days === 'number' && days > 0),
      ).toBe(true);
    });

    it('are each one minified CommonJS file with a source map, whose handler loads with no node_modules in reach', async () => {
      const sandbox = mkdtempSync(join(tmpdir(), 'relaywatch-bundles-'));
      try {
        await Promise.all(
          ALL_NAMES.map(async (name) => {
            const key = functionProps(name).Code.S3Key as string;
            const assetDir = join(
              synth.outdir,
              `asset.${key.replace(/\.zip$/, '')}`,
            );
            const code = readFileSync(join(assetDir, 'index.js'), 'utf8');
            // Minified: a few very long lines, on average over 2,000 characters (only template
            // literals keep their newlines, so the dashboard page's own lines are not counted;
            // its small handler is then a handful of lines).
            const lines = code
              .split('\n')
              .filter((line) => !PAGE_LINES.has(line));
            expect(lines.length, name).toBeLessThan(
              Math.max(20, lines.join('\n').length / 2000),
            );
            expect(
              statSync(join(assetDir, 'index.js.map')).size,
              name,
            ).toBeGreaterThan(0);
            // Outside the repo nothing can be resolved from node_modules: the AWS SDK
            // and every other dependency must be inside the one file.
            const dir = join(sandbox, name);
            mkdirSync(dir);
            copyFileSync(join(assetDir, 'index.js'), join(dir, 'index.js'));
            // Loaded as Lambda loads a CommonJS handler.
            const { stdout } = await execFileAsync(
              process.execPath,
              [
                '-e',
                `console.log(typeof require(${JSON.stringify(join(dir, 'index.js'))}).handler);`,
              ],
              {
                cwd: dir,
                // No configuration: a bundle wires its runtime on the first call, not at load.
                env: { PATH: process.env.PATH ?? '' },
              },
            );
            expect(stdout.trim(), name).toBe('function');
          }),
        );
      } finally {
        rmSync(sandbox, { recursive: true, force: true });
      }
    });

    it('set TABLE_NAME to the stack table and no knob variable while no knob is overridden', () => {
      const table = Object.keys(
        resourcesOf(template, 'AWS::DynamoDB::Table'),
      )[0];
      for (const name of ALL_NAMES.filter((name) => !(name in publicRoutes))) {
        const variables = functionProps(name).Environment.Variables as Record<
          string,
          unknown
        >;
        expect(variables.TABLE_NAME, name).toEqual({ Ref: table });
        const expected = [
          'NODE_OPTIONS',
          'TABLE_NAME',
          ...(name in routes ? [KNOBS.tokenSecrets.env] : []),
        ];
        expect(Object.keys(variables).sort(), name).toEqual(expected.sort());
      }
    });

    it('give HTTP functions a short timeout and each schedule the timeout of its entry', () => {
      for (const name of ROUTE_NAMES)
        expect(functionProps(name).Timeout, name).toBeLessThanOrEqual(30);
      for (const name of SCHEDULE_NAMES)
        expect(functionProps(name).Timeout, name).toBe(
          schedules[name].timeoutSeconds,
        );
      for (const name of STREAM_NAMES)
        expect(functionProps(name).Timeout, name).toBeLessThanOrEqual(60);
    });
  });

  describe('least privilege', () => {
    const dynamodbActions = (name: string) =>
      actionsOf(template, logicalId(name))
        .filter((grant) => grant.action.startsWith('dynamodb:'))
        .map((grant) => grant.action);

    it('gives routes with read access no DynamoDB write or delete action', () => {
      const readOnly = ROUTE_NAMES.filter(
        (name) => routes[name].table === 'read',
      );
      expect(readOnly.length).toBeGreaterThan(0);
      for (const name of readOnly) {
        expect(dynamodbActions(name), name).toEqual(
          expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:Query']),
        );
        expect(
          dynamodbActions(name).filter((action) =>
            DYNAMODB_WRITES.includes(action),
          ),
          name,
        ).toEqual([]);
      }
    });

    it('lets the ingest function write, read only the revocation list, and never scan or delete one item', () => {
      const actions = dynamodbActions('postHeartbeats');
      expect(actions).toEqual(
        expect.arrayContaining(['dynamodb:BatchWriteItem', 'dynamodb:Query']),
      );
      for (const forbidden of ['dynamodb:Scan', 'dynamodb:DeleteItem'])
        expect(actions).not.toContain(forbidden);
    });

    it('never grants Scan, wildcard actions or DynamoDB access beyond the one table', () => {
      const table = Object.keys(
        resourcesOf(template, 'AWS::DynamoDB::Table'),
      )[0];
      for (const name of ALL_NAMES) {
        for (const grant of actionsOf(template, logicalId(name))) {
          expect(grant.action, name).not.toMatch(/\*|dynamodb:Scan/);
          // ListStreams has no resource-level permissions (cdk-nag acknowledgement in the stack).
          if (grant.action === 'dynamodb:ListStreams')
            expect(STREAM_NAMES as string[], name).toContain(name);
          if (
            !grant.action.startsWith('dynamodb:') ||
            grant.action === 'dynamodb:ListStreams'
          )
            continue;
          for (const resource of grant.resources) {
            expect(
              JSON.stringify(resource),
              `${name} ${grant.action}`,
            ).toContain(`"${table}"`);
          }
        }
      }
    });

    it('lets each HTTP function read only the secrets of the roles its route admits, plus the signing keys where it needs them', () => {
      const secretIds = Object.fromEntries(
        Object.entries(synth.stack.tokenSecrets).map(([name, secret]) => [
          name,
          synth.stack.getLogicalId(secret!.node.defaultChild as CfnElement),
        ]),
      );
      expect(Object.keys(secretIds).sort()).toEqual([
        'admin',
        'reader',
        'reporterKeys',
      ]);
      const expected: Record<string, string[]> = {
        postHeartbeats: ['reporterKeys'],
        postReporterToken: ['admin', 'reporterKeys'],
        deleteReporterTokens: ['admin'],
        putBan: ['admin'],
        deleteBan: ['admin'],
        getBlocklist: ['admin', 'reader'],
        getIp: ['admin', 'reader'],
        getEvents: ['admin', 'reader'],
        getFleet: ['admin', 'reader'],
      };
      expect(Object.keys(expected).sort()).toEqual([...ROUTE_NAMES].sort());
      for (const name of ROUTE_NAMES) {
        const grants = actionsOf(template, logicalId(name)).filter((grant) =>
          grant.action.startsWith('secretsmanager:'),
        );
        expect(
          grants.map((grant) => grant.action),
          name,
        ).toEqual(['secretsmanager:GetSecretValue']);
        const granted = grants[0]?.resources
          .map((r) => (r as { Ref: string }).Ref)
          .sort();
        expect(granted, name).toEqual(
          expected[name]!.map((secret) => secretIds[secret]).sort(),
        );
      }
    });

    it('confines the ingest function to heartbeat keys (writes, batch deletes included) and revocation reads', () => {
      const grants = actionsOf(template, logicalId('postHeartbeats')).filter(
        (grant) => grant.action.startsWith('dynamodb:'),
      );
      for (const grant of grants) {
        const leading =
          grant.condition?.['ForAllValues:StringLike']?.[
            'dynamodb:LeadingKeys'
          ];
        if (DYNAMODB_WRITES.includes(grant.action))
          expect(leading, grant.action).toEqual(['HB#*', 'BATCH#*']);
        else expect(leading, grant.action).toEqual(['REVOKED']);
      }
      expect(grants.map((grant) => grant.action)).toContain(
        'dynamodb:BatchWriteItem',
      );
      // No heartbeat key pattern covers the ban partition, so the ingest function cannot erase a ban.
      for (const pattern of ['HB#*', 'BATCH#*'])
        expect(keys.banPartition().startsWith(pattern.slice(0, -1))).toBe(
          false,
        );
    });

    it("confines the stream consumer's writes to event keys", () => {
      const writes = actionsOf(template, logicalId('banExpiry')).filter(
        (grant) => DYNAMODB_WRITES.includes(grant.action),
      );
      expect(writes.length).toBeGreaterThan(0);
      for (const grant of writes) {
        expect(
          grant.condition?.['ForAllValues:StringLike']?.[
            'dynamodb:LeadingKeys'
          ],
          grant.action,
        ).toEqual(['EVT#*', 'EVTIP#*']);
      }
    });

    it('gives public routes no table, no token secrets and no knob variable', () => {
      for (const name of PUBLIC_NAMES) {
        const variables = functionProps(name).Environment.Variables as Record<
          string,
          unknown
        >;
        expect(Object.keys(variables), name).toEqual(['NODE_OPTIONS']);
        const grants = actionsOf(template, logicalId(name)).filter((grant) =>
          /^(dynamodb|secretsmanager):/.test(grant.action),
        );
        expect(grants, name).toEqual([]);
      }
    });

    it('gives functions that serve no route no access to the token secrets', () => {
      for (const name of [...SCHEDULE_NAMES, ...STREAM_NAMES]) {
        const grants = actionsOf(template, logicalId(name)).filter((grant) =>
          grant.action.startsWith('secretsmanager:'),
        );
        expect(grants, name).toEqual([]);
      }
    });

    it('uses no AWS managed policy on any function role', () => {
      for (const role of Object.values(
        resourcesOf(template, 'AWS::IAM::Role'),
      )) {
        expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      }
    });
  });

  describe('the tokens', () => {
    it('are generated by Secrets Manager: no punctuation, at least 32 characters', () => {
      const secrets = Object.values(
        resourcesOf(template, 'AWS::SecretsManager::Secret'),
      );
      expect(secrets).toHaveLength(3);
      for (const secret of secrets) {
        expect(secret.Properties.SecretString).toBeUndefined();
        expect(secret.Properties.GenerateSecretString).toMatchObject({
          ExcludePunctuation: true,
        });
        const length = (
          secret.Properties.GenerateSecretString as { PasswordLength: number }
        ).PasswordLength;
        expect(length).toBeGreaterThanOrEqual(32);
      }
    });

    it('reach HTTP functions as RELAYWATCH_TOKEN_SECRETS, JSON of the secret ARNs it may read', () => {
      const secretOf = (name: string) =>
        synth.stack.getLogicalId(
          synth.stack.tokenSecrets[name as 'admin']!.node
            .defaultChild as CfnElement,
        );
      for (const name of ROUTE_NAMES) {
        const value = functionProps(name).Environment.Variables[
          KNOBS.tokenSecrets.env
        ] as { 'Fn::Join': [string, unknown[]] };
        // Rebuild the JSON with each secret reference standing in for its ARN.
        const json = JSON.parse(
          value['Fn::Join'][1]
            .map((part) =>
              typeof part === 'string'
                ? part
                : `<${(part as { Ref: string }).Ref}>`,
            )
            .join(''),
        ) as Record<string, string>;
        for (const [secret, ref] of Object.entries(json))
          expect(ref, `${name} ${secret}`).toBe(`<${secretOf(secret)}>`);
        expect(Object.keys(json).length, name).toBeGreaterThan(0);
      }
    });

    it('include the fleet-wide, unbound reporter token only when asked to, for the ingest function only', () => {
      expect(synth.stack.tokenSecrets.reporter).toBeUndefined();
      const withFleet = synthesize({
        props: { fleetReporterToken: true },
        bundle: false,
      });
      try {
        const secret = withFleet.stack.tokenSecrets.reporter;
        expect(secret).toBeDefined();
        const secretId = withFleet.stack.getLogicalId(
          secret!.node.defaultChild as CfnElement,
        );
        const fn = withFleet.stack.functions.postHeartbeats!;
        const ingest = withFleet.stack.getLogicalId(
          fn.node.defaultChild as CfnFunction,
        );
        const refs = actionsOf(withFleet.template, ingest)
          .filter((grant) => grant.action === 'secretsmanager:GetSecretValue')
          .flatMap((grant) =>
            grant.resources.map((r) => (r as { Ref: string }).Ref),
          );
        expect(refs).toContain(secretId);
        const reader = withFleet.stack.getLogicalId(
          withFleet.stack.functions.getBlocklist!.node
            .defaultChild as CfnFunction,
        );
        const readerRefs = actionsOf(withFleet.template, reader).flatMap(
          (grant) => grant.resources.map((r) => (r as { Ref?: string }).Ref),
        );
        expect(readerRefs).not.toContain(secretId);
      } finally {
        withFleet.cleanUp();
      }
    });

    it('leave no token value, token variable or DynamoDB endpoint in the template', () => {
      const text = JSON.stringify(template.toJSON());
      for (const knob of [
        KNOBS.reporterToken,
        KNOBS.readerToken,
        KNOBS.adminToken,
        KNOBS.reporterKeys,
        KNOBS.dynamodbEndpoint,
      ]) {
        expect(text).not.toContain(knob.env);
      }
      expect(text).not.toMatch(/"SecretString"/);
    });
  });

  describe('the HTTP API', () => {
    it('has exactly the routes of routes.ts', () => {
      const routeKeys = Object.values(
        resourcesOf(template, 'AWS::ApiGatewayV2::Route'),
      ).map((r) => r.Properties.RouteKey);
      const all = [...Object.values(routes), ...Object.values(publicRoutes)];
      expect(routeKeys.sort()).toEqual(
        all.map((r) => `${r.method} ${r.path}`).sort(),
      );
    });

    it('sends each route to its own function', () => {
      const integrations = resourcesOf(
        template,
        'AWS::ApiGatewayV2::Integration',
      );
      const routeResources = Object.values(
        resourcesOf(template, 'AWS::ApiGatewayV2::Route'),
      );
      for (const name of [...ROUTE_NAMES, ...PUBLIC_NAMES]) {
        const spec =
          name in routes
            ? routes[name as keyof typeof routes]
            : publicRoutes[name as keyof typeof publicRoutes];
        const route = routeResources.find(
          (r) => r.Properties.RouteKey === `${spec.method} ${spec.path}`,
        );
        const target = route?.Properties.Target as {
          'Fn::Join': [string, unknown[]];
        };
        const integrationId = (target['Fn::Join'][1][1] as { Ref: string }).Ref;
        const uri = integrations[integrationId]?.Properties.IntegrationUri as {
          'Fn::GetAtt': [string, string];
        };
        expect(uri['Fn::GetAtt'][0], name).toBe(logicalId(name));
      }
    });

    it('throttles its default stage', () => {
      template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: {
          ThrottlingRateLimit: Match.anyValue(),
          ThrottlingBurstLimit: Match.anyValue(),
        },
      });
    });

    it('throttles every route on its own, heartbeats below the stage so reporters cannot starve blocklist reads', () => {
      const stage = Object.values(
        resourcesOf(template, 'AWS::ApiGatewayV2::Stage'),
      )[0]!.Properties as Record<string, any>;
      const settings = stage.RouteSettings as Record<
        string,
        { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }
      >;
      const all = [...Object.values(routes), ...Object.values(publicRoutes)];
      expect(Object.keys(settings).sort()).toEqual(
        all.map((r) => `${r.method} ${r.path}`).sort(),
      );
      const heartbeats = settings['POST /v1/heartbeats']!;
      const blocklist = settings['GET /v1/blocklist']!;
      expect(
        heartbeats.ThrottlingRateLimit + blocklist.ThrottlingRateLimit,
      ).toBeLessThanOrEqual(stage.DefaultRouteSettings.ThrottlingRateLimit);
      expect(
        heartbeats.ThrottlingBurstLimit + blocklist.ThrottlingBurstLimit,
      ).toBeLessThanOrEqual(stage.DefaultRouteSettings.ThrottlingBurstLimit);
    });
  });

  describe('the schedules', () => {
    it('invoke the aggregate function at rate(1 minute) with bounded retries', () => {
      const rules = Object.values(resourcesOf(template, 'AWS::Events::Rule'));
      expect(rules).toHaveLength(SCHEDULE_NAMES.length);
      expect(rules[0]?.Properties).toMatchObject({
        ScheduleExpression: 'rate(1 minute)',
        State: 'ENABLED',
        Targets: [
          {
            Arn: { 'Fn::GetAtt': [logicalId('aggregate'), 'Arn'] },
            RetryPolicy: {
              MaximumRetryAttempts: expect.any(Number),
              MaximumEventAgeInSeconds: expect.any(Number),
            },
          },
        ],
      });
      template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId('aggregate') },
        MaximumRetryAttempts: 0,
      });
    });

    it('give the aggregate function 1,024 MB, or the memory asked for by a prop or by context', () => {
      expect(functionProps('aggregate').MemorySize).toBe(1024);
      const memoryOf = (synthesized: ReturnType<typeof synthesize>) => {
        try {
          return synthesized.template.toJSON().Resources[
            synthesized.stack.getLogicalId(
              synthesized.stack.functions.aggregate!.node
                .defaultChild as CfnFunction,
            )
          ].Properties.MemorySize;
        } finally {
          synthesized.cleanUp();
        }
      };
      expect(
        memoryOf(
          synthesize({ props: { aggregateMemoryMb: 1536 }, bundle: false }),
        ),
      ).toBe(1536);
      expect(
        memoryOf(
          synthesize({
            context: { 'relaywatch:aggregateMemoryMb': '2048' },
            bundle: false,
          }),
        ),
      ).toBe(2048);
      // Refused as the stack is built, before anything is synthesized.
      expect(
        () =>
          new RelaywatchStack(
            new App({
              context: {
                'aws:cdk:bundling-stacks': [],
                'relaywatch:aggregateMemoryMb': '1.5GB',
              },
            }),
            'Relaywatch',
          ),
      ).toThrow(/relaywatch:aggregateMemoryMb must be a whole number of MB/);
    });

    it('reserve concurrency for the aggregation, so API traffic cannot starve it', () => {
      for (const name of SCHEDULE_NAMES)
        expect(
          functionProps(name).ReservedConcurrentExecutions,
          name,
        ).toBeGreaterThanOrEqual(1);
    });
  });

  describe('the table stream', () => {
    it('feeds each stream consumer only removed ban items, in batches of its entry size, with bounded retries', () => {
      const mappings = Object.values(
        resourcesOf(template, 'AWS::Lambda::EventSourceMapping'),
      );
      expect(mappings).toHaveLength(STREAM_NAMES.length);
      const table = Object.keys(
        resourcesOf(template, 'AWS::DynamoDB::Table'),
      )[0];
      for (const name of STREAM_NAMES) {
        const mapping = mappings.find(
          (m) =>
            (m.Properties.FunctionName as { Ref: string }).Ref ===
            logicalId(name),
        );
        if (!mapping) throw new Error(`no event source mapping for ${name}`);
        expect(mapping.Properties, name).toMatchObject({
          EventSourceArn: { 'Fn::GetAtt': [table, 'StreamArn'] },
          BatchSize: streamConsumers[name].batchSize,
          BisectBatchOnFunctionError: true,
          MaximumRetryAttempts: expect.any(Number),
          DestinationConfig: {
            OnFailure: {
              Destination: {
                'Fn::GetAtt': [
                  synth.stack.getLogicalId(
                    synth.stack.streamFailures.node.defaultChild as CfnElement,
                  ),
                  'Arn',
                ],
              },
            },
          },
        });
        const filters = (
          mapping.Properties.FilterCriteria as {
            Filters: { Pattern: string }[];
          }
        ).Filters;
        expect(filters.map((filter) => JSON.parse(filter.Pattern))).toEqual([
          {
            eventName: ['REMOVE'],
            dynamodb: {
              Keys: { [TABLE.partitionKey]: { S: [keys.banPartition()] } },
            },
          },
        ]);
      }
    });

    it("lets stream consumers read only this table's stream, besides the account-wide ListStreams", () => {
      const table = Object.keys(
        resourcesOf(template, 'AWS::DynamoDB::Table'),
      )[0];
      for (const name of STREAM_NAMES) {
        const streamGrants = actionsOf(template, logicalId(name)).filter((g) =>
          [
            'dynamodb:GetRecords',
            'dynamodb:GetShardIterator',
            'dynamodb:DescribeStream',
          ].includes(g.action),
        );
        expect(streamGrants.length, name).toBe(3);
        for (const grant of streamGrants)
          expect(grant.resources, name).toEqual([
            { 'Fn::GetAtt': [table, 'StreamArn'] },
          ]);
      }
    });
  });

  it('outputs the API URL, the dashboard URL, the table name, the secret ARNs, the stream failure queue, the alarm topic and the CloudWatch dashboard', () => {
    expect(Object.keys(template.toJSON().Outputs).sort()).toEqual(
      [
        'AdminTokenSecretArn',
        'AlarmTopicArn',
        'CloudWatchDashboardUrl',
        'ApiUrl',
        'DashboardUrl',
        'ReaderTokenSecretArn',
        'ReporterSigningKeysSecretArn',
        'StreamFailuresQueueUrl',
        'TableName',
      ].sort(),
    );
  });

  it('leaves no cdk-nag AwsSolutions finding unacknowledged', () => {
    expect(nagFindings(synth.app)).toEqual([]);
  });
});
