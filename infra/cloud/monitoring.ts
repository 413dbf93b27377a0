import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import type { IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Operation } from 'aws-cdk-lib/aws-dynamodb';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { RULES } from '../../functions/core/policy.js';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/log.js';
import {
  AGGREGATE_HANDLER,
  CHARTED_DECISION_KINDS,
  handlerName,
} from '../../functions/metrics.js';
import { routes } from '../../functions/routes.js';

export type MonitoringProps = {
  table: Table;
  api: HttpApi;
  /** The scheduled aggregation function. */
  aggregate: LambdaFunction;
  /** Its memory, MB: the memory alarm fires near it. */
  aggregateMemoryMb: number;
  /** The stream consumers' on-failure queue. */
  streamFailures: Queue;
  /** An e-mail address subscribed to the alarm topic (confirmed by a link AWS sends). */
  alarmEmail?: string;
};

const FIVE_MINUTES = Duration.minutes(5);

/**
 * The share of the aggregate function's memory its process may peak at
 * before the memory alarm fires: a run past the whole is killed, decides
 * nothing, and every later run tries the same minutes again.
 */
export const AGGREGATE_MEMORY_ALARM_SHARE = 0.9;

/**
 * A metric the functions write through EMF (functions/log.ts), in the series
 * they write it to: the service's (the total), or the service's and one more
 * dimension (functions/metrics.ts). A series is named by its dimensions as
 * much as by its name: an alarm on the bare name would watch a series nobody
 * writes and never fire.
 */
const relaywatchMetric = (
  metricName: string,
  statistic: string,
  period = FIVE_MINUTES,
  dimension?: { name: string; value: string },
) =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    statistic,
    period,
    dimensionsMap: {
      service: SERVICE_NAME,
      ...(dimension ? { [dimension.name]: dimension.value } : {}),
    },
    ...(dimension ? { label: dimension.value } : {}),
  });

/** The handlers that write the Errors metric, by their `handler` dimension. */
const ERROR_HANDLERS = [
  ...Object.values(routes).map((route) => handlerName(route.entry)),
  AGGREGATE_HANDLER,
];

