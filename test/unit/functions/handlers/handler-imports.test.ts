import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  publicRoutes,
  routes,
  schedules,
  streamConsumers,
} from '../../../../functions/routes.js';

const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
const PRELOAD = fileURLToPath(
  new URL('../../../helpers/no-io-preload.ts', import.meta.url),
);

/** Every Lambda entry: the HTTP routes, the public pages, the schedules and the stream consumers. */
const ENTRIES = [
  ...Object.values(routes),
  ...Object.values(publicRoutes),
  ...Object.values(schedules),
  ...Object.values(streamConsumers),
].map((spec) => spec.entry);

/** Safety net only: an import that hangs is killed, and the test then fails on its exit code. */
const IMPORT_BOUND_MS = 60_000;

/**
 * Imports `entry` in a fresh node with only PATH in its environment and the
 * no-I/O preload, and reports how the process ended.
 */
function importBare(entry: string) {
  const url = pathToFileURL(join(ROOT, 'functions', entry)).href;
  const script = `const m = await import(${JSON.stringify(url)}); process.stdout.write(typeof m.handler);`;
  return new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve) => {
      const child = execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          pathToFileURL(PRELOAD).href,
          '--input-type=module',
          '-e',
          script,
        ],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '' },
          timeout: IMPORT_BOUND_MS,
          killSignal: 'SIGKILL',
        },
        (_error, stdout, stderr) =>
          resolve({ code: child.exitCode, stdout, stderr }),
      );
    },
  );
}

describe('a handler module imported by a bare node process', () => {
  it.each(ENTRIES)(
    'loads %s with an empty environment, exports handler, and does no I/O',
    async (entry) => {
      // The preload ends the process (exit 86, the attempt on stderr) at any
      // socket, fetch, DNS lookup, child process or read of a runtime variable;
      // the process must also end by itself, so nothing was left running.
      expect(await importBare(entry)).toEqual({
        code: 0,
        stdout: 'function',
        stderr: '',
      });
    },
    // A cold node with tsx and the AWS SDK takes seconds on a loaded machine.
    IMPORT_BOUND_MS + 5_000,
  );
});
