/**
 * THE table of what runs where: every HTTP route and schedule, read by the CDK
 * stack (infra/cloud) and by the local runtime (infra/local), so the two cannot
 * drift. Data only: `entry` is a path under functions/, imported lazily.
 */

export type Role = 'reporter' | 'reader' | 'admin';
export type TableAccess = 'read' | 'write' | 'readWrite';

export type HttpRoute = {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** API Gateway syntax: /v1/ips/{ip} */
  path: string;
  role: Role;
  entry: string;
  table: TableAccess;
};

export type Schedule = {
  /** EventBridge rate expression body: rate(<rate>). */
  rate: string;
  everyMs: number;
  entry: string;
  table: TableAccess;
  /** Lambda timeout: a run may sleep out the grace and then catch up. */
  timeoutSeconds: number;
};

/** A consumer of the table's DynamoDB stream (NEW_AND_OLD_IMAGES). */
export type StreamConsumer = { entry: string; table: TableAccess; batchSize: number };

/** Which roles a route's role admits: admin may do what a reader may. */
export const ROLE_ADMITS: Record<Role, readonly Role[]> = {
  reporter: ['reporter'],
  reader: ['reader', 'admin'],
  admin: ['admin'],
};

export const routes = {
  postHeartbeats: { method: 'POST', path: '/v1/heartbeats', role: 'reporter', entry: 'handlers/post-heartbeats.ts', table: 'write' },
  getBlocklist: { method: 'GET', path: '/v1/blocklist', role: 'reader', entry: 'handlers/get-blocklist.ts', table: 'read' },
  getIp: { method: 'GET', path: '/v1/ips/{ip}', role: 'reader', entry: 'handlers/get-ip.ts', table: 'read' },
  putBan: { method: 'PUT', path: '/v1/bans/{ip}', role: 'admin', entry: 'handlers/put-ban.ts', table: 'readWrite' },
  deleteBan: { method: 'DELETE', path: '/v1/bans/{ip}', role: 'admin', entry: 'handlers/delete-ban.ts', table: 'readWrite' },
  getEvents: { method: 'GET', path: '/v1/events', role: 'reader', entry: 'handlers/get-events.ts', table: 'read' },
  getFleet: { method: 'GET', path: '/v1/fleet', role: 'reader', entry: 'handlers/get-fleet.ts', table: 'read' },
} as const satisfies Record<string, HttpRoute>;

/**
 * A route anyone may call: no token, no table, no secrets. Only for what a
 * browser must load before it has a token (the dashboard page, which then
 * reads the routes above with the reader's token).
 */
export type PublicRoute = { method: 'GET'; path: string; entry: string };

export const publicRoutes = {
  getDashboard: { method: 'GET', path: '/dashboard', entry: 'handlers/get-dashboard.ts' },
} as const satisfies Record<string, PublicRoute>;

export const schedules = {
  aggregate: { rate: '1 minute', everyMs: 60_000, entry: 'handlers/aggregate.ts', table: 'readWrite', timeoutSeconds: 120 },
} as const satisfies Record<string, Schedule>;

export const streamConsumers = {
  /** Records the end of every ban that DynamoDB's TTL removed, as an "expiry" event. */
  banExpiry: { entry: 'handlers/ban-stream.ts', table: 'write', batchSize: 100 },
} as const satisfies Record<string, StreamConsumer>;
