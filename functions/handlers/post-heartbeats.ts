import { randomUUID } from 'node:crypto';
import { HEARTBEAT_LIMITS, parseHeartbeatBody } from '../core/heartbeat.js';
import { tallyHeartbeats } from '../core/tally.js';
import { apiHandler } from '../http/api-handler.js';
import { badRequest } from '../http/errors.js';
import { accepted } from '../http/responses.js';
import { routes } from '../routes.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';

/** POST /v1/heartbeats (reporter): validate all, pre-combine, one row per (minute, ip). */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.postHeartbeats,
    runtime,
    async ({ body, now, log }) => {
      if (body === undefined) throw badRequest('body is required: one heartbeat or {"heartbeats": [...]}');
      const parsed = parseHeartbeatBody(body, now);
      if (!parsed.ok) throw badRequest('invalid heartbeats; nothing was stored', parsed.issues);
      const { heartbeats, batchId, reportIntervalSeconds, ip } = parsed.value;
      const result = tallyHeartbeats(heartbeats, { now, graceMs: runtime.config.graceSeconds * 1000, leaseSeconds: reportIntervalSeconds, ip });
      // A batchId makes the rows' keys deterministic, so a retried batch overwrites itself.
      await runtime.heartbeats.addTallies(result.tallies, { writeId: batchId ? `b:${batchId}` : `r:${randomUUID()}` });
      log.debug('heartbeats stored', { accepted: result.accepted, stale: result.stale, rows: result.tallies.length });
      return accepted(result.stale ? { accepted: result.accepted, stale: result.stale } : { accepted: result.accepted });
    },
    { maxBodyBytes: HEARTBEAT_LIMITS.maxBodyBytes },
  );
}

export const handler = createHandler(await createApiRuntime(process.env));
