/**
 * THE table of what runs where: every HTTP route and schedule, read by the CDK
 * stack (infra/cloud) and by the local runtime (infra/local), so the two cannot
 * drift. Data only: `entry` is a path under functions/, imported lazily.
 */

import type { KeyScope } from './store/table.js';

export type Role = 'reporter' | 'reader' | 'admin';
export type TableAccess = 'read' | 'write' | 'readWrite';

/**
 * Which items a function may touch, as key scopes of store/table.ts: IAM
 * `dynamodb:LeadingKeys` conditions confine its writes (and its reads when
 * `reads` is set) to them. Unset: the whole table at its access level.
 */
export type KeyAccess = {
  writes?: readonly KeyScope[];
  reads?: readonly KeyScope[];
};

export type HttpRoute = KeyAccess & {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** API Gateway syntax: /v1/ips/{ip} */
  path: string;
  role: Role;
  entry: string;
  table: TableAccess;
  /** The function holds the reporter signing keys: it verifies or issues machine tokens. */
  reporterKeys?: boolean;
};

export type Schedule = KeyAccess & {
  /** EventBridge rate expression body: rate(<rate>). */
  rate: string;
  everyMs: number;
  entry: string;
  table: TableAccess;
  /** Lambda timeout: a run may sleep out the grace and then catch up. */
  timeoutSeconds: number;
  /** Lambda memory (MB): also its CPU share. The fleet bench sizes the aggregator's. */
  memoryMb: number;
};

/** A consumer of the table's DynamoDB stream (NEW_AND_OLD_IMAGES). */
export type StreamConsumer = KeyAccess & {
  entry: string;
  table: TableAccess;
  batchSize: number;
};

/** Which roles a route's role admits: admin may do what a reader may. */
export const ROLE_ADMITS: Record<Role, readonly Role[]> = {
  reporter: ['reporter'],
  reader: ['reader', 'admin'],
  admin: ['admin'],
};

export const routes = {
  postHeartbeats: {
    method: 'POST',
    path: '/v1/heartbeats',
    role: 'reporter',
    entry: 'handlers/post-heartbeats.ts',
    table: 'write',
    writes: ['heartbeats'],
    reads: ['revocations'],
    reporterKeys: true,
  },
  getBlocklist: {
    method: 'GET',
    path: '/v1/blocklist',
    role: 'reader',
    entry: 'handlers/get-blocklist.ts',
    table: 'read',
  },
  getIp: {
    method: 'GET',
    path: '/v1/ips/{ip}',
    role: 'reader',
    entry: 'handlers/get-ip.ts',
    table: 'read',
  },
  putBan: {
    method: 'PUT',
    path: '/v1/bans/{ip}',
    role: 'admin',
    entry: 'handlers/put-ban.ts',
    table: 'readWrite',
    writes: ['bans', 'events'],
    reads: ['bans'],
  },
  deleteBan: {
    method: 'DELETE',
    path: '/v1/bans/{ip}',
    role: 'admin',
    entry: 'handlers/delete-ban.ts',
    table: 'readWrite',
    writes: ['bans', 'events'],
    reads: ['bans'],
  },
  getEvents: {
    method: 'GET',
    path: '/v1/events',
    role: 'reader',
    entry: 'handlers/get-events.ts',
    table: 'read',
  },
  getFleet: {
    method: 'GET',
    path: '/v1/fleet',
    role: 'reader',
    entry: 'handlers/get-fleet.ts',
    table: 'read',
  },
  postReporterToken: {
    method: 'POST',
    path: '/v1/reporter-tokens',
    role: 'admin',
    entry: 'handlers/post-reporter-token.ts',
    table: 'write',
    writes: ['events'],
    reporterKeys: true,
  },
  deleteReporterTokens: {
    method: 'DELETE',
    path: '/v1/reporter-tokens/{ip}',
    role: 'admin',
    entry: 'handlers/delete-reporter-tokens.ts',
    table: 'write',
    writes: ['revocations', 'events'],
  },
} as const satisfies Record<string, HttpRoute>;

/**
 * A route anyone may call: no token, no table, no secrets. Only for what a
 * browser must load before it has a token (the dashboard page, which then
 * reads the routes above with the reader's token) and what tools load to
 * learn the API (its OpenAPI document).
 */
export type PublicRoute = { method: 'GET'; path: string; entry: string };

export const publicRoutes = {
  getDashboard: {
    method: 'GET',
    path: '/dashboard',
    entry: 'handlers/get-dashboard.ts',
  },
  /** The OpenAPI document: public like the page, since it describes the API and holds nothing secret. */
  getOpenapi: {
    method: 'GET',
    path: '/v1/openapi.json',
    entry: 'handlers/get-openapi.ts',
  },
} as const satisfies Record<string, PublicRoute>;

export const schedules = {
  aggregate: {
    rate: '1 minute',
    everyMs: 60_000,
    entry: 'handlers/aggregate.ts',
    table: 'readWrite',
    timeoutSeconds: 120,
    memoryMb: 1024,
  },
} as const satisfies Record<string, Schedule>;

export const streamConsumers = {
  /** Records the end of every ban that DynamoDB's TTL removed, as an "expiry" event. */
  banExpiry: {
    entry: 'handlers/ban-stream.ts',
    table: 'write',
    writes: ['events'],
    batchSize: 100,
  },
} as const satisfies Record<string, StreamConsumer>;
