import { describe, expect, it } from 'vitest';
import {
  createLogger,
  invocationLogger,
  lambdaFields,
  METRICS_NAMESPACE,
  SERVICE_NAME,
} from '../../../functions/log.js';

function capture() {
  const lines: Array<Record<string, any>> = [];
  const log = createLogger({
    level: 'info',
    fields: lambdaFields({ AWS_LAMBDA_FUNCTION_NAME: 'Relaywatch-aggregate' }),
    write: (line) => void lines.push(JSON.parse(line)),
    now: () => Date.parse('2026-01-01T00:00:00Z'),
  });
  return { log, lines };
}

describe('Lambda log lines', () => {
  it('carry the service, the function, the request id, and coldStart only on the first invocation of the process', () => {
    // Prepare
    const { log, lines } = capture();
    // Act
    invocationLogger(log, { awsRequestId: 'req-1' }).info('first');
    invocationLogger(log, { awsRequestId: 'req-2' }).info('second');
    // Assess
    expect(lines[0]).toMatchObject({
      message: 'first',
      service: 'relaywatch',
      function: 'Relaywatch-aggregate',
      requestId: 'req-1',
    });
    expect(lines[1]).toMatchObject({
      message: 'second',
      requestId: 'req-2',
      coldStart: false,
    });
    // Another test file may have invoked first in this process; the first line here is cold only if none did.
    expect(typeof lines[0]!.coldStart).toBe('boolean');
  });

  it('write metrics as EMF in the one namespace and the service series, seconds for *Seconds and counts for the rest, with the request id', () => {
    const { log, lines } = capture();
    invocationLogger(log, { awsRequestId: 'req-3' }).metrics({
      BansInForce: 2,
      AggregationLagSeconds: 15,
    });
    const [line] = lines;
    expect(line!._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: METRICS_NAMESPACE,
        Dimensions: [['service']],
        Metrics: [
          { Name: 'BansInForce', Unit: 'Count' },
          { Name: 'AggregationLagSeconds', Unit: 'Seconds' },
        ],
      },
    ]);
    expect(line).toMatchObject({
      BansInForce: 2,
      AggregationLagSeconds: 15,
      requestId: 'req-3',
      service: 'relaywatch',
    });
  });

  it('put a line with dimensions in the series of the service alone and of the service with each dimension', () => {
    // Prepare
    const { log, lines } = capture();
    // Act
    log.metrics(
      { Decisions: 2, BansDecided: 2 },
      { rule: 'fail-ratio', kind: 'ban' },
    );
    // Assess
    const [line] = lines;
    expect(line!._aws.CloudWatchMetrics[0].Dimensions).toEqual([
      ['service'],
      ['service', 'rule'],
      ['service', 'kind'],
    ]);
    expect(line).toMatchObject({
      service: SERVICE_NAME,
      rule: 'fail-ratio',
      kind: 'ban',
      Decisions: 2,
      BansDecided: 2,
    });
  });

  it('send metric lines to the sink given, or nowhere, apart from the log lines', () => {
    // Prepare
    const logged: string[] = [];
    const metrics: string[] = [];
    const toSink = createLogger({
      level: 'info',
      write: (line) => void logged.push(line),
      metrics: (line) => void metrics.push(line),
    });
    const dropped = createLogger({
      level: 'info',
      write: (line) => void logged.push(line),
      metrics: false,
    });
    // Act
    toSink.info('hello');
    toSink.metrics({ AggregationRuns: 1 });
    dropped.metrics({ AggregationRuns: 1 });
    // Assess
    expect(logged.map((line) => JSON.parse(line).message)).toEqual(['hello']);
    expect(metrics.map((line) => JSON.parse(line).AggregationRuns)).toEqual([
      1,
    ]);
  });
});
