import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Template } from 'aws-cdk-lib/assertions';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  METRICS_NAMESPACE,
  metricDimensionSets,
  SERVICE_NAME,
} from '../../functions/log.js';
import type { Synthesized } from './synth.js';
import { nagFindings, resourcesOf, synthesize } from './synth.js';

const FUNCTIONS_DIR = fileURLToPath(
  new URL('../../functions/', import.meta.url),
);

/** Every TypeScript source under functions/, concatenated: where metric names are written. */
function functionSources(dir = FUNCTIONS_DIR): string {
  return readdirSync(dir, { withFileTypes: true })
    .map((entry) =>
      entry.isDirectory()
        ? functionSources(join(dir, entry.name))
        : entry.name.endsWith('.ts')
          ? readFileSync(join(dir, entry.name), 'utf8')
          : '',
    )
    .join('\n');
}

/**
 * The CloudWatch series a dashboard charts, as "Name dim=value ..." (dimensions
 * sorted), for the Relaywatch namespace. The body is an Fn::Join of JSON
 * text and references; the references only ever stand for values.
 */
function dashboardSeries(template: Template): string[] {
  const [dashboard] = Object.values(
    resourcesOf(template, 'AWS::CloudWatch::Dashboard'),
  );
  const join = (
    dashboard!.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] }
  )['Fn::Join'][1];
  const body = JSON.parse(
    join.map((part) => (typeof part === 'string' ? part : 'ref')).join(''),
  ) as {
    widgets: Array<{ properties: { metrics?: unknown[][] } }>;
  };
  return body.widgets.flatMap((widget) =>
    (widget.properties.metrics ?? []).flatMap((entry) => {
      const [namespace, name, ...rest] = entry;
      if (namespace !== METRICS_NAMESPACE) return [];
      const dimensions: string[] = [];
      for (let i = 0; i + 1 < rest.length; i += 2)
        if (typeof rest[i] === 'string')
          dimensions.push(`${rest[i]}=${rest[i + 1]}`);
      return [[name, ...dimensions.sort()].join(' ')];
    }),
  );
}

type AlarmProps = {
  MetricName?: string;
  Namespace?: string;
  Dimensions?: Array<{ Name: string; Value: unknown }>;
  Metrics?: unknown;
  AlarmActions: unknown[];
  OKActions: unknown[];
  TreatMissingData: string;
  ComparisonOperator: string;
  Threshold: number;
};

