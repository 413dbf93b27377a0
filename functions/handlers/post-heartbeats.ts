import { createHash, randomUUID } from 'node:crypto';
import { canonicalIp } from '#contract/ip';
import type { InputIssue } from '#contract/validation';
import type { Heartbeat } from '../core/heartbeat.js';
import {
  HEARTBEAT_LIMITS,
  isHeartbeatEnvelope,
  parseHeartbeatBody,
} from '../core/heartbeat.js';
import { tallyHeartbeats } from '../core/tally.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { badRequest, HttpError } from '../http/errors.js';
import { accepted } from '../http/responses.js';
import { writeHeartbeatMetrics } from '../metrics.js';
import { routes } from '../routes.js';

/** Heartbeats a machine token may not send: those of any IP but its own. */
function foreignIps(
  heartbeats: readonly Heartbeat[],
  boundIp: string,
  single: boolean,
): InputIssue[] {
  return heartbeats.flatMap((heartbeat, index) =>
    canonicalIp(heartbeat.ip) === boundIp
      ? []
      : [
          {
            path: single ? 'ip' : `heartbeats.${index}.ip`,
            message: `this token reports for ${boundIp} only`,
          },
        ],
  );
}

/**
 * When a batch counts as received: now for a new one, the first arrival for a
 * repeat, so a retry even a minute later writes the same rows (same minute,
 * same keys) over themselves. A batchId reused for other content is a 409.
 */
async function receivedAtOf(
  runtime: ApiRuntime,
  batch: {
    scope: string;
    batchId: string;
    heartbeats: readonly Heartbeat[];
    now: number;
  },
) {
  const digest = createHash('sha256')
    .update(JSON.stringify(batch.heartbeats))
    .digest('base64url');
  const claim = await runtime.batches.claim({
    scope: batch.scope,
    batchId: batch.batchId,
    digest,
    receivedAt: batch.now,
  });
  if (claim.status === 'conflict') {
    throw new HttpError(
      409,
      'this batchId was already used for other heartbeats; nothing was stored',
      [
        {
          path: 'batchId',
          message:
            'reused with different content: a new batch needs a new batchId',
        },
      ],
    );
  }
  return claim.receivedAt;
}

/** How many heartbeats a refused body held: the envelope's list, else one (none without a body). */
function heartbeatsIn(body: unknown): number {
  if (body === undefined) return 0;
  const list = (body as { heartbeats?: unknown } | null)?.heartbeats;
  return Array.isArray(list) ? list.length : 1;
}

/** POST /v1/heartbeats (reporter): validate all, pre-combine, one row per (minute, ip). */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.postHeartbeats,
    runtime,
    async ({ body, now, log, principal }) => {
      if (body === undefined)
        throw badRequest(
          'body is required: one heartbeat or {"heartbeats": [...]}',
        );
      const parsed = parseHeartbeatBody(body, now);
      if (!parsed.ok)
        throw badRequest(
          'invalid heartbeats; nothing was stored',
          parsed.issues,
        );
      const { heartbeats, batchId, reportIntervalSeconds, ip } = parsed.value;
      if (principal.ip !== undefined) {
        const foreign = foreignIps(
          heartbeats,
          principal.ip,
          !isHeartbeatEnvelope(body),
        );
        // An envelope-level ip (the lease of an idle agent) must be the machine's own too.
        if (ip !== undefined && canonicalIp(ip) !== principal.ip) {
          foreign.unshift({
            path: 'ip',
            message: `this token reports for ${principal.ip} only`,
          });
        }
        if (foreign.length)
          throw new HttpError(
            403,
            `a machine token speaks for its own IP only; nothing was stored`,
            foreign,
          );
      }
      // batchIds are scoped by credential: two machines may number their batches alike.
      const receivedAt = batchId
        ? await receivedAtOf(runtime, {
            scope: principal.ip ?? 'fleet',
            batchId,
            heartbeats,
            now,
          })
        : now;
      const stamped = heartbeats.map((heartbeat) =>
        heartbeat.ts === undefined
          ? { ...heartbeat, ts: receivedAt }
          : heartbeat,
      );
      // A retried batch keeps its first arrival as its receive time, so its rows (and their lateness) do not change.
      const result = tallyHeartbeats(stamped, {
        now,
        graceMs: runtime.config.graceSeconds * 1000,
        receivedAt,
        leaseSeconds: reportIntervalSeconds,
        ip,
      });
      await runtime.heartbeats.addTallies(result.tallies, {
        writeId: batchId ? `b:${batchId}` : `r:${randomUUID()}`,
      });
      log.debug('heartbeats stored', {
        accepted: result.accepted,
        stale: result.stale,
        rows: result.tallies.length,
      });
      writeHeartbeatMetrics(log, {
        accepted: result.accepted,
        stale: result.stale,
      });
      return accepted(
        result.stale
          ? { accepted: result.accepted, stale: result.stale }
          : { accepted: result.accepted },
      );
    },
    {
      maxBodyBytes: HEARTBEAT_LIMITS.maxBodyBytes,
      // Invalid, foreign or conflicting: nothing of the request was stored.
      onRefused: ({ log, body }) =>
        writeHeartbeatMetrics(log, { rejected: heartbeatsIn(body) }),
    },
  );
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
