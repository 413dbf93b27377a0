/**
 * The CLI's one HTTP path to the status center: bearer token, JSON, a bounded
 * timeout, and every failure turned into a CliError carrying its exit code.
 */
import type { Refusal, StatusCenterErrorCode } from '#contract/errors';
import { readRefusal } from '#contract/errors';

/** Exit codes of `relaywatch`; documented in --help and the README. */
export const EXIT = {
  ok: 0,
  /** A bug: an unexpected exception. */
  internal: 1,
  /** Bad command, flag, argument or setting; nothing was sent. */
  usage: 2,
  /** The status center answered 404: no such ban, or no such route on this version. */
  notFound: 3,
  /** The status center refused the token: 401 unknown or missing, 403 wrong role. */
  auth: 4,
  /** The status center could not be reached, timed out, or answered 5xx. */
  unavailable: 5,
  /** The status center refused the request as invalid (400, 413, 415, other 4xx). */
  refused: 6,
} as const;

export class CliError extends Error {
  override name = 'CliError';
  constructor(
    readonly exitCode: number,
    message: string,
    /** The status center's machine code (contract/errors.ts) when it answered one. */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export type ApiOptions = {
  url: string;
  token: string;
  timeoutMs: number;
  fetch?: FetchLike;
};

export type ApiAnswer = {
  status: number;
  body: any;
  /** The refusal, when the answer was one of the codes the caller allowed. */
  refusal?: Refusal;
};

/** The status center's sentence, its issues, and its code in brackets: "no ban in force for 192.0.2.7 [not_found]". */
function describeRefusal(status: number, refusal: Refusal): string {
  const text = refusal.error ?? `HTTP ${status}`;
  const details = refusal.issues
    .map((issue) => `${issue.path || '(body)'}: ${issue.message}`)
    .join('; ');
  const coded = refusal.code === null ? text : `${text} [${refusal.code}]`;
  return details ? `${coded} (${details})` : coded;
}

/** The CliError of a non-2xx answer: its exit code follows the status. */
function refusalError(status: number, answer: Refusal): CliError {
  const refusal = describeRefusal(status, answer);
  if (status === 401)
    return new CliError(
      EXIT.auth,
      `the status center refused the token (401): ${refusal}; set --token or RELAYWATCH_TOKEN`,
      answer.code,
    );
  if (status === 403)
    return new CliError(
      EXIT.auth,
      `the token's role may not do this (403): ${refusal}`,
      answer.code,
    );
  if (status === 404)
    return new CliError(
      EXIT.notFound,
      `not found (404): ${refusal}`,
      answer.code,
    );
  if (status >= 500)
    return new CliError(
      EXIT.unavailable,
      `the status center failed (${status}): ${refusal}`,
      answer.code,
    );
  return new CliError(
    EXIT.refused,
    `the status center refused the request (${status}): ${refusal}`,
    answer.code,
  );
}

/**
 * A client of the status center's JSON API. `allow` lists the refusal codes
 * the caller handles itself: such an answer comes back with its `refusal`
 * instead of being thrown; any other non-2xx answer throws its CliError.
 */
export function createApi(options: ApiOptions) {
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  return async (
    method: string,
    path: string,
    request: {
      body?: unknown;
      allow?: readonly StatusCenterErrorCode[];
    } = {},
  ): Promise<ApiAnswer> => {
    const headers: Record<string, string> = {
      authorization: `Bearer ${options.token}`,
      accept: 'application/json',
    };
    if (request.body !== undefined)
      headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await doFetch(`${base}${path}`, {
        method,
        headers,
        ...(request.body !== undefined
          ? { body: JSON.stringify(request.body) }
          : {}),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const cause =
        error instanceof Error && error.cause instanceof Error
          ? `: ${error.cause.message}`
          : '';
      const what =
        error instanceof Error && error.name === 'TimeoutError'
          ? `no answer within ${options.timeoutMs} ms`
          : `${String(error)}${cause}`;
      throw new CliError(
        EXIT.unavailable,
        `cannot reach the status center at ${base}: ${what}`,
      );
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const { status } = response;
    if (status >= 200 && status < 300) return { status, body };
    const refusal = readRefusal(body);
    if (request.allow?.some((code) => code === refusal.code))
      return { status, body, refusal };
    throw refusalError(status, refusal);
  };
}

export type Api = ReturnType<typeof createApi>;
