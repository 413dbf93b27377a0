import { describe, expect, it } from 'vitest';
import {
  createLogger,
  invocationLogger,
  lambdaFields,
  METRICS_NAMESPACE,
} from '../../functions/log.js';

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

  it('write metrics as EMF in the one namespace, seconds for *Seconds and counts for the rest, with the request id', () => {
    const { log, lines } = capture();
    invocationLogger(log, { awsRequestId: 'req-3' }).metrics({
      BansInForce: 2,
      AggregationLagSeconds: 15,
    });
    const [line] = lines;
    expect(line!._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: METRICS_NAMESPACE,
        Dimensions: [[]],
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
});
