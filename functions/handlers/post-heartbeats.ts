import { createHash, randomUUID } from 'node:crypto';
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
      // A batchId stands for one content, first received at one time: a retry, even
      // a minute later, writes the same rows (same minute, same keys) over themselves.
      let receivedAt = now;
      if (batchId) {
        const digest = createHash('sha256').update(JSON.stringify(heartbeats)).digest('base64url');
        const claim = await runtime.batches.claim({ scope: principal.ip ?? 'fleet', batchId, digest, receivedAt: now });
        if (claim.status === 'conflict') {
          throw new HttpError(409, 'this batchId was already used for other heartbeats; nothing was stored', [
            { path: 'batchId', message: 'reused with different content: a new batch needs a new batchId' },
          ]);
        }
        receivedAt = claim.receivedAt;
      }
      const stamped = heartbeats.map((heartbeat) => (heartbeat.ts === undefined ? { ...heartbeat, ts: receivedAt } : heartbeat));
      const result = tallyHeartbeats(stamped, { now, graceMs: runtime.config.graceSeconds * 1000 });
      await runtime.heartbeats.addTallies(result.tallies, { writeId: batchId ? `b:${batchId}` : `r:${randomUUID()}` });
      log.debug('heartbeats stored', { accepted: result.accepted, stale: result.stale, rows: result.tallies.length });
      return accepted(result.stale ? { accepted: result.accepted, stale: result.stale } : { accepted: result.accepted });
    },
    { maxBodyBytes: HEARTBEAT_LIMITS.maxBodyBytes },
  );
}

export const handler = createHandler(await createApiRuntime(process.env));
