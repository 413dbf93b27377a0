import { getOrInsert } from './core/maps.js';
import type { Decision, Verdict } from './core/policy.js';
import { RULES } from './core/policy.js';
import type { Logger } from './log.js';
import { schedules } from './routes.js';

/*
 * The metrics relaywatch writes beyond its gauges, and their dimensions. Each
 * line is in the series of the service alone (the total) and of the service
 * with each of its dimensions (log.ts, metricDimensionSets), so:
 *
 * - Decisions, and the rule's own counter (BansDecided, SilentBans,
 *   CappedBans, Releases, FleetSilence): by `rule` (an entry of RULES:
 *   fail-ratio, silent, ...) and by `kind` (ban, release, capped, ...).
 * - Heartbeats, and HeartbeatsAccepted / HeartbeatsStale / HeartbeatsRejected:
 *   by `outcome` (accepted, stale, rejected).
 * - Errors (and AggregationFailures, for the aggregation's): by `handler`
 *   (the handler file: post-heartbeats, aggregate, ...; stable across
 *   deployments, unlike a Lambda's generated name) and by `kind`.
 *
 * infra/cloud/monitoring.ts alarms on and charts these names with the same
 * dimensions.
 */

/** A decision as charted: bans (escalations are bans too), releases, and the rest by their type. */
export type DecisionKind = Exclude<Decision['type'], 'escalation'>;

/** The kinds a dashboard charts decisions by (the conditions have gauges of their own). */
export const CHARTED_DECISION_KINDS = [
  'ban',
  'release',
  'capped',
  'allowlisted',
] as const satisfies readonly DecisionKind[];

export function decisionKind(type: Decision['type']): DecisionKind {
  return type === 'escalation' ? 'ban' : type;
}

/**
 * The counters that decisions add to; zero in a minute without decisions.
 * A function, not a module constant, so the API functions' bundles, which
 * import this module for their errors, leave the rules out.
 */
export function decisionCounters(): string[] {
  return ['Decisions', ...new Set(RULES.flatMap((rule) => rule.metrics))];
}

/**
 * The gauges of a decided minute from the policy's metrics, with every
 * decision counter at 0: the counts themselves are written by
 * writeDecisionMetrics, by rule and kind, for the decisions that took effect;
 * the zeros keep the totals' series continuous.
 */
export function minuteGauges(
  policyMetrics: Readonly<Record<string, number>>,
): Record<string, number> {
  const counters = decisionCounters();
  const gauges: Record<string, number> = {};
  for (const [name, value] of Object.entries(policyMetrics))
    gauges[name] = counters.includes(name) ? 0 : value;
  for (const name of counters) gauges[name] = 0;
  return gauges;
}

/** One metric line per (rule, kind) of these decisions: Decisions, and the rule's own counter. */
export function writeDecisionMetrics(
  log: Logger,
  verdicts: readonly Verdict[],
): void {
  const groups = new Map<
    string,
    { rule: string; kind: DecisionKind; values: Record<string, number> }
  >();
  for (const verdict of verdicts) {
    const kind = decisionKind(verdict.decision.type);
    const group = getOrInsert(groups, `${verdict.by} ${kind}`, () => ({
      rule: verdict.by,
      kind,
      values: { Decisions: 0 },
    }));
    group.values.Decisions = (group.values.Decisions ?? 0) + 1;
    if (verdict.metric)
      group.values[verdict.metric] = (group.values[verdict.metric] ?? 0) + 1;
  }
  for (const { rule, kind, values } of groups.values())
    log.metrics(values, { rule, kind });
}

export type HeartbeatOutcome = 'accepted' | 'stale' | 'rejected';

/**
 * Heartbeats of one request by outcome. `Heartbeats` splits them without
 * overlap: accepted (stored and counted), stale (stored too late to count),
 * rejected (refused with the request); its service series is every heartbeat
 * received. HeartbeatsAccepted stays what the API answers as accepted (stale
 * ones included); HeartbeatsStale and HeartbeatsRejected match their outcome.
 * The accepted line is written for every stored request (its series never
 * stops while agents report); stale and rejected only when there are some,
 * to keep the lines per request few.
 */
export function writeHeartbeatMetrics(
  log: Logger,
  counts:
    | { accepted: number; stale: number; rejected?: undefined }
    | { rejected: number; accepted?: undefined; stale?: undefined },
): void {
  if (counts.accepted !== undefined) {
    log.metrics(
      {
        Heartbeats: counts.accepted - counts.stale,
        HeartbeatsAccepted: counts.accepted,
      },
      { outcome: 'accepted' },
    );
    if (counts.stale > 0)
      log.metrics(
        { Heartbeats: counts.stale, HeartbeatsStale: counts.stale },
        { outcome: 'stale' },
      );
  }
  if (counts.rejected)
    log.metrics(
      { Heartbeats: counts.rejected, HeartbeatsRejected: counts.rejected },
      { outcome: 'rejected' },
    );
}

/**
 * Where errors happen, by what went wrong: API 5xx (`internal`,
 * `store_busy`), and the aggregation's own failures (`state_unreadable`,
 * `minute_failed`, `state_unwritable`), which also count in
 * AggregationFailures.
 */
export type ErrorKind =
  | 'internal'
  | 'store_busy'
  | 'state_unreadable'
  | 'minute_failed'
  | 'minutes_skipped'
  | 'state_unwritable';

/** The `handler` dimension of a route or schedule entry: its file name, 'handlers/post-heartbeats.ts' → 'post-heartbeats'. */
export function handlerName(entry: string): string {
  return (
    entry
      .replace(/^.*\//, '')
      .replace(/\.[cm]?[jt]s$/, '')
      .replace(/[^a-z0-9-]/gi, '') || 'unknown'
  );
}

/** One error of an API handler (a 5xx answer). */
export function writeErrorMetric(
  log: Logger,
  handler: string,
  kind: ErrorKind,
): void {
  log.metrics({ Errors: 1 }, { handler, kind });
}

/** The aggregate handler's name in the `handler` dimension. */
export const AGGREGATE_HANDLER = handlerName(schedules.aggregate.entry);

/** A failure the aggregation recorded and went past: an error, and one of AggregationFailures. */
export function writeAggregationFailure(
  log: Logger,
  kind: Extract<
    ErrorKind,
    | 'state_unreadable'
    | 'minute_failed'
    | 'minutes_skipped'
    | 'state_unwritable'
  >,
): void {
  log.metrics(
    { Errors: 1, AggregationFailures: 1 },
    { handler: AGGREGATE_HANDLER, kind },
  );
}
