import type { Context, ScheduledEvent } from 'aws-lambda';
import { createAggregator } from '../aggregator.js';
import { lambdaEntry } from '../entry.js';
import { invocationLogger } from '../log.js';
import type { Runtime } from '../runtime.js';
import { createRuntime } from '../runtime.js';

/** No pass starts later than this before the Lambda's timeout: room for the pass itself. */
const PASS_MARGIN_MS = 20_000;

/**
 * EventBridge rate(1 minute) → passes every RELAYWATCH_PASS_SECONDS for a
 * minute: each decides the minutes closed since the last one, then live over
 * the trailing window. The event time, not the moment of the run, sets the
 * pass times, so late or repeated deliveries change nothing.
 */
export function createHandler(runtime: Runtime) {
  const aggregator = createAggregator({ ...runtime, clock: runtime.now });
  return async (
    event: Pick<ScheduledEvent, 'time'>,
    context?: Pick<Context, 'awsRequestId'> &
      Partial<Pick<Context, 'getRemainingTimeInMillis'>>,
  ) => {
    const eventTime = Date.parse(event.time);
    if (Number.isNaN(eventTime))
      throw new Error(
        `aggregation event has no valid time: ${JSON.stringify(event.time)}`,
      );
    const remaining = context?.getRemainingTimeInMillis?.();
    const summary = await aggregator.run(
      eventTime,
      remaining === undefined
        ? {}
        : { deadline: runtime.now() + remaining - PASS_MARGIN_MS },
    );
    const log = invocationLogger(runtime.log, context);
    log.info(
      summary.supersededAt
        ? 'aggregation stopped: another run got ahead'
        : 'aggregation done',
      {
        eventTime: event.time,
        ...summary,
      },
    );
    // One per finished run: the lag alarm fires when these stop.
    log.metrics({
      AggregationRuns: 1,
      AggregationSuperseded: summary.supersededAt ? 1 : 0,
      // The process's peak so far (it serves invocation after invocation):
      // the memory alarm fires before a run is killed for memory.
      AggregationPeakMemoryMb: Math.round(
        process.resourceUsage().maxRSS / 1024,
      ),
    });
    return summary;
  };
}

export const handler = lambdaEntry(
  () => createRuntime(process.env),
  createHandler,
);
