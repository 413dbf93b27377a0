/**
 * The one error body of every relaywatch HTTP API, the status center's and
 * the agent's: `{"code": "stable_machine_code", "error": "a sentence",
 * "issues": [{"path", "message"}]}`. Programs branch on `code`, which never
 * changes meaning; people read `error`, whose wording may improve.
 */

import * as z from 'zod/mini';
import type { InputIssue } from './validation.js';
import { parseWith } from './validation.js';

/** The codes the status center answers, with the status each comes with. */
export const STATUS_CENTER_ERRORS = {
  /** The body, the query or the path does not match its schema. */
  validation_failed: 400,
  invalid_json: 400,
  /** No bearer token, or one the status center does not know (or revoked). */
  unauthorized: 401,
  /** A known token without the route's role, or a machine token speaking for another IP. */
  forbidden: 403,
  not_found: 404,
  /**
   * The local gateway has no such route (API Gateway's own answer,
   * {"message": "Not Found"}, has no code at all).
   */
  route_not_found: 404,
  method_not_allowed: 405,
  /** A batchId reused for other heartbeats. */
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
  /** DynamoDB is throttling or unreachable: retry the same request. */
  store_unavailable: 503,
} as const;
export type StatusCenterErrorCode = keyof typeof STATUS_CENTER_ERRORS;

/** The codes an agent's job API answers, with the status each comes with. */
export const AGENT_ERRORS = {
  invalid_json: 400,
  invalid_relay: 400,
  invalid_id: 400,
  unauthorized: 401,
  not_found: 404,
  relay_not_found: 404,
  method_not_allowed: 405,
  relay_exists: 409,
  relay_stopped: 409,
  relay_limit: 409,
  body_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  internal: 500,
  /** The relay failed before it flowed; the body adds status, cause and detail. */
  relay_failed: 502,
} as const;
export type AgentErrorCode = keyof typeof AGENT_ERRORS;

const issueSchema = z.object({ path: z.string(), message: z.string() });

/** The error body; other fields (the agent's status, cause, detail) may follow. */
export const errorBodySchema = z.looseObject({
  code: z.string().check(z.regex(/^[a-z][a-z0-9_]*$/)),
  error: z.string(),
  issues: z.optional(z.array(issueSchema)),
});
export type ErrorBody = {
  code: string;
  error: string;
  issues?: InputIssue[];
};

/**
 * The one error body; `issues` only when there are some to name.
 * @example errorBody('not_found', 'no ban in force for 192.0.2.7')
 */
export function errorBody(
  code: string,
  error: string,
  issues?: readonly InputIssue[],
): ErrorBody {
  return { code, error, ...(issues ? { issues: [...issues] } : {}) };
}

/**
 * The code a status means when nothing more precise was given.
 * @example defaultErrorCode(413) // 'payload_too_large'
 */
export function defaultErrorCode(status: number): StatusCenterErrorCode {
  const match = Object.entries(STATUS_CENTER_ERRORS).find(
    ([, known]) => known === status,
  );
  if (match) return match[0] as StatusCenterErrorCode;
  return status >= 500 ? 'internal' : 'validation_failed';
}

/** What a client can read from a refusal, whatever answered it. */
export type Refusal = {
  /** null when the answer had no code (a proxy, or an API Gateway default). */
  code: string | null;
  error: string | null;
  issues: InputIssue[];
};

const LEGACY_CODE = /^[a-z][a-z0-9_]*$/;

/**
 * Reads an error answer without trusting it. Agents older than this contract
 * put their code in `error` ({"error": "relay_failed"}); such a body is read
 * as that code, so a newer dispatcher still understands an older agent.
 */
export function readRefusal(body: unknown): Refusal {
  const parsed = parseWith(errorBodySchema, body);
  if (parsed.ok) {
    return {
      code: parsed.value.code,
      error: parsed.value.error,
      issues: parsed.value.issues ?? [],
    };
  }
  const record =
    typeof body === 'object' && body !== null
      ? (body as Record<string, unknown>)
      : {};
  const text = (value: unknown) =>
    typeof value === 'string' && value !== '' ? value : null;
  const code = text(record.code);
  const error = text(record.error) ?? text(record.message);
  const issues = parseWith(z.array(issueSchema), record.issues);
  const legacy = code === null && error !== null && LEGACY_CODE.test(error);
  return {
    code: legacy ? error : code,
    error: legacy ? null : error,
    issues: issues.ok ? issues.value : [],
  };
}
