/**
 * How a request's problems are named, and the one way to parse what crosses
 * the wire: parseWith. zod/mini ships without messages (every issue would read
 * "Invalid input"), so parseWith sets zod's English ones before its first
 * parse; a schema's own messages ("must be an IPv4 or IPv6 address") win over
 * them. zod's namespace is not re-exported from here: a re-exported namespace
 * would pull all of zod, every locale included, into the bundles.
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';

let englishMessages = false;

/** zod's English messages, set once for the whole process (zod's config is global). */
function useEnglishMessages(): void {
  if (englishMessages) return;
  z.config(en());
  englishMessages = true;
}

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

/** safeParse with zod's English messages, answering in relaywatch's issue shape. */
export function parseWith<T>(
  schema: z.ZodMiniType<T>,
  input: unknown,
): Parsed<T> {
  useEnglishMessages();
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
