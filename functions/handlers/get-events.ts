import { canonicalIp } from '#contract/ip';
import { parseWith } from '#contract/validation';
import { EVENT_QUERY_LIMITS } from '../core/events.js';
import { eventQuerySchema } from '../core/requests.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { badRequest } from '../http/errors.js';
import { ok } from '../http/responses.js';
import { routes } from '../routes.js';

const querySchema = eventQuerySchema;

const DAY_MS = 86_400_000;

/** GET /v1/events?ip=&since=&limit= (reader): the audit trail, newest first. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(routes.getEvents, runtime, async ({ event, now }) => {
    const parsed = parseWith(querySchema, event.queryStringParameters ?? {});
    if (!parsed.ok) throw badRequest('invalid query', parsed.issues);
    const { ip, since, limit } = parsed.value;
    // Clamped to what can exist: nothing is older than the events' retention, nothing is newer than now.
    const oldest = now - runtime.config.eventTtlDays * DAY_MS;
    const query = {
      ...(ip ? { ip: canonicalIp(ip) } : {}),
      since: Math.min(
        now,
        Math.max(
          oldest,
          since ? Date.parse(since) : now - EVENT_QUERY_LIMITS.defaultSinceMs,
        ),
      ),
      limit: limit ? Number(limit) : EVENT_QUERY_LIMITS.defaultLimit,
      now,
    };
    const events = await runtime.events.listEvents(query);
    return ok({ since: new Date(query.since).toISOString(), events });
  });
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
