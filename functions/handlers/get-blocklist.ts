import { gzipSync } from 'node:zlib';
import type { Ban } from '../core/blocklist.js';
import { blocklistAt, blocklistEtag } from '../core/blocklist.js';
import { lambdaEntry } from '../entry.js';
import { apiHandler } from '../http/api-handler.js';
import type { ApiRuntime } from '../http/api-runtime.js';
import { createApiRuntime } from '../http/api-runtime.js';
import { notModified, ok } from '../http/responses.js';
import { routes } from '../routes.js';

/** Bodies smaller than this go out as they are: gzip would save less than its own framing costs. */
const GZIP_MIN_BYTES = 1024;

const acceptsGzip = (header: string | undefined) =>
  header?.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    return (
      (coding === 'gzip' || coding === '*') &&
      !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p))
    );
  }) ?? false;

/**
 * GET /v1/blocklist (reader): bans in force, with an ETag for cheap polling.
 * Each instance keeps the bans it last read with the ban list's version; a
 * poll reads only the version item (one small GetItem) and queries the bans
 * again only when the version moved, or while a batch of ban changes is being
 * written (its change window: the list then changes without the version, so
 * nothing read during it is kept). Bans that run out drop from the list at
 * their `until` without any write, so the ETag is computed from the entries
 * in force now, not from the version.
 */
export function createHandler(runtime: ApiRuntime) {
  let cached: { version: number; bans: Ban[] } | undefined;
  return apiHandler(routes.getBlocklist, runtime, async ({ event, now }) => {
    const { version, changingUntil } = await runtime.bans.getVersion();
    const settled = changingUntil === undefined || changingUntil <= now;
    let bans = cached?.version === version && settled ? cached.bans : undefined;
    if (!bans) {
      // Consistent, so the bans read are at least as new as the version read before them.
      bans = await runtime.bans.listBansConsistent(now);
      cached = settled ? { version, bans } : undefined;
    }
    const blocklist = blocklistAt(bans, now);
    const etag = blocklistEtag(blocklist.entries);
    const ifNoneMatch = event.headers?.['if-none-match'];
    if (
      ifNoneMatch
        ?.split(',')
        .some((tag) => tag.trim().replace(/^W\//, '') === etag)
    )
      return notModified(etag);
    const headers = {
      etag,
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
    };
    const response = ok(blocklist, headers);
    const body = response.body ?? '';
    if (
      !acceptsGzip(event.headers?.['accept-encoding']) ||
      body.length < GZIP_MIN_BYTES
    )
      return response;
    // API Gateway HTTP APIs carry binary bodies base64-encoded and decode them on the way out.
    return {
      ...response,
      headers: { ...response.headers, 'content-encoding': 'gzip' },
      body: gzipSync(body).toString('base64'),
      isBase64Encoded: true,
    };
  });
}

export const handler = lambdaEntry(
  () => createApiRuntime(process.env),
  createHandler,
);