describe("the stack's monitoring", () => {
  let synth: Synthesized;
  let template: Template;
  let alarms: Record<string, AlarmProps>;
  const alarmNamed = (name: string) => {
    const entry = Object.entries(alarms).find(([id]) =>
      id.startsWith(`Monitoring${name}`),
    );
    if (!entry)
      throw new Error(
        `no alarm ${name}; alarms are ${Object.keys(alarms).join(', ')}`,
      );
    return entry[1];
  };

  beforeAll(() => {
    synth = synthesize({
      bundle: false,
      props: { alarmEmail: 'oncall@example.com' },
    });
    template = synth.template;
    alarms = Object.fromEntries(
      Object.entries(resourcesOf(template, 'AWS::CloudWatch::Alarm')).map(
        ([id, r]) => [id, r.Properties as AlarmProps],
      ),
    );
  });
  afterAll(() => synth?.cleanUp());

  it('has an alarm for each failure an operator must hear about', () => {
    for (const name of [
      'AggregationErrors',
      'AggregationFailures',
      'HandlerErrors',
      'AggregationStopped',
      'AggregationLag',
      'AggregationMemory',
      'CapInForce',
      'FleetWideFailure',
      'FleetSilent',
      'Api5xx',
      'TableThrottles',
      'StreamFailures',
    ]) {
      expect(() => alarmNamed(name)).not.toThrow();
    }
  });

  it('sends every alarm, and its return to OK, to the one SNS topic, which the e-mail address subscribes to', () => {
    const topics = Object.keys(resourcesOf(template, 'AWS::SNS::Topic'));
    expect(topics).toHaveLength(1);
    for (const alarm of Object.values(alarms)) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topics[0] }]);
      expect(alarm.OKActions).toEqual([{ Ref: topics[0] }]);
    }
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: topics[0] },
    });
  });

  it('alarms when aggregation runs stop, treating no data as breaching: a stopped aggregation writes no metric', () => {
    const stopped = alarmNamed('AggregationStopped');
    expect(stopped).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: 'AggregationRuns',
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
  });

  it("watches the aggregate function's errors, the API's 5xx and the stream failure queue's depth", () => {
    expect(alarmNamed('AggregationErrors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
    });
    expect(alarmNamed('AggregationFailures')).toMatchObject({
      Namespace: 'Relaywatch',
      MetricName: 'AggregationFailures',
      Threshold: 1,
    });
    expect(alarmNamed('Api5xx')).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
    });
    expect(alarmNamed('StreamFailures')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
    });
    expect(JSON.stringify(alarmNamed('TableThrottles').Metrics)).toContain(
      'ThrottledRequests',
    );
  });

  it('only alarms on relaywatch metrics that the functions actually write', () => {
    const sources = functionSources();
    const names = Object.values(alarms).flatMap((alarm) =>
      alarm.Namespace === METRICS_NAMESPACE && alarm.MetricName
        ? [alarm.MetricName]
        : [],
    );
    expect(names.length).toBeGreaterThan(3);
    for (const name of names)
      expect(sources, `metric ${name}`).toMatch(new RegExp(`\\b${name}\\b`));
  });

  it('alarms on the series the functions write: every relaywatch metric in the service dimension set', () => {
    const own = Object.values(alarms).filter(
      (alarm) => alarm.Namespace === METRICS_NAMESPACE,
    );
    expect(own.length).toBeGreaterThan(3);
    for (const alarm of own) {
      expect(alarm.Dimensions, alarm.MetricName).toEqual([
        { Name: 'service', Value: SERVICE_NAME },
      ]);
      // A set the writer puts every line in (functions/log.ts).
      expect(metricDimensionSets()).toContainEqual(
        alarm.Dimensions!.map((d) => d.Name),
      );
    }
    expect(alarmNamed('HandlerErrors')).toMatchObject({
      MetricName: 'Errors',
      Statistic: 'Sum',
    });
  });

  it("alarms when the aggregation's process peaks at 90 % of its function's memory, whatever memory the stack gives it", () => {
    expect(alarmNamed('AggregationMemory')).toMatchObject({
      MetricName: 'AggregationPeakMemoryMb',
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 921,
    });
    const larger = synthesize({
      bundle: false,
      props: { aggregateMemoryMb: 2048 },
    });
    try {
      larger.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'AggregationPeakMemoryMb',
        Threshold: 1843,
      });
    } finally {
      larger.cleanUp();
    }
  });

  it('charts decisions by rule and kind, errors by handler, each in the service series the functions write', () => {
    const series = dashboardSeries(template);
    for (const expected of [
      'BansInForce service=relaywatch',
      'AggregationLagSeconds service=relaywatch',
      'HeartbeatsAccepted service=relaywatch',
      'Decisions rule=fail-ratio service=relaywatch',
      'Decisions rule=silent service=relaywatch',
      'Decisions kind=ban service=relaywatch',
      'Decisions kind=release service=relaywatch',
      'Errors handler=post-heartbeats service=relaywatch',
      'Errors handler=aggregate service=relaywatch',
    ])
      expect(series).toContain(expected);
    // Every relaywatch series charted is one the writer puts lines in: the service, plus at most one dimension.
    const own = series.filter((line) => line.includes('service='));
    expect(own.length).toBeGreaterThan(10);
    for (const line of own) {
      const names = line
        .split(' ')
        .slice(1)
        .map((pair) => pair.split('=')[0]);
      expect(names.length, line).toBeLessThanOrEqual(2);
      expect(line).toContain(`service=${SERVICE_NAME}`);
    }
  });

  it('has a dashboard showing the alarms and the metrics, and outputs the topic and the dashboard', () => {
    const dashboards = Object.values(
      resourcesOf(template, 'AWS::CloudWatch::Dashboard'),
    );
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]!.Properties.DashboardBody);
    for (const metric of [
      'BansInForce',
      'BansDecided',
      'CappedBans',
      'SilentIps',
      'OriginOutages',
      'AggregationLagSeconds',
      'HeartbeatsAccepted',
      'HeartbeatsStale',
    ]) {
      expect(body).toContain(metric);
    }
    template.hasOutput('AlarmTopicArn', { Value: { Ref: Match.anyValue() } });
    template.hasOutput('CloudWatchDashboardUrl', Match.anyValue());
  });

  it('leaves no unacknowledged cdk-nag finding', () => {
    expect(nagFindings(synth.app)).toEqual([]);
  });
});
