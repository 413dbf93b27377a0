import type { Ban } from './core/blocklist.js';
import { isBanActive } from './core/blocklist.js';
import type { Config } from './core/config.js';
import type { AuditEvent } from './core/events.js';
import type { Leases } from './core/leases.js';
import {
  freshGrace,
  LeaseMerge,
  mergeLeases,
  quietIps,
} from './core/leases.js';
import { getOrInsert } from './core/maps.js';
import {
  bucketId,
  MINUTE_MS,
  minuteClosesAt,
  minuteOf,
  minuteRange,
  minutesToAggregate,
  observedAfter,
  trailingWindow,
} from './core/minutes.js';
import type {
  Decision,
  PolicyInput,
  PolicyResult,
  Verdict,
} from './core/policy.js';
import { decideMinute } from './core/policy.js';
import type { MinuteTally } from './core/tally.js';
import { NewestReports, WindowTally } from './core/tally.js';
import type { Logger } from './log.js';
import {
  minuteGauges,
  writeAggregationFailure,
  writeDecisionMetrics,
} from './metrics.js';
import { isRetryableStoreError } from './store/errors.js';
import type {
  AggregatorMemory,
  AggregatorState,
  AggregatorStateUpdate,
  BanChange,
  BanStore,
  EventStore,
  HeartbeatStore,
  StateStore,
  TransactionItem,
} from './store/ports.js';

export type AggregatorOptions = {
  config: Config;
  heartbeats: HeartbeatStore;
  bans: BanStore;
  events: EventStore;
  state: StateStore;
  log: Logger;
  /** Wall clock, only to know how long to wait for the next pass. */
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
};

export type AggregationSummary = {
  /** Closed minutes decided (each once, by the first pass after it closed). */
  minutes: string[];
  /** Closed minutes that could not be decided and were moved past (also in `minutes`). */
  failedMinutes: string[];
  /** Times of the live passes made. */
  passes: string[];
  waitedMs: number;
  /** What this run applied (and recorded), including in a pass another run also made. */
  decisions: Array<{
    minute: string;
    at: string;
    type: Decision['type'];
    ip?: string;
    origin?: string;
  }>;
  /** Bans and releases this run decided but another writer had already made (another run, a manual ban). */
  lostRaces: Array<{
    minute: string;
    at: string;
    type: Decision['type'];
    ip?: string;
  }>;
  /** Set when another run advanced the state first: this run stopped there and left the rest to it. */
  supersededAt?: { minute: string } | { at: string };
};

const SILENT_MEMORY_MINUTES = 1440;
/** Offense reads a closing fold keeps in flight ahead of its decision (readOffensesAhead). */
const OFFENSE_READS_AHEAD = 4;

function toEvent(
  verdict: Verdict,
  minute: number,
  at: number,
  enforced: boolean,
): AuditEvent {
  return {
    at: new Date(at).toISOString(),
    minute: bucketId(minute),
    enforced,
    ...verdict.event,
  };
}

/**
 * One scheduled aggregation run: passes every RELAYWATCH_PASS_SECONDS until
 * its minute is over (or the deadline). Each pass first decides every minute
 * that has closed and is not decided yet (up to the catch-up bound), as a
 * whole minute; then it decides live, at the pass's time, over the trailing
 * window (the reports of the last RELAYWATCH_WINDOW_MINUTES, the open minute
 * included), so evidence becomes a ban within a pass, and silence is judged.
 * Results depend on the event time, never on when the run happens: every ban
 * is a conditional put, events have deterministic keys, and the state only
 * moves forward (minute, then pass time).
 */