/**
 * Alarms on relaywatch's own failures and on what it sees in the fleet, all to
 * one SNS topic, and a CloudWatch dashboard of the same metrics. The worst
 * failure is silent: when the aggregation stops, the blocklist just stops
 * changing, so "no finished run" alarms on missing data.
 */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: Record<string, Alarm> = {};

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: 'relaywatch alarms',
      enforceSSL: true,
    });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names and metric values, no secret; CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key, and a customer managed key would cost more than the topic.',
    });
    if (props.alarmEmail)
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const alarm = (
      name: string,
      metric: IMetric,
      options: {
        threshold: number;
        description: string;
        below?: boolean;
        missing?: TreatMissingData;
        evaluationPeriods?: number;
      },
    ) => {
      const created = new Alarm(this, name, {
        alarmDescription: options.description,
        metric,
        threshold: options.threshold,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        comparisonOperator: options.below
          ? ComparisonOperator.LESS_THAN_THRESHOLD
          : ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: options.missing ?? TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(new SnsAction(this.topic));
      created.addOkAction(new SnsAction(this.topic));
      this.alarms[name] = created;
      return created;
    };

    // relaywatch's own failures.
    alarm(
      'AggregationErrors',
      props.aggregate.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
      {
        threshold: 2,
        description:
          'The aggregation failed at least twice in 5 minutes (one failure is redone by the next run): bans are not being decided.',
      },
    );
    alarm(
      'AggregationFailures',
      relaywatchMetric('AggregationFailures', 'Sum'),
      {
        threshold: 1,
        description:
          'A minute could not be decided and was moved past (an aggregation_failed event names it), or the state could not be read or written: detection ran with a gap.',
      },
    );
    alarm('HandlerErrors', relaywatchMetric('Errors', 'Sum'), {
      threshold: 5,
      description:
        'The functions answered 5xx or the aggregation went past a failure at least 5 times in 5 minutes (the dashboard splits Errors by handler and kind).',
    });
    alarm('AggregationStopped', relaywatchMetric('AggregationRuns', 'Sum'), {
      threshold: 1,
      below: true,
      // No data is no run at all: the blocklist has stopped changing.
      missing: TreatMissingData.BREACHING,
      evaluationPeriods: 2,
      description:
        'No aggregation run finished for 10 minutes: the blocklist has stopped changing and no machine is banned or released.',
    });
    alarm(
      'AggregationLag',
      relaywatchMetric('AggregationLagSeconds', 'Maximum'),
      {
        threshold: 180,
        description:
          'A minute was decided more than 3 minutes after it closed: the aggregation is falling behind.',
      },
    );
    alarm(
      'AggregationThrottled',
      props.aggregate.metricThrottles({
        period: FIVE_MINUTES,
        statistic: 'Sum',
      }),
      {
        threshold: 1,
        description:
          'The aggregation was throttled (its reserved concurrency was in use): runs overlap or hang.',
      },
    );
    alarm(
      'AggregationMemory',
      relaywatchMetric('AggregationPeakMemoryMb', 'Maximum'),
      {
        threshold: Math.floor(
          props.aggregateMemoryMb * AGGREGATE_MEMORY_ALARM_SHARE,
        ),
        description: `The aggregation's process peaked at ${AGGREGATE_MEMORY_ALARM_SHARE * 100} % or more of its ${props.aggregateMemoryMb} MB: a run killed for memory decides nothing and every later run tries the same minutes again. Raise aggregateMemoryMb (docs/deploy.md) before the fleet, its window or a catch-up grows.`,
      },
    );
    alarm(
      'Api5xx',
      props.api.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' }),
      {
        threshold: 5,
        description:
          'The API answered 5xx at least 5 times in 5 minutes: agents may fail to report and dispatchers to read the blocklist.',
      },
    );
    alarm(
      'TableThrottles',
      props.table.metricThrottledRequestsForOperations({
        operations: [
          Operation.GET_ITEM,
          Operation.PUT_ITEM,
          Operation.UPDATE_ITEM,
          Operation.DELETE_ITEM,
          Operation.QUERY,
          Operation.BATCH_WRITE_ITEM,
          Operation.BATCH_GET_ITEM,
        ],
        period: FIVE_MINUTES,
      }),
      {
        threshold: 10,
        description:
          'DynamoDB throttled at least 10 requests in 5 minutes: heartbeats may be refused (503) or the aggregation slowed.',
      },
    );
    alarm(
      'StreamFailures',
      props.streamFailures.metricApproximateNumberOfMessagesVisible({
        period: FIVE_MINUTES,
        statistic: 'Maximum',
      }),
      {
        threshold: 1,
        description:
          'The ban-expiry stream consumer gave up on records (see the stream failures queue): some ban ends were not recorded as events.',
      },
    );

    // What relaywatch sees in the fleet.
    alarm('CapInForce', relaywatchMetric('CapInForce', 'Maximum'), {
      threshold: 1,
      description:
        'The ban cap is in force: machines qualified for a ban but were not banned (relaywatch is protecting capacity; look at the fleet).',
    });
    alarm('FleetWideFailure', relaywatchMetric('FleetWideFailure', 'Maximum'), {
      threshold: 1,
      description:
        'Most of the fleet fails to reach origins: relaywatch bans nobody for it (not a machine fault); look at the network or the origins.',
    });
    alarm('FleetSilent', relaywatchMetric('FleetSilent', 'Maximum'), {
      threshold: 1,
      description:
        'The whole fleet stopped reporting: silent machines are not banned; look at the agents, their tokens or the network to the API.',
    });

    const graph = (title: string, metrics: IMetric[], width = 8) =>
      new GraphWidget({ title, left: metrics, width, height: 6 });
    const minute = Duration.minutes(1);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${Stack.of(this).stackName}-relaywatch`,
      widgets: [
        [
          new TextWidget({
            markdown:
              '# relaywatch\nBans, fleet conditions and the health of the status center itself. Alarms go to the stack output AlarmTopicArn.',
            width: 24,
            height: 2,
          }),
        ],
        [
          new AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width: 24,
            height: 3,
          }),
        ],
        [
          graph('Bans in force', [
            relaywatchMetric('BansInForce', 'Maximum', minute),
          ]),
          graph(
            'Decisions',
            ['BansDecided', 'SilentBans', 'CappedBans', 'Releases'].map(
              (name) => relaywatchMetric(name, 'Sum', minute),
            ),
          ),
          graph('Fleet', [
            relaywatchMetric('ReportingIps', 'Maximum', minute),
            relaywatchMetric('SilentIps', 'Maximum', minute),
          ]),
        ],
        [
          graph(
            'Conditions (1 = yes)',
            [
              'OriginOutages',
              'FleetWideFailure',
              'FleetSilent',
              'CapInForce',
            ].map((name) => relaywatchMetric(name, 'Maximum', minute)),
          ),
          graph('Aggregation lag (s) and runs', [
            relaywatchMetric('AggregationLagSeconds', 'Maximum', minute),
            relaywatchMetric('AggregationRuns', 'Sum', minute),
          ]),
          graph('Aggregation peak memory (MB)', [
            relaywatchMetric('AggregationPeakMemoryMb', 'Maximum', minute),
          ]),
          graph('Aggregation errors and throttles', [
            props.aggregate.metricErrors({ period: minute }),
            props.aggregate.metricThrottles({ period: minute }),
          ]),
        ],
        [
          graph(
            'Decisions by rule',
            RULES.map((rule) =>
              relaywatchMetric('Decisions', 'Sum', minute, {
                name: 'rule',
                value: rule.name,
              }),
            ),
          ),
          graph(
            'Decisions by kind',
            CHARTED_DECISION_KINDS.map((kind) =>
              relaywatchMetric('Decisions', 'Sum', minute, {
                name: 'kind',
                value: kind,
              }),
            ),
          ),
          graph(
            'Errors by handler',
            ERROR_HANDLERS.map((handler) =>
              relaywatchMetric('Errors', 'Sum', minute, {
                name: 'handler',
                value: handler,
              }),
            ),
          ),
        ],
        [
          graph('Heartbeats', [
            relaywatchMetric('HeartbeatsAccepted', 'Sum', minute),
            relaywatchMetric('HeartbeatsStale', 'Sum', minute),
            relaywatchMetric('HeartbeatsRejected', 'Sum', minute),
          ]),
          graph('API', [
            props.api.metricCount({ period: minute }),
            props.api.metricClientError({ period: minute }),
            props.api.metricServerError({ period: minute }),
          ]),
          graph('DynamoDB throttles and stream failures', [
            props.table.metricThrottledRequestsForOperations({
              operations: [
                Operation.PUT_ITEM,
                Operation.UPDATE_ITEM,
                Operation.QUERY,
                Operation.BATCH_WRITE_ITEM,
              ],
              period: minute,
            }),
            props.streamFailures.metricApproximateNumberOfMessagesVisible({
              period: minute,
            }),
          ]),
        ],
      ],
    });
  }
}
