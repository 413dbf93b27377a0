import type { Context, ScheduledEvent } from 'aws-lambda';
import { createAggregator } from '../aggregator.js';
import type { Runtime } from '../runtime.js';
import { createRuntime } from '../runtime.js';

/**
 * EventBridge rate(1 minute) → decides every complete minute before the
 * event's `time` that is not decided yet. The event time, not the moment of
 * the run, picks the minutes, so late or repeated deliveries change nothing.
 */
export function createHandler(runtime: Runtime) {
  const aggregator = createAggregator({ ...runtime, clock: runtime.now });
  return async (event: Pick<ScheduledEvent, 'time'>, context?: Pick<Context, 'awsRequestId'>) => {
    const eventTime = Date.parse(event.time);
    if (Number.isNaN(eventTime)) throw new Error(`aggregation event has no valid time: ${JSON.stringify(event.time)}`);
    const summary = await aggregator.run(eventTime);
    runtime.log.info('aggregation done', { requestId: context?.awsRequestId, eventTime: event.time, ...summary });
    return summary;
  };
}

export const handler = createHandler(createRuntime(process.env));
