import type { InputIssue } from '../core/validation.js';

/**
 * The one error a handler throws for a client-visible outcome. Under 500 the
 * message is shown to the client (expose); 5xx bodies are always generic.
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly expose: boolean;
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: InputIssue[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.expose = statusCode < 500;
  }
}

export const badRequest = (message: string, issues?: InputIssue[]) =>
  new HttpError(400, message, issues);
export const notFound = (message: string) => new HttpError(404, message);
