/**
 * The agent's retries (relay restarts, report re-sends) use relaywatch's one
 * backoff rule, kept in the pure core beside the store's use of it.
 */
export { backoffDelay } from '#contract/backoff';
