/**
 * Structured logs of every relaywatch program: one JSON object per line
 * ({timestamp, level, message, ...fields}). Lambdas write to stdout with
 * process.stdout.write so Lambda's JSON log format passes the line through as
 * is (console.* would wrap it in a "message" string), which also keeps the
 * metric lines valid CloudWatch Embedded Metric Format; the agent and the
 * dispatcher write to stderr.
 *
 * Lambda lines carry the fields Powertools' Logger would add (service,
 * function name, request id, cold start), written here rather than through
 * @aws-lambda-powertools/logger and /metrics. Their bundle cost is small
 * (about 33 KB minified beside our 440 KB functions), but: both write through
 * a Console of their own on process.stdout with no sink to hand them, so the
 * tests that read log lines and the local runtime (metric lines only when
 * asked, or to a file) would have to patch stdout; outside Lambda's own
 * invocation store the Logger keeps the request context on the instance,
 * which the local gateway's concurrent requests share; and Metrics holds one value per metric name per
 * flush, where a run counts decisions of several rules under one name
 * (rule and kind dimensions), which means a singleMetric() flush per
 * dimension value anyway. The EMF shape, with its dimension sets, is a dozen
 * lines.
 */

import type {
  Logger as LineLogger,
  LoggerOptions as LineLoggerOptions,
  LogFields,
} from '#contract/log';
import { createLogger as createLineLogger } from '#contract/log';

export type { LogFields, LogLevel } from '#contract/log';
export { LOG_LEVELS, toStderr } from '#contract/log';

/** The clients' line logger (#contract/log), plus CloudWatch metrics. */
export type Logger = Omit<LineLogger, 'child'> & {
  /**
   * Emits values as CloudWatch metrics (namespace METRICS_NAMESPACE) through
   * EMF, in the series of the service and, for each of `dimensions`, of the
   * service and that dimension (see metricDimensionSets).
   */
  metrics(values: Record<string, number>, dimensions?: MetricDimensions): void;
  child(fields: LogFields): Logger;
};

/** Dimension name → value of one metric line, e.g. { rule: 'silent', kind: 'ban' }. */
export type MetricDimensions = Readonly<Record<string, string>>;

/**
 * Where metric lines go: true (the default) with the log lines; false drops
 * them (tests that do not look at them, npm start unless asked); a function
 * receives them instead (npm start -- --metrics-file).
 */
export type MetricsSink = boolean | ((line: string) => void);

export type LoggerOptions = LineLoggerOptions & { metrics?: MetricsSink };

/** The one CloudWatch namespace of every relaywatch metric. */
export const METRICS_NAMESPACE = 'Relaywatch';

/**
 * The service every Lambda line and metric names (the `service` dimension);
 * POWERTOOLS_SERVICE_NAME replaces it, but the stack's alarms and dashboard
 * (infra/cloud/monitoring.ts) watch this one.
 */
export const SERVICE_NAME = 'relaywatch';

/**
 * The dimension sets of a metric line: the service alone, so totals stay
 * chartable and alarmable, and the service with each dimension of the line,
 * one series per value (decisions by rule, by kind). A metric with
 * dimensions is its own CloudWatch series: an alarm must name the same set.
 */
export function metricDimensionSets(
  dimensions: MetricDimensions = {},
): string[][] {
  return [
    ['service'],
    ...Object.keys(dimensions)
      .filter((name) => name !== 'service')
      .map((name) => ['service', name]),
  ];
}

/** Fields of every line of a Lambda's process: which service and function wrote it. */
export function lambdaFields(
  env: Record<string, string | undefined>,
): LogFields {
  return {
    service: env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME,
    ...(env.AWS_LAMBDA_FUNCTION_NAME
      ? { function: env.AWS_LAMBDA_FUNCTION_NAME }
      : {}),
  };
}

let coldStart = true;

/**
 * The logger of one invocation: its request id (to find every line of a
 * request, and the REPORT line Lambda writes), and coldStart, true only for
 * the first invocation of the process.
 */
export function invocationLogger(
  log: Logger,
  context: { awsRequestId?: string } | undefined,
  fields: LogFields = {},
): Logger {
  const first = coldStart;
  coldStart = false;
  return log.child({
    requestId: context?.awsRequestId,
    coldStart: first,
    ...fields,
  });
}

export function createLogger(options: LoggerOptions): Logger {
  const lines = createLineLogger(options);
  const write =
    options.write ?? ((line: string) => void process.stdout.write(line));
  const now = options.now ?? Date.now;
  const base = options.fields ?? {};
  return {
    debug: lines.debug,
    info: lines.info,
    warn: lines.warn,
    error: lines.error,
    metrics(values, dimensions = {}) {
      if (options.metrics === false) return;
      const sink =
        typeof options.metrics === 'function' ? options.metrics : write;
      sink(
        `${JSON.stringify({
          _aws: {
            Timestamp: now(),
            CloudWatchMetrics: [
              {
                Namespace: METRICS_NAMESPACE,
                Dimensions: metricDimensionSets(dimensions),
                Metrics: Object.keys(values).map((Name) => ({
                  Name,
                  Unit: Name.endsWith('Seconds') ? 'Seconds' : 'Count',
                })),
              },
            ],
          },
          ...base,
          service:
            typeof base.service === 'string' ? base.service : SERVICE_NAME,
          ...dimensions,
          ...values,
        })}\n`,
      );
    },
    child: (fields) =>
      createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
