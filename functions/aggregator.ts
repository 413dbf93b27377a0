import type { Ban } from './core/blocklist.js';
import type { Config } from './core/config.js';
import type { AuditEvent } from './core/events.js';
import type { Leases } from './core/leases.js';
import { freshGrace, mergeLeases, quietIps } from './core/leases.js';
import type { Logger } from './log.js';
import { getOrInsert } from './core/maps.js';
import { bucketId, MINUTE_MS, minuteClosesAt, minuteOf, minutesToAggregate, trailingWindow } from './core/minutes.js';
import type { Decision, PolicyInput, PolicyResult, Verdict } from './core/policy.js';
import { decideMinute } from './core/policy.js';
import type { MinuteTally } from './core/tally.js';
import type { BanStore } from './store/ban-store.js';
import type { EventStore } from './store/event-store.js';
import type { HeartbeatStore } from './store/heartbeat-store.js';
import type { AggregatorState, StateStore } from './store/state-store.js';

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
  /** Times of the live passes made. */
  passes: string[];
  waitedMs: number;
  decisions: Array<{ minute: string; at: string; type: Decision['type']; ip?: string; origin?: string }>;
};

const SILENT_MEMORY_MINUTES = 1440;
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

function toEvent(verdict: Verdict, minute: number, at: number, enforced: boolean): AuditEvent {
  return { at: new Date(at).toISOString(), minute: bucketId(minute), enforced, ...verdict.event };
}

