/**
 * The seams between the logic and its storage: what the handlers and the
 * aggregator may ask of each store, declared here rather than inferred from
 * the factories, so a store is replaced (a fake in a test, another table
 * design) by writing an object of this type. The factories in this folder
 * are annotated with these types; nothing here imports the AWS SDK.
 */
import type { Ban } from '../core/blocklist.js';
import type { AuditEvent } from '../core/events.js';
import type { MinuteTally } from '../core/tally.js';
import type { Role } from '../routes.js';
import type {
  AggregatorMemory,
  AggregatorState,
  AggregatorStateUpdate,
} from './state-store.js';

export type { AggregatorMemory, AggregatorState, AggregatorStateUpdate };

/** The bans (one per IP) and the ban list's version. Times are epoch ms. */
export type BanStore = {
  /** The IP's ban item, in force or not (read eventually consistent). */
  getBan(ip: string): Promise<Ban | undefined>;
  /** Bans in force at `now` (expired-but-not-yet-deleted items are filtered out). */
  listBans(now: number): Promise<Ban[]>;
  /** Bans in force at `now`, read strongly consistent (after a version change). */
  listBansConsistent(now: number): Promise<Ban[]>;
  /** A number every ban change raises (0 before the first), and the end of a change window while one is open. */
  getVersion(): Promise<BanListVersion>;
  /**
   * Many IPs' ban changes, each written in one transaction with its `also`
   * items (its offense, its events), inside one change window. Answers, per
   * change, whether it took effect.
   */
  changeBans(changes: readonly BanChange[], now: number): Promise<boolean[]>;
  /** A ban whatever was there; answers the ban in force it replaced. */
  putBan(ban: Ban, now: number): Promise<{ replaced: Ban | undefined }>;
  /** Lifts the ban in force at `now` (an operator's unban), answering it. */
  liftBan(ip: string, lift: BanLift): Promise<Ban | undefined>;
};

/**
 * The ban list's version. While a batch of ban changes is being written the
 * list may change without the version moving until `changingUntil` (epoch
 * ms): a reader must not keep a list read before then.
 */
export type BanListVersion = { version: number; changingUntil?: number };

/**
 * One IP's ban change in a batch: a ban, unless one is in force at `now`; or
 * the lift of the ban in force that ends at `until` (no other). `also`: writes
 * that go in the same transaction (the offense, the audit events).
 */
export type BanChange =
  | { type: 'ban'; ban: Ban; also?: readonly TransactionItem[] }
  | {
      type: 'lift';
      ip: string;
      until: number;
      also?: readonly TransactionItem[];
    };

/** When a lift happens. */
export type BanLift = { now: number };

/** Which events to list: since `since` (epoch ms), newest first, at most `limit`. */
export type EventQuery = {
  ip?: string;
  since: number;
  limit: number;
  now: number;
};

/** The audit trail, by day and by IP. */
export type EventStore = {
  putEvents(events: readonly AuditEvent[]): Promise<void>;
  /** The writes that record `event`, as items of another store's transaction (a ban with its event). */
  eventItems(event: AuditEvent): TransactionItem[];
  listEvents(query: EventQuery): Promise<AuditEvent[]>;
};

/** A machine's reporter tokens issued at or before `before` (epoch ms) are refused. */
export type Revocation = { ip: string; before: number; actor: string };

/** Revoked per-machine reporter tokens. */
export type RevocationStore = {
  revoke(revocation: Revocation): Promise<void>;
  /** Every revocation: IP → `before`. */
  listRevocations(): Promise<Map<string, number>>;
};

/** What a batchId stands for: its content, and when it first arrived. */
export type BatchClaim = {
  scope: string;
  batchId: string;
  digest: string;
  receivedAt: number;
};

export type BatchClaimResult =
  | { status: 'first' | 'repeat'; receivedAt: number }
  | { status: 'conflict' };

/** Which batchIds were posted, with what content and when. */
export type BatchStore = {
  claim(batch: BatchClaim): Promise<BatchClaimResult>;
};

/** Heartbeat rows: pre-combined counts per (minute, ip, write). */
export type HeartbeatStore = {
  /** `writeId` makes a retried batch overwrite its own rows. */
  addTallies(
    tallies: readonly MinuteTally[],
    write: { writeId: string },
  ): Promise<void>;
  /**
   * Every row of one minute (epoch minute); `onRows` is given each page's
   * rows as they arrive (the same row objects the answer holds). With
   * `keep`, each row is offered to it once, as its page arrives, and only the
   * rows it keeps are held, handed over and answered (the others are dropped
   * there, so `keep` may also fold what it drops); a store may answer more.
   */
  readMinute(
    minute: number,
    onRows?: (rows: readonly MinuteTally[]) => void,
    keep?: (row: MinuteTally) => boolean,
  ): Promise<MinuteTally[]>;
  /** Names to give origins that rows read later key by id only. */
  rememberOrigins(names: Iterable<string>): void;
  /** The rows of the given IPs in the given minutes. */
  readIpMinutes(
    ips: readonly string[],
    minutes: readonly number[],
  ): Promise<MinuteTally[]>;
};

/** The aggregator's own items: its state and the IPs' ban history. */
export type StateStore = {
  /** The whole state: the fleet view with the rest (GET /v1/fleet). */
  getAggregatorState(options: {
    consistent: boolean;
    fleetView?: true;
  }): Promise<AggregatorState | undefined>;
  /** The state without the fleet view, which is then neither read nor parsed (the aggregator). */
  getAggregatorState(options: {
    consistent: boolean;
    fleetView: false;
  }): Promise<AggregatorMemory | undefined>;
  /**
   * Only moves forward; answers whether this write won. Values the store
   * answered or was given are recognised by identity: not changed in place.
   * With `after` (other writes the state must follow, e.g. the minute's
   * bans), the state's pieces are written meanwhile and the progress item
   * only once `after` is done; if `after` fails, so does this, and progress
   * stays where it was.
   */
  advanceAggregatorState(
    state: AggregatorStateUpdate,
    options?: { after?: Promise<unknown> },
  ): Promise<{ applied: boolean }>;
  /** Moves progress past an undecidable minute, keeping the last state. */
  skipMinute(minute: number): Promise<{ applied: boolean }>;
  /** Start times (epoch ms) of each IP's automatic bans in the last 24 h. */
  getOffenses(ips: readonly string[]): Promise<Record<string, number[]>>;
  /** Adds a ban start to the IP's history, as an item of the ban's own transaction. */
  offenseItem(ip: string, start: number): TransactionItem;
};

/**
 * One write of a DynamoDB transaction, built by the store that owns its key,
 * so another store can write it in the same transaction (an offense with its ban).
 */
export type TransactionItem = Record<string, unknown>;

/**
 * Reads named secrets (role tokens, reporter signing keys): name → value, a
 * value being one token or key, or several comma-separated during a rotation.
 */
export type TokenSecrets = <Name extends string = Role>(options: {
  region: string;
  secretArns: Partial<Record<Name, string>>;
}) => Promise<Partial<Record<Name, string>>>;
