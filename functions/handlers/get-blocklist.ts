import { blocklistAt, blocklistEtag } from '../core/blocklist.js';
import { apiHandler } from '../http/api-handler.js';
import { notModified, ok } from '../http/responses.js';
import { routes } from '../routes.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';

/** GET /v1/blocklist (reader): bans in force, with an ETag for cheap polling. */
export function createHandler(runtime: ApiRuntime) {
  return apiHandler(routes.getBlocklist, runtime, async ({ event, now }) => {
    const blocklist = blocklistAt(await runtime.bans.listBans(now), now);
    const etag = blocklistEtag(blocklist.entries);
    const ifNoneMatch = event.headers?.['if-none-match'];
    if (ifNoneMatch?.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) return notModified(etag);
    return ok(blocklist, { etag, 'cache-control': 'no-cache' });
  });
}

export const handler = createHandler(await createApiRuntime(process.env));
