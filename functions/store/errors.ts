/** DynamoDB could not take the write in time; the request may be retried as is. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** DynamoDB's names for "busy, try again": the API answers those with 503, not 500. */
const RETRYABLE_STORE_ERRORS = new Set([
  'StoreUnavailableError',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
]);

export function isRetryableStoreError(error: unknown): boolean {
  return error instanceof Error && RETRYABLE_STORE_ERRORS.has(error.name);
}
