import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
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
  // Importing a handler wires nothing (its runtime is built on the first
  // call), so no environment is needed here.
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
