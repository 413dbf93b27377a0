/**
 * Structured logs: one JSON object per line on stdout, with the request id.
 * Written with process.stdout.write so Lambda's JSON log format passes the
 * line through as is (console.* would wrap it in a "message" string), which
 * also keeps the metric lines valid CloudWatch Embedded Metric Format.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Emits counts as CloudWatch metrics (namespace Relaywatch) through EMF. */
  metrics(values: Record<string, number>): void;
  child(fields: Record<string, unknown>): Logger;
};

export type LoggerOptions = {
  level: LogLevel;
  /** false: drop metric lines (tests that do not look at them). */
  metrics?: boolean;
  fields?: Record<string, unknown>;
  write?: (line: string) => void;
};

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => void process.stdout.write(line));
  const base = options.fields ?? {};
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < RANK[options.level]) return;
    write(`${JSON.stringify({ timestamp: new Date().toISOString(), level, message, ...base, ...fields })}\n`);
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
            Timestamp: Date.now(),
            CloudWatchMetrics: [
              { Namespace: 'Relaywatch', Dimensions: [[]], Metrics: Object.keys(values).map((Name) => ({ Name, Unit: 'Count' })) },
            ],
          },
          ...base,
          ...values,
        })}\n`,
      );
    },
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
