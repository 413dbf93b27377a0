import type { StatusCenterErrorCode } from '#contract/errors';
import { defaultErrorCode, errorBody } from '#contract/errors';
import type { InputIssue } from '#contract/validation';
import type { HttpResponse } from './responses.js';
import { json } from './responses.js';

/**
 * The one error a handler throws for a client-visible outcome. Under 500 the
 * message is shown to the client (expose); 5xx bodies are always generic.
 * `code` is the stable machine code of the body (contract/errors.ts); without
 * one, the status names it (404 → not_found).
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly expose: boolean;
  readonly code: StatusCenterErrorCode;
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: InputIssue[],
    readonly headers?: Record<string, string>,
    code?: StatusCenterErrorCode,
  ) {
    super(message);
    this.expose = statusCode < 500;
    this.code = code ?? defaultErrorCode(statusCode);
  }
}

export const badRequest = (message: string, issues?: InputIssue[]) =>
  new HttpError(400, message, issues);
export const notFound = (message: string) => new HttpError(404, message);

/** The body of every 5xx whose cause is not the client's to know. */
const INTERNAL_ERROR = errorBody('internal', 'internal error');

/**
 * The response to an error, the same from a handler's chain and from the
 * local gateway: an HttpError under 500 as {"code", "error", "issues"} with
 * its status and headers; a 5xx HttpError with its status and headers but the
 * generic body; anything else as a generic 500. Never a message that was not
 * meant for the client.
 * @example httpErrorResponse(notFound('no such ban')) // 404 {"code":"not_found","error":"no such ban"}
 */
export function httpErrorResponse(error: unknown): HttpResponse {
  if (!(error instanceof HttpError)) return json(500, INTERNAL_ERROR);
  return json(
    error.statusCode,
    error.expose
      ? errorBody(error.code, error.message, error.issues)
      : INTERNAL_ERROR,
    error.headers,
  );
}
