/** DynamoDB could not take the write in time; the request may be retried as is. */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}
