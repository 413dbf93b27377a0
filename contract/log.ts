/**
 * The log line every relaywatch program writes: one JSON object per line,
 * {timestamp, level, message, ...fields}. This is the logger of the programs
 * that run outside Lambda (the agent, the dispatcher, the CLI): it has no
 * CloudWatch metric writer, which only the Lambdas need (functions/log.ts
 * writes the same lines and adds Embedded Metric Format on top).
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export type Logger = {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
};

export type LoggerOptions = {
  level: LogLevel;
  fields?: LogFields;
  /** Where lines go; stdout when unset (toStderr for programs whose stdout is their answer). */
  write?: (line: string) => void;
  now?: () => number;
};

/** Errors in fields are logged as "Name: message" (JSON.stringify would write {}). */
function errorsAsText(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

/** Writes to stderr: for the programs whose stdout is their answer. */
export const toStderr = (line: string) => void process.stderr.write(line);

/**
 * @example
 * const log = createLogger({ level: 'info', write: toStderr });
 * log.child({ relay: 'cam-1' }).warn('relay stalled', { seconds: 12 });
 */
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
    child: (fields) =>
      createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
