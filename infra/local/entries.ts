import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const FUNCTIONS_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../functions',
);

/**
 * What every entry of functions/routes.ts exports: `handler` for Lambda, which
 * wires its runtime on the first call, and `createHandler` for whoever already
 * holds a runtime (the local status center, tests).
 */
type EntryModule<R, H> = {
  createHandler(runtime: R): H;
  handler: unknown;
};

/**
 * Imports an entry of the route table (`entry` is a path under functions/, as
 * in routes.ts). Importing wires nothing: no environment is read and no I/O
 * is done until a handler is called.
 */
async function importEntry<R, H>(entry: string): Promise<EntryModule<R, H>> {
  return (await import(
    pathToFileURL(join(FUNCTIONS_DIR, entry)).href
  )) as EntryModule<R, H>;
}

/** The function an entry serves with `runtime`: its module's createHandler(runtime). */
export async function entryHandler<R, H>(entry: string, runtime: R) {
  return (await importEntry<R, H>(entry)).createHandler(runtime);
}
