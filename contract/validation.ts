/**
 * How a request's problems are named, and zod's English messages: zod/mini
 * ships without messages, so this module loads them once. Every contract
 * module that defines schemas imports this one, so a client that parses with
 * a contract schema, or with parseWith, gets the messages without doing
 * anything (zod's namespace is not re-exported from here: a re-exported
 * namespace would pull all of zod, every locale included, into the bundles).
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

z.config(en());

/** One problem with a request, named by its dotted path ("heartbeats.3.ip"). */
export type InputIssue = { path: string; message: string };

export function toInputIssues(error: z.core.$ZodError): InputIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(body)',
    message: issue.message,
  }));
}

export type Parsed<T> =
  | { ok: true; value: T }
  | { ok: false; issues: InputIssue[] };

/** safeParse that answers in relaywatch's issue shape. */
export function parseWith<T>(
  schema: z.ZodMiniType<T>,
  input: unknown,
): Parsed<T> {
  const result = schema.safeParse(input);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, issues: toInputIssues(result.error) };
}

/**
 * A start-up configuration problem, naming every bad setting: the status
 * center's knobs and every client's settings throw this one class.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
