/**
 * A Lambda entry that wires nothing when its module is imported: the runtime
 * (config, SDK clients, credentials) is built on the first invocation and then
 * reused by every later one in the same process (a Lambda execution
 * environment). So importing a handler module reads no environment and does
 * no I/O: a test, the local runtime or a bundler check may load it bare.
 */

/** Any function: `never[]` parameters admit every parameter list. */
type Invocable = (...args: never[]) => unknown;

/**
 * The exported `handler` of a Lambda entry: `init` builds the runtime once,
 * `createHandler` turns it into the function that serves each invocation.
 * Invocations that arrive while `init` runs wait for the same attempt. A
 * failed `init` is not remembered: its invocations fail, and the next one
 * tries again (a Secrets Manager or network blip must not wedge the
 * environment until Lambda recycles it).
 *
 * @example
 * export const handler = lambdaEntry(
 *   () => createApiRuntime(process.env),
 *   createHandler,
 * );
 */
export function lambdaEntry<R, H extends Invocable>(
  init: () => R | Promise<R>,
  createHandler: (runtime: R) => H,
): (...args: Parameters<H>) => Promise<Awaited<ReturnType<H>>> {
  let ready: Promise<H> | undefined;
  return async (...args: Parameters<H>): Promise<Awaited<ReturnType<H>>> => {
    if (!ready) {
      const attempt = (async () => createHandler(await init()))();
      ready = attempt;
      attempt.catch(() => {
        if (ready === attempt) ready = undefined;
      });
    }
    const handle = await ready;
    return (await handle(...args)) as Awaited<ReturnType<H>>;
  };
}
