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
  'RequestTimeout',
  'RequestTimeoutException',
  // A single write that met a transaction on the same item.
  'TransactionConflictException',
]);

/**
 * Why DynamoDB cancels a transaction that may go through when sent again
 * unchanged: throttled, or another transaction was writing one of its items.
 */
const RETRYABLE_CANCELLATIONS = new Set([
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'TransactionConflict',
]);

/** The reasons a cancelled transaction gives, "None" left out. */
function cancellationCodes(error: Error): string[] {
  if (error.name !== 'TransactionCanceledException') return [];
  return (
    (error as { CancellationReasons?: Array<{ Code?: string }> })
      .CancellationReasons ?? []
  ).flatMap((reason) =>
    reason.Code && reason.Code !== 'None' ? [reason.Code] : [],
  );
}

/** A cancelled transaction whose every reason is in `codes`. */
function cancelledOnlyFor(error: Error, codes: ReadonlySet<string>): boolean {
  const reasons = cancellationCodes(error);
  return reasons.length > 0 && reasons.every((code) => codes.has(code));
}

const CONFLICT = new Set(['TransactionConflict']);

/**
 * A write that failed only because another transaction was writing one of
 * its items at the same moment: sent again, it goes through.
 */
export function isWriteConflict(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'TransactionConflictException' ||
      cancelledOnlyFor(error, CONFLICT))
  );
}

/**
 * Node's codes for a connection that failed, timed out or broke: DynamoDB (or
 * the way to it) is unreachable for now, which a retry may fix.
 */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Whether a request failing with `error` may succeed when retried unchanged (503 + retry-after). */
export function isRetryableStoreError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (RETRYABLE_STORE_ERRORS.has(error.name)) return true;
  if (cancelledOnlyFor(error, RETRYABLE_CANCELLATIONS)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  // Dual-stack connects fail with one error per address.
  return (
    error instanceof AggregateError && error.errors.some(isRetryableStoreError)
  );
}

/**
 * A stored item does not have the shape this code reads (written by hand, by
 * a newer version, or damaged). Names the item's key and the first field that
 * is wrong, so the item can be found and mended; never retryable.
 */
export class StoredItemError extends Error {
  override name = 'StoredItemError';
  constructor(
    readonly key: { pk: string; sk: string },
    readonly field: string,
    problem: string,
  ) {
    super(
      `stored item ${key.pk} / ${key.sk} is unreadable: ${field}: ${problem}`,
    );
  }
}
