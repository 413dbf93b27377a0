import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  publicRoutes,
  routes,
  schedules,
  streamConsumers,
} from '../../functions/routes.js';

const ENTRIES = [
  ...Object.values(routes),
  ...Object.values(publicRoutes),
  ...Object.values(schedules),
  ...Object.values(streamConsumers),
].map((spec) => spec.entry);

describe('the route table', () => {
  // Importing a handler wires its runtime at module load: give it a config that
  // parses, placeholder tokens and a loopback endpoint it never calls.
  beforeAll(() => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('TABLE_NAME', 'relaywatch-entries-test');
    vi.stubEnv('DYNAMODB_ENDPOINT', 'http://127.0.0.1:9');
    vi.stubEnv('RELAYWATCH_TOKEN_SECRETS', '');
    for (const role of ['REPORTER', 'READER', 'ADMIN'])
      vi.stubEnv(`RELAYWATCH_${role}_TOKEN`, `placeholder-${role}`);
  });
  afterAll(() => vi.unstubAllEnvs());

  it.each(ENTRIES)(
    'names a file, %s, that exports a handler function',
    async (entry) => {
      const module = (await import(
        pathToFileURL(
          new URL(`../../functions/${entry}`, import.meta.url).pathname,
        ).href
      )) as {
        handler?: unknown;
      };
      expect(typeof module.handler).toBe('function');
    },
  );
});
