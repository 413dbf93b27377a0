import type { Context, DynamoDBStreamEvent } from 'aws-lambda';
import { lambdaEntry } from '../entry.js';
import { invocationLogger } from '../log.js';
import type { Runtime } from '../runtime.js';
import { createRuntime } from '../runtime.js';
import { endedBansOf } from '../store/ban-stream.js';

/** Table stream → an "expiry" event for every ban that ended and was removed. */
export function createHandler(runtime: Runtime) {
  return async (
    event: Pick<DynamoDBStreamEvent, 'Records'>,
    context?: Pick<Context, 'awsRequestId'>,
  ) => {
    const { ended, unreadable } = endedBansOf(event.Records, runtime.now());
    const log = invocationLogger(runtime.log, context);
    for (const error of unreadable)
      log.warn('removed ban item unreadable; no expiry event', {
        pk: error.key.pk,
        sk: error.key.sk,
        field: error.field,
        error: error.message,
      });
    // Keyed by the ban's end, so a redelivered record rewrites the same event.
    await runtime.events.putEvents(
      ended.map(({ ban, removedAt, byTtl }) => ({
        type: 'expiry' as const,
        at: new Date(ban.until).toISOString(),
        ip: ban.ip,
        enforced: true,
        rule: ban.rule,
        evidence: {
          ban,
          removedAt: new Date(removedAt).toISOString(),
          removedBy: byTtl ? 'dynamodb-ttl' : 'expired-item-removal',
        },
      })),
    );
    if (ended.length)
      log.info('ban expiries recorded', {
        ips: ended.map((e) => e.ban.ip),
      });
    return { expiries: ended.length };
  };
}

export const handler = lambdaEntry(
  () => createRuntime(process.env),
  createHandler,
);