/** Counts of the metrics named by these verdicts. */
function metricsOf(verdicts: readonly Verdict[]): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const { metric } of verdicts) if (metric) metrics[metric] = (metrics[metric] ?? 0) + 1;
  return metrics;
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
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const graceMs = config.graceSeconds * 1000;
  const passMs = config.passSeconds * 1000;
  const windowMs = config.windowMinutes * MINUTE_MS;

  /**
   * What this run wrote itself. Ban and offense reads are eventually
   * consistent, so a run catching up on several minutes overlays its own
   * writes: minute m+1 must see the ban and the offense of minute m.
   */
  type OwnWrites = { bans: Map<string, Ban>; lifted: Map<string, number>; offenses: Map<string, number[]> };

  /** Applies one decision; false when it did not take effect (a ban or lift raced with another writer). */
  async function applyDecision(decision: Decision, now: number, own: OwnWrites): Promise<boolean> {
    if (config.dryRun) return true;
    if (decision.type === 'ban' || decision.type === 'escalation') {
      const { applied } = await bans.putBanIfNoneInForce(decision.ban, now);
      if (!applied) return false;
      await state.addOffense(decision.ip, decision.ban.since);
      own.bans.set(decision.ip, decision.ban);
      own.lifted.delete(decision.ip);
      own.offenses.set(decision.ip, [...(own.offenses.get(decision.ip) ?? []), decision.ban.since]);
      return true;
    }
    if (decision.type === 'release') {
      const lifted = await bans.liftBan(decision.ip, now, decision.ban.until);
      if (!lifted) return false;
      own.bans.delete(decision.ip);
      own.lifted.set(decision.ip, decision.ban.until);
      return true;
    }
    return true;
  }

  function withOwnWrites(read: { bans: Ban[]; offenses: Record<string, number[]> }, own: OwnWrites) {
    const byIp = new Map(read.bans.map((ban) => [ban.ip, ban] as const));
    for (const [ip, until] of own.lifted) if (byIp.get(ip)?.until === until) byIp.delete(ip);
    for (const [ip, ban] of own.bans) byIp.set(ip, ban);
    const offenses: Record<string, number[]> = { ...read.offenses };
    for (const [ip, starts] of own.offenses) offenses[ip] = [...new Set([...(offenses[ip] ?? []), ...starts])].sort((a, b) => a - b);
    return { bans: [...byIp.values()], offenses };
  }

  /** Bans in force at `now` and the offenses of the IPs that may be judged, with this run's own writes laid over. */
  async function bansAndOffenses(now: number, window: readonly MinuteTally[], quiet: readonly string[], own: OwnWrites) {
    const failing = window.filter((row) => row.origins.some((o) => o.counts.connect_failed > 0)).map((row) => row.ip);
    const suspects = [...new Set([...failing, ...quiet])];
    const [bansNow, offensesRead] = await Promise.all([bans.listBans(now), state.getOffenses(suspects)]);
    return withOwnWrites({ bans: bansNow, offenses: offensesRead }, own);
  }

  /** Applies and records verdicts; `record` picks the ones a pass writes as events. */
  async function take(
    result: PolicyResult,
    at: { minute: number; now: number },
    own: OwnWrites,
    record: (verdict: Verdict) => boolean,
  ): Promise<Verdict[]> {
    // A ban or release that lost a race (another run, a manual ban placed
    // meanwhile) is not recorded: the audit trail only says what happened.
    const taken: Verdict[] = [];
    for (const verdict of result.verdicts) {
      if ((await applyDecision(verdict.decision, at.now, own)) && record(verdict)) taken.push(verdict);
    }
    await events.putEvents(taken.map((v) => toEvent(v, at.minute, at.now, !config.dryRun)));
    return taken;
  }

  function summarise(summary: AggregationSummary, minute: number, now: number, taken: readonly Verdict[]) {
    for (const { decision: d } of taken) {
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
  function stateAfterMinute(minute: number, result: PolicyResult, previous: AggregatorState | undefined, leases: Leases): AggregatorState {
    const lastSeen: Record<string, number> = {};
    for (const [ip, seen] of Object.entries(previous?.lastSeen ?? {})) {
      if (seen > minute - SILENT_MEMORY_MINUTES) lastSeen[ip] = seen;
    }
    for (const evidence of result.reporting) lastSeen[evidence.ip] = Math.max(lastSeen[evidence.ip] ?? minute, minute);
    return {
      lastMinute: minute,
      ...(previous?.lastPassAt === undefined ? {} : { lastPassAt: previous.lastPassAt }),
      reporting: result.reporting,
      lastSeen,
      outages: result.outages,
      fleetWide: result.fleetWide,
      fleetSilent: previous?.fleetSilent ?? false,
      capInForce: result.capInForce,
      capped: result.decisions.flatMap((d) => (d.type === 'capped' ? [d.ip] : [])),
      leases: { ...leases },
    };
  }

  return {
    /**
     * Runs the passes of the invocation EventBridge fired at `eventTime`.
     * `deadline` (epoch ms): no pass starts after it (the Lambda's timeout).
     */
    async run(eventTime: number, options: { deadline?: number } = {}): Promise<AggregationSummary> {
      const summary: AggregationSummary = { minutes: [], passes: [], waitedMs: 0, decisions: [] };
      let previous = await state.getAggregatorState({ consistent: true });
      const own: OwnWrites = { bans: new Map(), lifted: new Map(), offenses: new Map() };
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
      // Closed minutes never change (ingest refuses their heartbeats), so one read serves every pass.
      const closed = new Map<number, Promise<MinuteTally[]>>();
      const passes = config.waitForGrace ? Math.ceil(MINUTE_MS / passMs) : 1;

      for (let pass = 0; pass < passes; pass++) {
        const at = eventTime + pass * passMs;
        const wait = at - clock();
        if (wait > 0 && config.waitForGrace) {
          summary.waitedMs += wait;
          await sleep(wait);
        }
        if (options.deadline !== undefined && clock() > options.deadline) break;
        const fresh = new Map<number, Promise<MinuteTally[]>>();
        const read = (minute: number) =>
          minuteClosesAt(minute, graceMs) <= at
            ? getOrInsert(closed, minute, () => heartbeats.readMinute(minute))
            : getOrInsert(fresh, minute, () => heartbeats.readMinute(minute));

        // The live window's rows, read first: closing decisions use them for each IP's newest report.
        const liveMinutes = range(minuteOf(at - windowMs), minuteOf(at));
        const liveRows = (await Promise.all(liveMinutes.map(read))).flat();
        let leases = mergeLeases(previous?.leases, liveRows, at, config);

        // 1. Every minute closed by now and not decided yet, each as a whole minute at its close.
        const toClose = minutesToAggregate({ eventTime: at, lastDone: previous?.lastMinute, maxCatchUp: config.maxCatchUpMinutes }).filter(
          (minute) => minuteClosesAt(minute, graceMs) <= at,
        );
        for (const minute of toClose) {
          const now = minuteClosesAt(minute, graceMs);
          const window = (await Promise.all(range(minute - config.windowMinutes + 1, minute).map(read))).flat();
          const recent = (await Promise.all(range(minute - config.releaseMinutes + 1, minute).map(read))).flat();
          leases = mergeLeases(leases, window, at, config);
          const seen = await bansAndOffenses(now, window, [], own);
          const result = decideMinute(
            {
              minute,
              now,
              window,
              recent,
              latest: liveRows.filter((row) => row.minute > minute),
              bans: seen.bans,
              offenses: seen.offenses,
              previous: { outages: previous?.outages ?? [], fleetWide: previous?.fleetWide ?? false },
              leases,
              closing: true,
            },
            config,
          );
          const taken = await take(result, { minute, now }, own, firstInRun);
          const next = stateAfterMinute(minute, result, previous, leases);
          if (!(await state.advanceAggregatorState(next)).applied) {
            log.info('another run already aggregated this minute', { minute: bucketId(minute) });
            return summary;
          }
          previous = next;
          summary.minutes.push(bucketId(minute));
          summarise(summary, minute, now, taken);
          if (result.capInForce) {
            log.warn('ban cap in force: IPs qualified for a ban but were not banned', {
              minute: bucketId(minute),
              capped: result.decisions.flatMap((d) => (d.type === 'capped' ? [d.ip] : [])),
            });
          }
          log.metrics(result.metrics);
        }

        // 2. The live decision at `at`: the trailing window, silence, releases.
        const minute = minuteOf(at);
        const window = trailingWindow(liveRows, at, windowMs);
        const recent = (await Promise.all(range(minute - config.releaseMinutes + 1, minute).map(read))).flat();
        const seen = await bansAndOffenses(at, window, quietIps(leases, at, config), own);
        const input: PolicyInput = {
          minute,
          now: at,
          window,
          recent,
          bans: seen.bans,
          offenses: seen.offenses,
          previous: {
            outages: previous?.outages ?? [],
            fleetWide: previous?.fleetWide ?? false,
            fleetSilent: previous?.fleetSilent ?? false,
            ...(previous?.lastPassAt === undefined ? {} : { at: previous.lastPassAt }),
          },
          leases,
        };
        const result = decideMinute(input, config);
        // Conditions that last (outages, capped, allowlisted) are recorded by the closing decision of each minute.
        const taken = await take(result, { minute, now: at }, own, (verdict) => !verdict.perMinute && firstInRun(verdict));
        if (previous?.fleetSilent && !result.fleetSilent) leases = freshGrace(leases, at);
        const lastMinute = previous?.lastMinute ?? minute - 2;
        const next: AggregatorState = {
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
        const changed = taken.length > 0 || result.fleetSilent !== (previous?.fleetSilent ?? false);
        if ((lastPass || changed) && !(await state.advanceAggregatorState(next)).applied) {
          log.info('another run already made this pass', { at: new Date(at).toISOString() });
          return summary;
        }
        previous = next;
        summary.passes.push(new Date(at).toISOString());
        summarise(summary, minute, at, taken);
        const counted = metricsOf(taken);
        if (Object.keys(counted).length) log.metrics(counted);
        // The next scheduled run has started: it takes over from here.
        if (clock() >= eventTime + MINUTE_MS) break;
      }
      return summary;
    },
  };
}

export type Aggregator = ReturnType<typeof createAggregator>;
