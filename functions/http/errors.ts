import type { StatusCenterErrorCode } from '#contract/errors';
import { defaultErrorCode } from '#contract/errors';
import type { InputIssue } from '#contract/validation';

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
