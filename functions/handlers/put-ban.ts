import { parseWith } from '#contract/validation';
import type { Ban } from '../core/blocklist.js';
import { manualBanSchema, toBlocklistEntry } from '../core/blocklist.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { badRequest } from '../http/errors.js';
import { pathIp } from '../http/path-ip.js';
import { created, ok } from '../http/responses.js';
import { routes } from '../routes.js';

/** PUT /v1/bans/{ip} (admin): a manual ban, replacing any ban in force. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(
    routes.putBan,
    runtime,
    async ({ event, body, now, principal }) => {
      const ip = pathIp(event);
      const parsed = parseWith(manualBanSchema, body ?? {});
      if (!parsed.ok) throw badRequest('invalid ban', parsed.issues);
      const ban: Ban = {
        ip,
        reason: parsed.value.reason ?? 'manual ban',
        since: now,
        until: now + parsed.value.durationSeconds * 1000,
        manual: true,
        failRatio: null,
        samples: null,
        offense: 0,
        rule: 'manual',
      };
      const { replaced } = await runtime.bans.putBan(ban, now);
      await runtime.events.putEvents([
        {
          type: 'manual_ban',
          at: new Date(now).toISOString(),
          ip,
          enforced: true,
          rule: 'manual',
          actor: principal.actor,
          evidence: { ban, ...(replaced ? { replaced } : {}) },
        },
      ]);
      const entry = toBlocklistEntry(ban);
      return replaced ? ok(entry) : created(entry);
    },
  );
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
