/**
 * The agent's counters and gauges in the Prometheus text exposition format
 * (version 0.0.4), for `GET /metrics`. Pure: the agent hands in a snapshot.
 */
import type { ReporterStats } from './reporter.js';

export const PROMETHEUS_CONTENT_TYPE =
  'text/plain; version=0.0.4; charset=utf-8';

export type AgentMetrics = {
  uptimeSeconds: number;
  /** One entry per relay: its state (starting/flowing/failing) and status (ok, connect_failed, …, starting). */
  relays: ReadonlyArray<{ state: string; status: string }>;
  /** Probes run since start, by status. */
  probes: Readonly<Record<string, number>>;
  /** Origin checks (TCP connects to a relay's origin at start, stall or input loss) since start, by status. */
  originChecks: Readonly<Record<string, number>>;
  reports: ReporterStats;
};

const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function family(
  name: string,
  type: 'counter' | 'gauge',
  help: string,
  samples: Array<[Record<string, string>, number]>,
): string[] {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
  for (const [labels, value] of samples) {
    const text = Object.entries(labels)
      .map(([key, label]) => `${key}="${escapeLabel(label)}"`)
      .join(',');
    lines.push(`${name}${text ? `{${text}}` : ''} ${value}`);
  }
  return lines;
}

const byLabel = (
  label: string,
  counts: Readonly<Record<string, number>>,
): Array<[Record<string, string>, number]> =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([value, count]) => [{ [label]: value }, count]);

export function prometheusText(metrics: AgentMetrics): string {
  const relays = new Map<
    string,
    { state: string; status: string; count: number }
  >();
  for (const { state, status } of metrics.relays) {
    const key = `${state} ${status}`;
    const entry = relays.get(key) ?? { state, status, count: 0 };
    entry.count++;
    relays.set(key, entry);
  }
  const r = metrics.reports;
  return `${[
    ...family(
      'relaywatch_agent_uptime_seconds',
      'gauge',
      'Seconds since the agent started.',
      [[{}, metrics.uptimeSeconds]],
    ),
    ...family(
      'relaywatch_agent_relays',
      'gauge',
      'Relays running now, by state (starting, flowing, failing) and status.',
      [...relays.values()]
        .sort((a, b) =>
          `${a.state} ${a.status}`.localeCompare(`${b.state} ${b.status}`),
        )
        .map((e) => [{ state: e.state, status: e.status }, e.count]),
    ),
    ...family(
      'relaywatch_agent_probes_total',
      'counter',
      'Probes run since start, by status.',
      byLabel('status', metrics.probes),
    ),
    ...family(
      'relaywatch_agent_origin_checks_total',
      'counter',
      "Origin checks (TCP connect to a relay's origin) since start, by status.",
      byLabel('status', metrics.originChecks),
    ),
    ...family(
      'relaywatch_agent_report_batches_total',
      'counter',
      'Report batches since start, by outcome (sent, dropped: buffer full, rejected: refused by the status center).',
      [
        [{ outcome: 'sent' }, r.sentBatches],
        [{ outcome: 'dropped' }, r.droppedBatches],
        [{ outcome: 'rejected' }, r.rejectedBatches],
      ],
    ),
    ...family(
      'relaywatch_agent_report_heartbeats_total',
      'counter',
      'Heartbeats since start, by outcome (sent; accepted and stale as the status center answered; dropped; rejected).',
      [
        [{ outcome: 'sent' }, r.sentHeartbeats],
        [{ outcome: 'accepted' }, r.acceptedHeartbeats],
        [{ outcome: 'stale' }, r.staleHeartbeats],
        [{ outcome: 'dropped' }, r.droppedHeartbeats],
        [{ outcome: 'rejected' }, r.rejectedHeartbeats],
      ],
    ),
    ...family(
      'relaywatch_agent_report_failed_attempts_total',
      'counter',
      'Report requests that failed and will be retried (network error, 5xx, 408, 429).',
      [[{}, r.failedAttempts]],
    ),
    ...family(
      'relaywatch_agent_report_queue_heartbeats',
      'gauge',
      'Heartbeats waiting to be sent.',
      [[{}, r.queuedHeartbeats]],
    ),
  ].join('\n')}\n`;
}
