import type { Ban } from './core/blocklist.js';
import type { Config } from './core/config.js';
import type { AuditEvent } from './core/events.js';
import type { Logger } from './log.js';
import { getOrInsert } from './core/maps.js';
import { bucketId, minutesToAggregate, minuteClosesAt } from './core/minutes.js';
import type { Decision, PolicyResult, Verdict } from './core/policy.js';
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
  /** Wall clock, only to know how long to wait for a minute to close. */
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
};

export type AggregationSummary = {
  minutes: string[];
  waitedMs: number;
  decisions: Array<{ minute: string; type: Decision['type']; ip?: string; origin?: string }>;
};

const SILENT_MEMORY_MINUTES = 1440;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function toEvent(verdict: Verdict, minute: number, at: number, enforced: boolean): AuditEvent {
  return { at: new Date(at).toISOString(), minute: bucketId(minute), enforced, ...verdict.event };
}

/**
 * One aggregation run: decides every complete minute not yet decided (up to the
 * catch-up bound) and applies the decisions. Results depend on the event time,
 * never on when the run happens, and every write is idempotent, so a late,
 * early or repeated run changes nothing that an on-time run would not.
 */
export function createAggregator(options: AggregatorOptions) {
  const { config, heartbeats, bans, events, state, log } = options;
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const graceMs = config.graceSeconds * 1000;

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

  async function decide(
    minute: number,
    previous: AggregatorState | undefined,
    read: (m: number) => Promise<MinuteTally[]>,
    own: OwnWrites,
  ): Promise<PolicyResult> {
    const now = minuteClosesAt(minute, graceMs);
    const windowRows = (await Promise.all(range(minute - config.windowMinutes + 1, minute).map(read))).flat();
    const recentRows = (await Promise.all(range(minute - config.releaseMinutes + 1, minute).map(read))).flat();
    const suspects = [...new Set(windowRows.filter((row) => row.origins.some((o) => o.counts.connect_failed > 0)).map((row) => row.ip))];
    const [bansNow, offensesRead] = await Promise.all([bans.listBans(now), state.getOffenses(suspects)]);
    const seen = withOwnWrites({ bans: bansNow, offenses: offensesRead }, own);
    return decideMinute(
      {
        minute,
        now,
        window: windowRows,
        recent: recentRows,
        bans: seen.bans,
        offenses: seen.offenses,
        previous: { outages: previous?.outages ?? [], fleetWide: previous?.fleetWide ?? false },
      },
      config,
    );
  }

  /** The state after `minute`: the previous one carried forward with this minute's fleet. */
  function stateAfter(minute: number, result: PolicyResult, previous: AggregatorState | undefined): AggregatorState {
    const lastSeen: Record<string, number> = {};
    for (const [ip, seen] of Object.entries(previous?.lastSeen ?? {})) {
      if (seen > minute - SILENT_MEMORY_MINUTES) lastSeen[ip] = seen;
    }
    for (const evidence of result.reporting) lastSeen[evidence.ip] = minute;
    return {
      lastMinute: minute,
      reporting: result.reporting,
      lastSeen,
      outages: result.outages,
      fleetWide: result.fleetWide,
      capInForce: result.capInForce,
      capped: result.decisions.flatMap((d) => (d.type === 'capped' ? [d.ip] : [])),
    };
  }

  return {
    async run(eventTime: number): Promise<AggregationSummary> {
      const summary: AggregationSummary = { minutes: [], waitedMs: 0, decisions: [] };
      let previous = await state.getAggregatorState({ consistent: true });
      const minutes = minutesToAggregate({ eventTime, lastDone: previous?.lastMinute, maxCatchUp: config.maxCatchUpMinutes });
      const last = minutes.at(-1);
      if (last === undefined) return summary;
      // EventBridge fires anywhere inside the minute: wait out the grace here
      // rather than leave the just-ended minute to the next run.
      const wait = minuteClosesAt(last, graceMs) - clock();
      if (wait > 0) {
        if (!config.waitForGrace) minutes.pop();
        else {
          summary.waitedMs = wait;
          await sleep(wait);
        }
      }

      const cache = new Map<number, Promise<MinuteTally[]>>();
      const read = (minute: number) => getOrInsert(cache, minute, () => heartbeats.readMinute(minute));
      const own: OwnWrites = { bans: new Map(), lifted: new Map(), offenses: new Map() };
      for (const minute of minutes) {
        const now = minuteClosesAt(minute, graceMs);
        const result = await decide(minute, previous, read, own);
        // A ban or release that lost a race (another run, a manual ban placed
        // meanwhile) is not recorded: the audit trail only says what happened.
        const taken: Verdict[] = [];
        for (const verdict of result.verdicts) if (await applyDecision(verdict.decision, now, own)) taken.push(verdict);
        await events.putEvents(taken.map((d) => toEvent(d, minute, now, !config.dryRun)));
        const next = stateAfter(minute, result, previous);
        const { applied } = await state.advanceAggregatorState(next);
        if (!applied) {
          log.info('another run already aggregated this minute', { minute: bucketId(minute) });
          break;
        }
        previous = next;
        summary.minutes.push(bucketId(minute));
        for (const { decision: d } of taken) {
          summary.decisions.push({
            minute: bucketId(minute),
            type: d.type,
            ...('ip' in d ? { ip: d.ip } : {}),
            ...('origin' in d ? { origin: d.origin } : {}),
          });
        }
        if (result.capInForce) {
          log.warn('ban cap in force: IPs qualified for a ban but were not banned', {
            minute: bucketId(minute),
            capped: result.decisions.filter((d) => d.type === 'capped').map((d) => ('ip' in d ? d.ip : '')),
          });
        }
        log.metrics(result.metrics);
      }
      return summary;
    },
  };
}

export type Aggregator = ReturnType<typeof createAggregator>;
