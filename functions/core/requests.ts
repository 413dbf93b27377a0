/**
 * Request schemas of routes whose bodies or queries are not a domain object of
 * their own, kept here (not in the handlers) so the OpenAPI document can be
 * built from them without loading a handler and its runtime.
 */
import * as z from 'zod/mini';
import { canonicalIp } from '#contract/ip';
import { EVENT_QUERY_LIMITS } from './events.js';

/** Query of GET /v1/events. */
export const eventQuerySchema = z.object({
  ip: z.optional(
    z.string().check(
      z.refine((ip) => canonicalIp(ip) !== undefined, {
        message: 'must be an IPv4 or IPv6 address',
      }),
    ),
  ),
  since: z.optional(
    z.string().check(
      z.refine((since) => !Number.isNaN(Date.parse(since)), {
        message: 'must be an ISO 8601 time, e.g. 2026-11-24T14:00:00Z',
      }),
    ),
  ),
  limit: z.optional(
    z.string().check(
      z.regex(/^\d+$/, 'must be a whole number'),
      z.refine(
        (limit) =>
          Number(limit) >= 1 && Number(limit) <= EVENT_QUERY_LIMITS.maxLimit,
        {
          message: `must be from 1 to ${EVENT_QUERY_LIMITS.maxLimit}`,
        },
      ),
    ),
  ),
});

/** Body of POST /v1/reporter-tokens. */
export const reporterTokenRequestSchema = z.object({
  ip: z.string().check(
    z.maxLength(45),
    z.refine((ip) => canonicalIp(ip) !== undefined, {
      message: 'must be an IPv4 or IPv6 address',
    }),
  ),
});
