/**
 * Structured logs of every relaywatch program: one JSON object per line
 * ({timestamp, level, message, ...fields}). Lambdas write to stdout with
 * process.stdout.write so Lambda's JSON log format passes the line through as
 * is (console.* would wrap it in a "message" string), which also keeps the
 * metric lines valid CloudWatch Embedded Metric Format; the agent and the
 * dispatcher write to stderr.
 *
 * Lambda lines carry the fields Powertools' Logger would add (service,
 * function name, request id, cold start), written here rather than through the
 * Powertools packages: the shape is a dozen lines, and the same logger serves
 * the agent and the dispatcher, which do not run in Lambda.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export type Logger = {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** Emits counts as CloudWatch metrics (namespace METRICS_NAMESPACE, no dimensions) through EMF. */
  metrics(values: Record<string, number>): void;
  child(fields: LogFields): Logger;
};

export type LoggerOptions = {
  level: LogLevel;
  /** false: drop metric lines (tests that do not look at them). */
  metrics?: boolean;
  fields?: LogFields;
  write?: (line: string) => void;
  now?: () => number;
};

/** Errors in fields are logged as "Name: message" (JSON.stringify would write {}). */
function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

/** The one CloudWatch namespace of every relaywatch metric. */
export const METRICS_NAMESPACE = 'Relaywatch';

/** Fields of every line of a Lambda's process: which service and function wrote it. */
export function lambdaFields(
  env: Record<string, string | undefined>,
): LogFields {
  return {
    service: env.POWERTOOLS_SERVICE_NAME ?? 'relaywatch',
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

/** Writes to stderr: for the programs whose stdout is their answer. */
export const toStderr = (line: string) => void process.stderr.write(line);

export function createLogger(options: LoggerOptions): Logger {
  const write =
    options.write ?? ((line: string) => void process.stdout.write(line));
  const now = options.now ?? Date.now;
  const base = options.fields ?? {};
  const threshold = LOG_LEVELS.indexOf(options.level);
  const emit = (level: LogLevel, message: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    write(
      `${JSON.stringify({ timestamp: new Date(now()).toISOString(), level, message, ...base, ...fields }, errorsAsText)}\n`,
    );
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    metrics(values) {
      if (options.metrics === false) return;
      write(
        `${JSON.stringify({
          _aws: {
            Timestamp: now(),
            CloudWatchMetrics: [
              {
                Namespace: METRICS_NAMESPACE,
                Dimensions: [[]],
                Metrics: Object.keys(values).map((Name) => ({
                  Name,
                  Unit: Name.endsWith('Seconds') ? 'Seconds' : 'Count',
                })),
              },
            ],
          },
          ...base,
          ...values,
        })}\n`,
      );
    },
    child: (fields) =>
      createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
