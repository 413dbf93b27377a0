/** The dispatcher client library: import from here, not from the files behind it. */

export type { Agent } from './agents.js';
export type {
  BlocklistClient,
  BlocklistClientState,
  BlocklistStatus,
  Decision,
  RefreshError,
  RefreshErrorKind,
  RefreshResult,
} from './blocklist-client.js';
export { createBlocklistClient } from './blocklist-client.js';
export type {
  Attempt,
  AttemptOutcome,
  DispatchJob,
  DispatchOptions,
  DispatchResult,
  DispatchSelection,
  DispatchStop,
  LandedState,
} from './dispatch.js';
export { CANCEL_TIMEOUT_MS, DISPATCH_DEFAULTS, dispatch } from './dispatch.js';
export type {
  BlocklistClientOptions,
  DispatcherLogger,
  FetchLike,
} from './options.js';
export {
  BLOCKLIST_CLIENT_DEFAULTS,
  BlocklistClientOptionsError,
} from './options.js';
export type { Assessment, BlockedCandidate, Candidate } from './selection.js';
export type { BlocklistSnapshot } from './snapshot.js';
export { parseSnapshot } from './snapshot.js';
