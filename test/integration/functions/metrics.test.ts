import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { minuteOf, minuteStart } from '../../../functions/core/minutes.js';
import { createLogger, METRICS_NAMESPACE } from '../../../functions/log.js';
import { startLocalStatusCenter } from '../../../infra/local/status-center.js';
import { localEndpoint, recordLocalTable } from '../../helpers/local-tables.js';
import type { TestStatusCenter } from '../../helpers/status-center.js';
import { apiClient, startStatusCenter } from '../../helpers/status-center.js';

/** One EMF line as CloudWatch reads it: its dimension sets, and its values by name. */
type MetricLine = {
  dimensionSets: string[][];
  names: string[];
  fields: Record<string, unknown>;
};

function parseMetricLine(line: string): MetricLine {
  const fields = JSON.parse(line) as Record<string, unknown> & {
    _aws: {
      CloudWatchMetrics: Array<{
        Namespace: string;
        Dimensions: string[][];
        Metrics: Array<{ Name: string }>;
      }>;
    };
  };
  const [directive] = fields._aws.CloudWatchMetrics;
  expect(directive?.Namespace).toBe(METRICS_NAMESPACE);
  // Every dimension a set names is a field of the line, or CloudWatch drops the line.
  for (const set of directive!.Dimensions)
    for (const name of set) expect(typeof fields[name], name).toBe('string');
  return {
    dimensionSets: directive!.Dimensions,
    names: directive!.Metrics.map((metric) => metric.Name),
    fields,
  };
}

const IPS = ['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.4'];
const BROKEN = '198.51.100.4';

const heartbeatsOf = (ip: string, status: string, ts: number, count = 12) =>
  Array.from({ length: count }, (_, i) => ({
    ip,
    process: `ffmpeg-${i}`,
    status,
    origin: `rtmp://origin-a.example.net/live/s${i}`,
    ts,
  }));

describe('metric lines of an ingest and an aggregation run', () => {
  const minute = minuteOf(Date.now());
  let now = minuteStart(minute) + 20_000;
  const lines: MetricLine[] = [];
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    center = await startStatusCenter({
      overrides: {
        now: () => now,
        log: createLogger({
          level: 'warn',
          metrics: (line) => void lines.push(parseMetricLine(line)),
        }),
      },
    });
    api = apiClient(center);
  });
  afterAll(async () => center?.stop());

  const withMetric = (name: string) =>
    lines.filter((line) => line.names.includes(name));

  it('counts heartbeats by outcome: accepted, stale and rejected, each also in the service series', async () => {
    // Prepare
    lines.length = 0;
    const late = minuteStart(minute - 3) + 1_000;
    // Act
    const stored = await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body: {
        heartbeats: [
          ...heartbeatsOf('192.0.2.50', 'ok', now, 3),
          ...heartbeatsOf('192.0.2.50', 'ok', late, 2),
        ],
      },
    });
    const refused = await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body: {
        heartbeats: [
          ...heartbeatsOf('192.0.2.51', 'ok', now, 2),
          { ip: '300.1.2.3', process: 'p', status: 'ok' },
        ],
      },
    });
    // Assess
    expect(stored.status).toBe(202);
    expect(stored.json).toEqual({ accepted: 5, stale: 2 });
    expect(refused.status).toBe(400);
    const byOutcome = Object.fromEntries(
      withMetric('Heartbeats').map((line) => [
        line.fields.outcome,
        line.fields.Heartbeats,
      ]),
    );
    expect(byOutcome).toEqual({ accepted: 3, stale: 2, rejected: 3 });
    for (const line of withMetric('Heartbeats')) {
      expect(line.dimensionSets).toEqual([['service'], ['service', 'outcome']]);
      expect(line.fields.service).toBe('relaywatch');
    }
    expect(withMetric('HeartbeatsAccepted')[0]?.fields).toMatchObject({
      HeartbeatsAccepted: 5,
      outcome: 'accepted',
    });
    expect(withMetric('HeartbeatsStale')[0]?.fields.HeartbeatsStale).toBe(2);
    expect(withMetric('HeartbeatsRejected')[0]?.fields.HeartbeatsRejected).toBe(
      3,
    );
  });

  it('counts a ban by rule and kind, and writes the minute gauges and the run in the service series', async () => {
    // Prepare
    for (const ip of IPS) {
      const response = await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: {
          heartbeats: heartbeatsOf(
            ip,
            ip === BROKEN ? 'connect_failed' : 'ok',
            now,
          ),
        },
      });
      expect(response.status).toBe(202);
    }
    lines.length = 0;
    // Act: after the minute's close (its end plus the 10 s grace).
    now = minuteStart(minute + 1) + 15_000;
    await center.aggregate(new Date(now).toISOString());
    // Assess
    const decisions = withMetric('Decisions').filter(
      (line) => (line.fields.Decisions as number) > 0,
    );
    expect(decisions.map((line) => line.fields)).toEqual([
      expect.objectContaining({
        service: 'relaywatch',
        rule: 'fail-ratio',
        kind: 'ban',
        Decisions: 1,
        BansDecided: 1,
      }),
    ]);
    expect(decisions[0]!.dimensionSets).toEqual([
      ['service'],
      ['service', 'rule'],
      ['service', 'kind'],
    ]);
    const [gauges] = withMetric('BansInForce');
    expect(gauges?.dimensionSets).toEqual([['service']]);
    expect(gauges?.names).toEqual(
      expect.arrayContaining([
        'AggregationLagSeconds',
        'SilentIps',
        'OriginOutages',
        'CapInForce',
        'BansDecided',
        'Decisions',
      ]),
    );
    // The totals' zeros with the gauges: the counts are in the rule lines only.
    expect(gauges?.fields).toMatchObject({ BansDecided: 0, Decisions: 0 });
    const [run] = withMetric('AggregationRuns');
    expect(run?.dimensionSets).toEqual([['service']]);
    expect(run?.fields.AggregationRuns).toBe(1);
    // The process's peak memory, MB (the memory alarm's metric): this test process holds tens of MB at least.
    expect(run?.names).toContain('AggregationPeakMemoryMb');
    expect(run?.fields.AggregationPeakMemoryMb).toBeGreaterThan(10);
  });
});

describe('the local status center', () => {
  it('writes no metric line unless asked (npm start: --metrics, --metrics-file)', async () => {
    // Prepare: the runtime's own logger, as npm start builds it (so not
    // startStatusCenter, which sets one); its table is deleted when the file ends.
    const tableName = `relaywatch-test-${randomBytes(6).toString('hex')}`;
    recordLocalTable(tableName);
    const center = await startLocalStatusCenter({
      port: 0,
      dynamodbEndpoint: localEndpoint(),
      env: {
        TABLE_NAME: tableName,
        LOG_LEVEL: 'error',
        RELAYWATCH_AGGREGATE_WAITS: 'false',
      },
      schedule: false,
      streams: false,
    });
    const written: string[] = [];
    const spy = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk) => {
        written.push(String(chunk));
        return true;
      });
    try {
      // Act
      await center.aggregate();
    } finally {
      spy.mockRestore();
      await center.stop();
    }
    // Assess
    expect(written.filter((line) => line.includes('"_aws"'))).toEqual([]);
  });
});
