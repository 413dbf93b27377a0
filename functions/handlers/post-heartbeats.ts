import { randomUUID } from 'node:crypto';
import type { Heartbeat } from '../core/heartbeat.js';
import { HEARTBEAT_LIMITS, parseHeartbeatBody } from '../core/heartbeat.js';
import { canonicalIp } from '../core/ip.js';
import type { InputIssue } from '../core/validation.js';
import { tallyHeartbeats } from '../core/tally.js';
import { apiHandler } from '../http/api-handler.js';
import { badRequest, HttpError } from '../http/errors.js';
import { accepted } from '../http/responses.js';
import { routes } from '../routes.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';

/** Heartbeats a machine token may not send: those of any IP but its own. */
function foreignIps(heartbeats: readonly Heartbeat[], boundIp: string, single: boolean): InputIssue[] {
  return heartbeats.flatMap((heartbeat, index) =>
    canonicalIp(heartbeat.ip) === boundIp
      ? []
      : [{ path: single ? 'ip' : `heartbeats.${index}.ip`, message: `this token reports for ${boundIp} only` }],
  );
}

/** POST /v1/heartbeats (reporter): validate all, pre-combine, one row per (minute, ip). */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.postHeartbeats,
    runtime,
    async ({ body, now, log, principal }) => {
      if (body === undefined) throw badRequest('body is required: one heartbeat or {"heartbeats": [...]}');
      const parsed = parseHeartbeatBody(body, now);
      if (!parsed.ok) throw badRequest('invalid heartbeats; nothing was stored', parsed.issues);
      const { heartbeats, batchId } = parsed.value;
      if (principal.ip !== undefined) {
        const single = !(typeof body === 'object' && body !== null && 'heartbeats' in body);
        const foreign = foreignIps(heartbeats, principal.ip, single);
        if (foreign.length) throw new HttpError(403, `a machine token speaks for its own IP only; nothing was stored`, foreign);
      }
      const result = tallyHeartbeats(heartbeats, { now, graceMs: runtime.config.graceSeconds * 1000 });
      // A batchId makes the rows' keys deterministic, so a retried batch overwrites itself.
      await runtime.heartbeats.addTallies(result.tallies, { writeId: batchId ? `b:${batchId}` : `r:${randomUUID()}` });
      log.debug('heartbeats stored', { accepted: result.accepted, stale: result.stale, rows: result.tallies.length });
      return accepted(result.stale ? { accepted: result.accepted, stale: result.stale } : { accepted: result.accepted });
    },
    { maxBodyBytes: HEARTBEAT_LIMITS.maxBodyBytes },
  );
}

export const handler = createHandler(await createApiRuntime(process.env));
