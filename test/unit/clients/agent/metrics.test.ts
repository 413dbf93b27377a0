import { describe, expect, it } from 'vitest';
import { prometheusText } from '../../../../clients/agent/metrics.js';
import type { ReporterStats } from '../../../../clients/agent/reporter.js';

const REPORTS: ReporterStats = {
  queuedBatches: 1,
  queuedHeartbeats: 3,
  sentBatches: 7,
  sentHeartbeats: 40,
  acceptedHeartbeats: 38,
  staleHeartbeats: 2,
  droppedBatches: 0,
  droppedHeartbeats: 0,
  rejectedBatches: 1,
  rejectedHeartbeats: 5,
  failedAttempts: 4,
};

describe("the agent's Prometheus text", () => {
  it('groups relays by state and status, counts probes and origin checks by status, and reports by outcome', () => {
    const text = prometheusText({
      uptimeSeconds: 90,
      relays: [
        { state: 'flowing', status: 'ok' },
        { state: 'flowing', status: 'ok' },
        { state: 'failing', status: 'connect_failed' },
      ],
      probes: { ok: 4, connect_failed: 1 },
      originChecks: { origin_error: 2 },
      reports: REPORTS,
    });
    const samples = text
      .split('\n')
      .filter((line) => line && !line.startsWith('#'));

    expect(samples).toEqual(
      expect.arrayContaining([
        'relaywatch_agent_uptime_seconds 90',
        'relaywatch_agent_relays{state="failing",status="connect_failed"} 1',
        'relaywatch_agent_relays{state="flowing",status="ok"} 2',
        'relaywatch_agent_probes_total{status="connect_failed"} 1',
        'relaywatch_agent_probes_total{status="ok"} 4',
        'relaywatch_agent_origin_checks_total{status="origin_error"} 2',
        'relaywatch_agent_report_batches_total{outcome="rejected"} 1',
        'relaywatch_agent_report_heartbeats_total{outcome="stale"} 2',
        'relaywatch_agent_report_failed_attempts_total 4',
        'relaywatch_agent_report_queue_heartbeats 3',
      ]),
    );
    // Every sample's family has a TYPE line before it, and the text ends with a newline.
    for (const sample of samples)
      expect(text).toContain(`# TYPE ${sample.split(/[{ ]/)[0]} `);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('escapes quotes, backslashes and newlines in label values', () => {
    const text = prometheusText({
      uptimeSeconds: 0,
      relays: [],
      probes: { 'a"b\\c\nd': 1 },
      originChecks: {},
      reports: REPORTS,
    });
    expect(text).toContain(
      'relaywatch_agent_probes_total{status="a\\"b\\\\c\\nd"} 1',
    );
  });
});
