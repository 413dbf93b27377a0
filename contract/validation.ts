/**
 * zod as the contract uses it: zod/mini ships without messages, so this module
 * loads the English ones before any schema is parsed. Code that defines its
 * own schemas imports `z` from here rather than from zod, so the messages are
 * configured by the import itself, not by a side-effect import elsewhere.
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

z.config(en());

export { z };

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