export function createAggregator(options: AggregatorOptions) {
  const { config, heartbeats, bans, events, state, log } = options;
  const clock = options.clock ?? Date.now;
  const sleep =
    options.sleep ??
    ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const graceMs = config.graceSeconds * 1000;
  const passMs = config.passSeconds * 1000;
  const windowMs = config.windowMinutes * MINUTE_MS;
  /** A pass at `at` judges no row observed before `at - keepMs`: its trailing window and its release window end there. */
  const keepMs = Math.max(windowMs, config.releaseMinutes * MINUTE_MS);

  /**
   * What this run wrote itself. Ban and offense reads are eventually
   * consistent, so a run catching up on several minutes overlays its own
   * writes: minute m+1 must see the ban and the offense of minute m.
   */
  type OwnWrites = {
    bans: Map<string, Ban>;
    lifted: Map<string, number>;
    offenses: Map<string, number[]>;
  };

  function bansWithOwnWrites(read: readonly Ban[], own: OwnWrites): Ban[] {
    const byIp = new Map(read.map((ban) => [ban.ip, ban] as const));
    for (const [ip, until] of own.lifted)
      if (byIp.get(ip)?.until === until) byIp.delete(ip);
    for (const [ip, ban] of own.bans) byIp.set(ip, ban);
    return [...byIp.values()];
  }

  function offensesWithOwnWrites(
    read: Readonly<Record<string, number[]>>,
    own: OwnWrites,
  ): Record<string, number[]> {
    const offenses: Record<string, number[]> = { ...read };
    for (const [ip, starts] of own.offenses)
      offenses[ip] = [...new Set([...(offenses[ip] ?? []), ...starts])].sort(
        (a, b) => a - b,
      );
    return offenses;
  }

  /**
   * The last window folded, with its rows: a pass's closing decision and its
   * live decision often judge the same rows (the minute just closed), and
   * fold them once.
   */
  let folded: { rows: readonly MinuteTally[]; tally: WindowTally } | undefined;
  function tallyOf(
    rows: readonly MinuteTally[],
    foldedWhileRead?: WindowTally,
  ): WindowTally {
    if (
      folded?.rows.length === rows.length &&
      folded.rows.every((row, i) => row === rows[i])
    )
      return folded.tally;
    // The fold before is not kept while this one is made: at 100,000 IPs each is ~100 MB.
    folded = undefined;
    const tally = foldedWhileRead ?? WindowTally.of(rows, { graceMs });
    folded = { rows, tally };
    return tally;
  }

  /**
   * Closed minutes' rows, each read once per run, and, while a closing
   * window is one minute (the default), that minute's fold made page by
   * page as its rows arrive: folding overlaps the reads instead of
   * following them.
   */
  type ClosedMinute = { rows: Promise<MinuteTally[]>; tally?: WindowTally };
  let closedMinutes = new Map<number, ClosedMinute>();
  /** The run's first pass's read-ahead of offenses (readOffensesAhead), fed by the closing folds. */
  let offensesAhead: OffensesAhead | undefined;
  /** Pairs the last closing fold held: the next one starts its arena that big (kept between invocations). */
  let lastFoldPairs = 0;
  function readClosedMinute(minute: number): ClosedMinute {
    return getOrInsert(closedMinutes, minute, () => {
      if (config.windowMinutes !== 1)
        return { rows: heartbeats.readMinute(minute) };
      const tally = new WindowTally({ graceMs, pairsHint: lastFoldPairs });
      // A page is folded on the next turn of the event loop, once the request
      // for the page after it has gone out; the rest when the read ends.
      const pending: (readonly MinuteTally[])[] = [];
      let scheduled = false;
      let failingSeen = 0;
      const fold = () => {
        scheduled = false;
        for (const page of pending.splice(0))
          for (const row of page) tally.add(row);
        if (tally.failingCount > failingSeen) {
          offensesAhead?.suspect(tally.failingIpsFrom(failingSeen), minute);
          failingSeen = tally.failingCount;
        }
      };
      const closed: ClosedMinute = {
        rows: heartbeats
          .readMinute(minute, (page) => {
            pending.push(page);
            if (!scheduled) {
              scheduled = true;
              setImmediate(fold);
            }
          })
          .then((all) => {
            fold();
            // It stands in for folding the rows after the read only if it
            // holds every row answered. (An origin a later page named is
            // merged with its key by id when the fold is read: WindowTally.)
            if (tally.rows === all.length) closed.tally = tally;
            lastFoldPairs = tally.pairCount;
            return all;
          }),
      };
      return closed;
    });
  }

  /**
   * Closed minutes already decided, as the run's passes after their closing
   * use them: only the rows observed after `from`, for a pass at `from +
   * keepMs` or later judges no older row. A pass late in a run thus holds
   * about a minute of rows (the rest of the closed minute and the open one),
   * not both minutes whole.
   */
  type DecidedMinute = { rows: Promise<MinuteTally[]>; from: number };
  let decidedMinutes = new Map<number, DecidedMinute>();
  /** The newest minute this instance saw decided (kept between invocations): a run's first read of it is for its windows only. */
  let decidedUpTo = Number.NEGATIVE_INFINITY;
  function readDecidedMinute(
    minute: number,
    at: number,
  ): Promise<MinuteTally[]> {
    // A closing window of several minutes judges the ones before its own whole.
    if (minute > decidedUpTo + 1 - config.windowMinutes)
      return readClosedMinute(minute).rows;
    const from = at - keepMs;
    const known = decidedMinutes.get(minute);
    const whole = closedMinutes.get(minute);
    closedMinutes.delete(minute);
    if (known && known.from >= from) return known.rows;
    const keep = (row: MinuteTally) => observedAfter(row, from);
    const held = known?.rows ?? whole?.rows;
    const rows = held
      ? held.then((all) => all.filter(keep))
      : heartbeats.readMinute(minute, undefined, keep);
    decidedMinutes.set(minute, { rows, from });
    return rows;
  }

  /**
   * `minute` is decided (or passed over) by a pass at `at`: from now on it
   * is held as later passes use it. Only the last minute a pass closes may
   * judge the same rows as its live decision: an earlier one's fold is let
   * go (a run catching up on minutes would otherwise hold two at a time).
   * So is every minute held whole that no later closing window takes in: a
   * window of several minutes keeps its minutes whole for the next one, and
   * a run catching up would otherwise hold every minute it decided.
   */
  function settled(minute: number, at: number, lastToClose: boolean) {
    decidedUpTo = Math.max(decidedUpTo, minute);
    const leftWindows = decidedUpTo + 1 - config.windowMinutes;
    // A read that failed has failed its decision already.
    for (const held of closedMinutes.keys())
      if (held < minute && held <= leftWindows)
        readDecidedMinute(held, at).catch(() => undefined);
    readDecidedMinute(minute, at).catch(() => undefined);
    if (!lastToClose) folded = undefined;
  }

  /**
   * Each IP's newest report after each minute, and the leases, over the rows
   * of `minutes`, each row folded in as it is read and let go: what a run
   * catching up needs of the live window while it decides the minutes
   * before it and in it (reading the window whole while it still decides
   * them would hold its minutes beside the ones each decision reads).
   */
  async function laterReports(
    minutes: readonly number[],
    leasesBefore: Leases | undefined,
    at: number,
  ) {
    const byMinute = new Map(
      minutes.map((minute) => [minute, new NewestReports()]),
    );
    const merge = new LeaseMerge(leasesBefore, at, config);
    await Promise.all(
      minutes.map(async (minute) => {
        const newest = byMinute.get(minute) as NewestReports;
        const fold = (row: MinuteTally) => {
          newest.add(row);
          merge.add(row);
        };
        let offered = 0;
        const answered = await heartbeats.readMinute(
          minute,
          undefined,
          (row) => {
            offered++;
            fold(row);
            return false;
          },
        );
        // A store that does not offer rows to `keep` answers them.
        if (!offered) for (const row of answered) fold(row);
      }),
    );
    const after = new Map<number, NewestReports>();
    return {
      /** Each IP's newest report among the rows of the minutes after `minute`. */
      newestAfter: (minute: number) => {
        const first = minutes.find((m) => m > minute) ?? Infinity;
        return getOrInsert(after, first, () =>
          NewestReports.merged(
            minutes.flatMap((m) =>
              m >= first ? [byMinute.get(m) as NewestReports] : [],
            ),
          ),
        );
      },
      leases: merge.leases(),
    };
  }

  type OffensesAhead = {
    /** IPs the fold of closing `minute` found failing. */
    suspect(ips: readonly string[], minute: number): void;
    /**
     * The reads that hold those of `ips` read ahead (`taken`; each IP is
     * taken once), and the `rest` to read now. Suspects not read yet are
     * dropped: the caller reads them.
     */
    take(ips: readonly string[]): {
      reads: Promise<Record<string, number[]>>[];
      taken: Set<string>;
      rest: string[];
    };
  };

  /**
   * Reads ahead the offenses a closing decision will ask for: those of the
   * IPs its fold finds failing that are not banned at the minute's close
   * (bansAndOffenses asks for exactly these). They are read while the rest of
   * the minute's rows still arrive, instead of one more round trip after the
   * fold, in the first minute of a failure. Up to OFFENSE_READS_AHEAD reads
   * in flight: each turn of the fold sends the IPs it found, and while the
   * reads lag behind the pages, IPs found meanwhile go together in the next
   * one. A steady minute, whose failing IPs are banned already, reads none.
   */
  function readOffensesAhead(bansListed: Promise<Ban[]>): OffensesAhead {
    const reads = new Map<string, Promise<Record<string, number[]>>>();
    const sent = new Set<string>();
    let queued: Array<{ ip: string; at: number }> = [];
    let banned: Map<string, Ban> | undefined;
    let reading = 0;
    const send = () => {
      if (reading >= OFFENSE_READS_AHEAD || !banned || !queued.length) return;
      const ips: string[] = [];
      for (const { ip, at } of queued) {
        const ban = banned.get(ip);
        if (sent.has(ip) || (ban && isBanActive(ban, at))) continue;
        sent.add(ip);
        ips.push(ip);
      }
      queued = [];
      if (!ips.length) return;
      reading++;
      const read = state.getOffenses(ips);
      for (const ip of ips) reads.set(ip, read);
      // Its failure is the decision's, when it takes the read; a read nobody takes fails quietly.
      read
        .catch(() => undefined)
        .finally(() => {
          reading--;
          send();
        });
    };
    bansListed.then(
      (list) => {
        banned = new Map(list.map((ban) => [ban.ip, ban]));
        send();
      },
      () => undefined,
    );
    return {
      suspect(ips, minute) {
        const at = minuteClosesAt(minute, { graceMs });
        for (const ip of ips) queued.push({ ip, at });
        send();
      },
      take(ips) {
        const taken = new Set<string>();
        const held = new Set<Promise<Record<string, number[]>>>();
        const rest: string[] = [];
        for (const ip of ips) {
          const read = reads.get(ip);
          if (read) {
            reads.delete(ip);
            taken.add(ip);
            held.add(read);
          } else {
            sent.add(ip);
            rest.push(ip);
          }
        }
        return { reads: [...held], taken, rest };
      },
    };
  }

  /**
   * What a pass read of bans and offenses: its decisions (the minutes it
   * closes, then the live one) read the ban list once and each IP's offenses
   * once; this run's own writes are laid over every time.
   */
  type PassReads = {
    /** As of the pass's first decision: the policy judges them at its own time (isBanActive). */
    bans: Promise<Ban[]>;
    offenses: Record<string, number[]>;
    asked: Set<string>;
  };
  const newPassReads = (bans: Promise<Ban[]>): PassReads => {
    // Awaited by the pass's decisions; a failure must not go unhandled before them.
    bans.catch(() => undefined);
    return { bans, offenses: {}, asked: new Set() };
  };

  /**
   * Bans in force at `now` and the offenses of the IPs that may be judged,
   * with this run's own writes laid over. An IP banned at `now` cannot be
   * banned again, so its offenses are not read: a steady minute, whose
   * failing IPs are all banned already, reads none.
   */
  async function bansAndOffenses(
    now: number,
    window: WindowTally,
    quiet: readonly string[],
    own: OwnWrites,
    reads: PassReads,
  ) {
    const bansNow = bansWithOwnWrites(await reads.bans, own);
    const banned = new Set(
      bansNow.filter((ban) => isBanActive(ban, now)).map((ban) => ban.ip),
    );
    const unasked = [...new Set([...window.failingIps(), ...quiet])].filter(
      (ip) => !reads.asked.has(ip) && !banned.has(ip),
    );
    const ahead = offensesAhead?.take(unasked);
    const [offensesRead, ...readAhead] = await Promise.all([
      state.getOffenses(ahead?.rest ?? unasked),
      ...(ahead?.reads ?? []),
    ]);
    for (const ip of unasked) reads.asked.add(ip);
    Object.assign(reads.offenses, offensesRead);
    for (const read of readAhead)
      for (const [ip, starts] of Object.entries(read))
        if (ahead?.taken.has(ip)) reads.offenses[ip] = starts;
    return {
      bans: bansNow,
      offenses: offensesWithOwnWrites(reads.offenses, own),
    };
  }

  /**
   * Rows for early release (probe history of the release minutes): the rows
   * already in hand, plus, for the minutes not in hand, the own rows of the
   * banned IPs that may be released, not every IP's rows of those minutes.
   */
  async function recentRows(
    minute: number,
    now: number,
    inHand: { minutes: readonly number[]; rows: readonly MinuteTally[] },
    bansSeen: readonly Ban[],
  ) {
    // The release window is releaseMinutes of time ending now, (now - releaseMinutes, now]; a row
    // counts when it was observed inside it, and a row is observed within its own minute (old rows
    // at their minute's end), so minutes before the one holding the window's start add nothing.
    // A closing decision's `now` is in the next minute: its window starts in `minute + 1 - releaseMinutes`.
    const first = minuteOf(now - config.releaseMinutes * MINUTE_MS);
    const rows = inHand.rows.filter(
      (row) => row.minute >= first && row.minute <= minute,
    );
    const missing = minuteRange(first, minute).filter(
      (m) => !inHand.minutes.includes(m),
    );
    if (!missing.length) return rows;
    const releasable = bansSeen
      .filter(
        (ban) =>
          !ban.manual &&
          isBanActive(ban, now) &&
          ban.since <= now - config.releaseMinutes * MINUTE_MS,
      )
      .map((ban) => ban.ip);
    if (!releasable.length) return rows;
    return [...rows, ...(await heartbeats.readIpMinutes(releasable, missing))];
  }

  /**
   * The ban change a decision makes, written with what must go with it: a
   * ban's offense, and the decision's audit event items when it is recorded;
   * undefined for a decision that changes no ban.
   */
  function banChangeOf(
    decision: Decision,
    eventItems: readonly TransactionItem[],
  ): BanChange | undefined {
    if (decision.type === 'ban' || decision.type === 'escalation')
      return {
        type: 'ban',
        ban: decision.ban,
        also: [
          state.offenseItem(decision.ip, decision.ban.since),
          ...eventItems,
        ],
      };
    if (decision.type === 'release')
      return {
        type: 'lift',
        ip: decision.ip,
        until: decision.ban.until,
        also: eventItems,
      };
    return undefined;
  }

  /** Lays a ban change that took effect over what this run reads back (see OwnWrites). */
  function noteOwnWrite(decision: Decision, own: OwnWrites) {
    if (decision.type === 'ban' || decision.type === 'escalation') {
      own.bans.set(decision.ip, decision.ban);
      own.lifted.delete(decision.ip);
      own.offenses.set(decision.ip, [
        ...(own.offenses.get(decision.ip) ?? []),
        decision.ban.since,
      ]);
    } else if (decision.type === 'release') {
      own.bans.delete(decision.ip);
      own.lifted.set(decision.ip, decision.ban.until);
    }
  }

  /**
   * Applies and records verdicts; `record` picks the ones a pass writes as
   * events. Bans and releases are one batch of ban changes, each written
   * with its offense and its event (banChangeOf), so a crash cannot keep a
   * ban without them; other verdicts are only recorded.
   */
  async function take(
    result: PolicyResult,
    at: { minute: number; now: number },
    own: OwnWrites,
    record: (verdict: Verdict) => boolean,
  ): Promise<{ taken: Verdict[]; lost: Verdict[] }> {
    const { verdicts } = result;
    const recorded = verdicts.map(record);
    const eventOf = (verdict: Verdict) =>
      toEvent(verdict, at.minute, at.now, !config.dryRun);
    const applied = verdicts.map(() => true);
    const inBatch = verdicts.map(() => false);
    if (!config.dryRun) {
      const changes = verdicts.flatMap((verdict, index) => {
        const change = banChangeOf(
          verdict.decision,
          recorded[index] ? events.eventItems(eventOf(verdict)) : [],
        );
        return change ? [{ index, change }] : [];
      });
      const took = await bans.changeBans(
        changes.map(({ change }) => change),
        at.now,
      );
      changes.forEach(({ index }, n) => {
        inBatch[index] = true;
        applied[index] = took[n] ?? false;
        if (applied[index])
          noteOwnWrite((verdicts[index] as Verdict).decision, own);
      });
    }
    // A ban or release that lost a race (another run, a manual ban placed
    // meanwhile) is not recorded: the audit trail only says what happened.
    const lost = verdicts.filter((_, i) => !applied[i]);
    const taken = verdicts.filter((_, i) => applied[i] && recorded[i]);
    // Bans and releases were recorded in their own transactions.
    await events.putEvents(
      verdicts
        .filter((_, i) => applied[i] && recorded[i] && !inBatch[i])
        .map(eventOf),
    );
    return { taken, lost };
  }

  function summarise(
    summary: AggregationSummary,
    minute: number,
    now: number,
    outcome: { taken: readonly Verdict[]; lost: readonly Verdict[] },
  ) {
    for (const { decision: d } of outcome.lost) {
      summary.lostRaces.push({
        minute: bucketId(minute),
        at: new Date(now).toISOString(),
        type: d.type,
        ...('ip' in d ? { ip: d.ip } : {}),
      });
    }
    for (const { decision: d } of outcome.taken) {
      summary.decisions.push({
        minute: bucketId(minute),
        at: new Date(now).toISOString(),
        type: d.type,
        ...('ip' in d ? { ip: d.ip } : {}),
        ...('origin' in d ? { origin: d.origin } : {}),
      });
    }
  }

  /** The state after closing `minute`: the fleet view of that minute, the rest carried forward. */
  function stateAfterMinute(
    minute: number,
    result: PolicyResult,
    previous: AggregatorMemory | undefined,
    leases: Leases,
  ): AggregatorState {
    const lastSeen: Record<string, number> = {};
    for (const [ip, seen] of Object.entries(previous?.lastSeen ?? {})) {
      if (seen > minute - SILENT_MEMORY_MINUTES) lastSeen[ip] = seen;
    }
    for (const evidence of result.reporting)
      lastSeen[evidence.ip] = Math.max(lastSeen[evidence.ip] ?? minute, minute);
    return {
      lastMinute: minute,
      ...(previous?.lastPassAt === undefined
        ? {}
        : { lastPassAt: previous.lastPassAt }),
      reporting: result.reporting,
      lastSeen,
      outages: result.outages,
      fleetWide: result.fleetWide,
      fleetSilent: previous?.fleetSilent ?? false,
      capInForce: result.capInForce,
      capped: result.decisions.flatMap((d) =>
        d.type === 'capped' ? [d.ip] : [],
      ),
      leases: { ...leases },
    };
  }

  return {
    /**
     * Runs the passes of the invocation EventBridge fired at `eventTime`.
     * `deadline` (epoch ms): no pass starts after it (the Lambda's timeout).
     */
    async run(
      eventTime: number,
      options: { deadline?: number } = {},
    ): Promise<AggregationSummary> {
      try {
        return await runPasses(eventTime, options);
      } finally {
        // The fold is a minute of the fleet: not kept between invocations.
        folded = undefined;
        closedMinutes = new Map();
        decidedMinutes = new Map();
        offensesAhead = undefined;
      }
    },
  };

  /**
   * Minutes missed beyond RELAYWATCH_MAX_CATCHUP_MINUTES are never decided:
   * said with an error log, the AggregationFailures metric and an
   * aggregation_failed event (its key is the pass's time: a repeated pass
   * writes it once).
   */
  async function recordSkipped(first: number, last: number, at: number) {
    // A stack idle for days skips thousands of minutes: the range, not the list.
    const skipped = {
      count: last - first + 1,
      from: bucketId(first),
      to: bucketId(last),
    };
    log.error('minutes missed beyond the catch-up bound are left undecided', {
      ...skipped,
      maxCatchUpMinutes: config.maxCatchUpMinutes,
    });
    writeAggregationFailure(log, 'minutes_skipped');
    await events.putEvents([
      {
        type: 'aggregation_failed',
        at: new Date(at).toISOString(),
        minute: skipped.from,
        enforced: false,
        rule: 'aggregator',
        evidence: {
          error: `minutes missed beyond RELAYWATCH_MAX_CATCHUP_MINUTES (${config.maxCatchUpMinutes}) left undecided`,
          skipped,
        },
      },
    ]);
  }

  async function runPasses(
    eventTime: number,
    options: { deadline?: number },
  ): Promise<AggregationSummary> {
    const summary: AggregationSummary = {
      minutes: [],
      failedMinutes: [],
      passes: [],
      waitedMs: 0,
      decisions: [],
      lostRaces: [],
    };
    // Closed minutes never change (ingest refuses their heartbeats), so one
    // read serves every pass: whole while the minute is to be decided
    // (`closing`, when the pass knows it; else unless this instance saw it
    // decided), then only what later passes can judge.
    const readerAt =
      (
        at: number,
        fresh: Map<number, Promise<MinuteTally[]>>,
        closing?: readonly number[],
      ) =>
      (minute: number) => {
        if (minuteClosesAt(minute, { graceMs }) > at)
          return getOrInsert(fresh, minute, () =>
            heartbeats.readMinute(minute),
          );
        const toDecide = closing
          ? closing.includes(minute)
          : minute > decidedUpTo;
        return toDecide
          ? readClosedMinute(minute).rows
          : readDecidedMinute(minute, at);
      };
    const liveMinutesAt = (at: number) =>
      minuteRange(minuteOf(at - windowMs), minuteOf(at));
    // The first pass's rows are read while the state is (neither needs the
    // other), unless that pass must first wait for its time.
    const firstFresh = new Map<number, Promise<MinuteTally[]>>();
    // So is its ban list: as of the earliest minute it may close (the
    // catch-up bound), cut to its first decision's time once the state says
    // which minute that is.
    const earliestClose = minuteClosesAt(
      minuteOf(eventTime) - config.maxCatchUpMinutes,
      { graceMs },
    );
    let firstBans: Promise<Ban[]> | undefined;
    if (!(config.waitForGrace && eventTime > clock())) {
      firstBans = bans.listBans(earliestClose);
      firstBans.catch(() => undefined);
      offensesAhead = readOffensesAhead(firstBans);
      // Awaited by the pass; a failure here must not go unhandled if the state read fails first.
      // Not while this instance may be catching up (a cold one may): that pass reads them after the minutes before them.
      const live = liveMinutesAt(eventTime);
      if (decidedUpTo >= (live[0] as number) - 1)
        for (const minute of live)
          readerAt(eventTime, firstFresh)(minute).catch(() => undefined);
    }

    // The state as last recorded; its fleet view is kept as stored (never read) until a closing minute makes a new one.
    let previous: AggregatorStateUpdate | undefined;
    try {
      const read = await state.getAggregatorState({
        consistent: true,
        fleetView: false,
      });
      previous = read && { ...read, reporting: 'unchanged' };
      if (read) decidedUpTo = Math.max(decidedUpTo, read.lastMinute);
    } catch (error) {
      if (isRetryableStoreError(error)) throw error;
      // Unreadable state must not stop detection either: decide the current minute without it.
      log.error('aggregator state unreadable; deciding without it', {
        error,
      });
      writeAggregationFailure(log, 'state_unreadable');
    }
    const own: OwnWrites = {
      bans: new Map(),
      lifted: new Map(),
      offenses: new Map(),
    };
    // In dry run nothing is banned, so a failing IP qualifies again in every
    // pass: its would-be ban is recorded once per run (once a minute).
    const dryRunRecorded = new Set<string>();
    const firstInRun = ({ decision }: Verdict) => {
      if (!config.dryRun || !('ip' in decision)) return true;
      const key = `${decision.type} ${decision.ip}`;
      if (dryRunRecorded.has(key)) return false;
      dryRunRecorded.add(key);
      return true;
    };
    const passes = config.waitForGrace ? Math.ceil(MINUTE_MS / passMs) : 1;

    for (let pass = 0; pass < passes; pass++) {
      const at = eventTime + pass * passMs;
      const wait = at - clock();
      if (wait > 0 && config.waitForGrace) {
        summary.waitedMs += wait;
        await sleep(wait);
      }
      if (options.deadline !== undefined && clock() > options.deadline) break;
      // The last pass's fold judged rows this pass reads afresh: let it go
      // before they are read, not after.
      folded = undefined;
      const toClose = minutesToAggregate({
        eventTime: at,
        lastDone: previous?.lastMinute,
        maxCatchUp: config.maxCatchUpMinutes,
      }).filter((minute) => minuteClosesAt(minute, { graceMs }) <= at);
      if (
        previous &&
        toClose[0] !== undefined &&
        toClose[0] > previous.lastMinute + 1
      )
        await recordSkipped(previous.lastMinute + 1, toClose[0] - 1, at);
      const fresh =
        pass === 0 ? firstFresh : new Map<number, Promise<MinuteTally[]>>();
      const read = readerAt(at, fresh, toClose);
      // The ban list, read while the rows are, as of the pass's first decision.
      const bansAsOf =
        toClose[0] === undefined ? at : minuteClosesAt(toClose[0], { graceMs });
      const reads = newPassReads(
        pass === 0 && firstBans && bansAsOf >= earliestClose
          ? firstBans.then((list) =>
              list.filter((ban) => isBanActive(ban, bansAsOf)),
            )
          : bans.listBans(bansAsOf),
      );

      // Rows name an origin only where it failed; an outage that recovers must still be known by its name.
      heartbeats.rememberOrigins(previous?.outages ?? []);
      // The live window's rows, read first: closing decisions use them for
      // each IP's newest report, and the leases. A run catching up decides
      // its minutes with only a summary of them (laterReports) and reads the
      // window after: holding it whole while each of those minutes is read
      // and folded would hold two minutes of the fleet at once (more with a
      // window of several minutes).
      const liveMinutes = liveMinutesAt(at);
      const firstLive = liveMinutes[0] as number;
      const later =
        toClose[0] !== undefined && toClose[0] < firstLive
          ? await laterReports(liveMinutes, previous?.leases, at)
          : undefined;
      const readLive = async (reader: typeof read) =>
        (await Promise.all(liveMinutes.map(reader))).flat();
      let leases: Leases = later?.leases ?? previous?.leases ?? {};
      let liveRows: MinuteTally[] | undefined;
      if (!later) {
        liveRows = await readLive(read);
        leases = mergeLeases(leases, liveRows, at, config);
      }

      /**
       * What a decision at `now` needs beside its window's rows: the bans and
       * offenses (of `quiet` IPs too), and the banned IPs' recent probe rows.
       */
      const aroundRows = async (
        now: number,
        minute: number,
        windowTally: WindowTally,
        quiet: readonly string[],
        rows: { minutes: readonly number[]; rows: readonly MinuteTally[] },
      ) => {
        const seen = await bansAndOffenses(now, windowTally, quiet, own, reads);
        const recent = await recentRows(minute, now, rows, seen.bans);
        return { seen, recent };
      };

      // 1. Every minute closed by now and not decided yet, each as a whole minute at its close.
      for (const minute of toClose) {
        try {
          const now = minuteClosesAt(minute, { graceMs });
          // The window's rows and their fold are let go with this call: bound
          // in the pass's frame they would outlive it, a minute of the fleet
          // held through every later pass of the run.
          const { result, seen } = await (async () => {
            const windowMinutes = minuteRange(
              minute - config.windowMinutes + 1,
              minute,
            );
            const window = (await Promise.all(windowMinutes.map(read))).flat();
            leases = mergeLeases(leases, window, at, config);
            const windowTally = tallyOf(window, readClosedMinute(minute).tally);
            const { seen, recent } = await aroundRows(
              now,
              minute,
              windowTally,
              [],
              {
                minutes: windowMinutes,
                rows: window,
              },
            );
            const result = decideMinute(
              {
                minute,
                now,
                window,
                windowTally,
                recent,
                latest: liveRows
                  ? NewestReports.of(
                      liveRows.filter((row) => row.minute > minute),
                    )
                  : later?.newestAfter(minute),
                bans: seen.bans,
                offenses: seen.offenses,
                previous: {
                  outages: previous?.outages ?? [],
                  fleetWide: previous?.fleetWide ?? false,
                },
                leases,
                closing: true,
              },
              config,
            );
            return { result, seen };
          })();
          const taking = take(result, { minute, now }, own, firstInRun);
          // The state's pieces are written while the bans are; its progress once they are.
          const next = stateAfterMinute(minute, result, previous, leases);
          const advancing = state.advanceAggregatorState(next, {
            after: taking,
          });
          // Awaited below, once the outcome is summarised; fails with `taking` too.
          advancing.catch(() => undefined);
          const outcome = await taking;
          // What this run wrote stands even if another run advances the state first: summarise before checking.
          summarise(summary, minute, now, outcome);
          if (!(await advancing).applied) {
            summary.supersededAt = { minute: bucketId(minute) };
            log.info(
              'another run already aggregated this minute; stopping here',
              {
                minute: bucketId(minute),
                applied: summary.decisions,
                lostRaces: summary.lostRaces,
              },
            );
            return summary;
          }
          previous = next;
          settled(minute, at, minute === toClose.at(-1));
          summary.minutes.push(bucketId(minute));
          if (result.capInForce) {
            log.warn(
              'ban cap in force: IPs qualified for a ban but were not banned',
              {
                minute: bucketId(minute),
                capped: result.decisions.flatMap((d) =>
                  d.type === 'capped' ? [d.ip] : [],
                ),
              },
            );
          }
          writeDecisionMetrics(log, outcome.taken);
          log.metrics({
            ...minuteGauges(result.metrics),
            BansInForce: seen.bans.length,
            CapInForce: result.capInForce ? 1 : 0,
            FleetSilent: previous?.fleetSilent ? 1 : 0,
            SilentIps: quietIps(leases, at, config).length,
            // How long after its close this minute was decided: a growing lag means the aggregation falls behind.
            AggregationLagSeconds: Math.max(
              0,
              Math.round((clock() - now) / 1000),
            ),
          });
        } catch (error) {
          // Busy or unreachable storage: the next run retries the minute.
          if (isRetryableStoreError(error)) throw error;
          // Anything else would fail the same way on every run and stop
          // detection for good: record it and move past the minute.
          const now = minuteClosesAt(minute, { graceMs });
          log.error('minute could not be decided; moving past it', {
            minute: bucketId(minute),
            error,
          });
          writeAggregationFailure(log, 'minute_failed');
          await events.putEvents([
            {
              type: 'aggregation_failed',
              at: new Date(now).toISOString(),
              minute: bucketId(minute),
              enforced: false,
              rule: 'aggregator',
              evidence: {
                error:
                  error instanceof Error
                    ? `${error.name}: ${error.message}`.slice(0, 500)
                    : String(error),
              },
            },
          ]);
          if (!(await state.skipMinute(minute)).applied) return summary;
          if (previous) previous = { ...previous, lastMinute: minute };
          settled(minute, at, minute === toClose.at(-1));
          summary.minutes.push(bucketId(minute));
          summary.failedMinutes.push(bucketId(minute));
        }
      }
      // The minutes just decided are kept, from here on, as later passes use
      // them; a run that caught up before the window read only its summary.
      if (toClose.length || !liveRows)
        liveRows = await readLive(readerAt(at, fresh, []));

      // 2. The live decision at `at`: the trailing window, silence, releases.
      // Its window and fold are let go with the call, as the closing one's.
      const minute = minuteOf(at);
      const result = await (async () => {
        const window = trailingWindow(liveRows, { now: at, windowMs });
        const windowTally = tallyOf(window);
        const { seen, recent } = await aroundRows(
          at,
          minute,
          windowTally,
          quietIps(leases, at, config),
          { minutes: liveMinutes, rows: liveRows },
        );
        const input: PolicyInput = {
          minute,
          now: at,
          window,
          windowTally,
          recent,
          bans: seen.bans,
          offenses: seen.offenses,
          previous: {
            outages: previous?.outages ?? [],
            fleetWide: previous?.fleetWide ?? false,
            fleetSilent: previous?.fleetSilent ?? false,
            ...(previous?.lastPassAt === undefined
              ? {}
              : { at: previous.lastPassAt }),
          },
          leases,
        };
        return decideMinute(input, config);
      })();
      // Conditions that last (outages, capped, allowlisted) are recorded by the closing decision of each minute.
      const outcome = await take(
        result,
        { minute, now: at },
        own,
        (verdict) => !verdict.perMinute && firstInRun(verdict),
      );
      const { taken } = outcome;
      summarise(summary, minute, at, outcome);
      if (previous?.fleetSilent && !result.fleetSilent)
        leases = freshGrace(leases, at);
      const lastMinute = previous?.lastMinute ?? minute - 2;
      const next: AggregatorStateUpdate = {
        lastMinute,
        reporting: previous?.reporting ?? [],
        lastSeen: previous?.lastSeen ?? {},
        outages: previous?.outages ?? [],
        fleetWide: previous?.fleetWide ?? false,
        capInForce: previous?.capInForce ?? false,
        capped: previous?.capped ?? [],
        ...previous,
        lastPassAt: at,
        fleetSilent: result.fleetSilent,
        leases,
      };
      // The state item is written when something changed and by the run's last
      // pass, not by every pass: what a skipped write held (leases of the open
      // minute) is read again from the rows by the next run.
      const lastPass =
        pass === passes - 1 ||
        clock() + passMs >= eventTime + MINUTE_MS ||
        (options.deadline !== undefined && clock() + passMs > options.deadline);
      const changed =
        taken.length > 0 ||
        result.fleetSilent !== (previous?.fleetSilent ?? false);
      writeDecisionMetrics(log, taken);
      let advanced = true;
      try {
        advanced =
          !(lastPass || changed) ||
          (await state.advanceAggregatorState(next)).applied;
      } catch (error) {
        if (isRetryableStoreError(error)) throw error;
        // The closed minutes are decided and recorded; the next run passes again from them.
        log.error('live pass could not record its state', {
          at: new Date(at).toISOString(),
          error,
        });
        writeAggregationFailure(log, 'state_unwritable');
        return summary;
      }
      if (!advanced) {
        summary.supersededAt = { at: new Date(at).toISOString() };
        log.info('another run already made this pass; stopping here', {
          at: new Date(at).toISOString(),
          applied: summary.decisions,
          lostRaces: summary.lostRaces,
        });
        return summary;
      }
      previous = next;
      summary.passes.push(new Date(at).toISOString());
      // The next scheduled run has started: it takes over from here.
      if (clock() >= eventTime + MINUTE_MS) break;
    }
    return summary;
  }
}

export type Aggregator = ReturnType<typeof createAggregator>;
