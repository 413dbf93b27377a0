/**
 * Preloaded (node --import) into a process that must do no I/O and wire
 * nothing: the first socket connect, fetch, DNS lookup, child process or read
 * of a runtime variable ends the process at once with NO_IO_EXIT_CODE and
 * names the attempt on stderr, so a test sees the attempt even when the
 * caller would have caught the error.
 */
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

export const NO_IO_EXIT_CODE = 86;

const refuse =
  (what: string) =>
  (...args: unknown[]): never => {
    process.stderr.write(
      `I/O attempted: ${what} ${JSON.stringify(args[0] ?? null)}\n`,
    );
    process.exit(NO_IO_EXIT_CODE);
  };

net.Socket.prototype.connect = refuse('socket connect') as never;
globalThis.fetch = refuse('fetch') as never;
dns.lookup = refuse('dns lookup') as never;
dns.resolve = refuse('dns resolve') as never;
dns.promises.lookup = refuse('dns lookup') as never;
dns.promises.resolve = refuse('dns resolve') as never;
dgram.createSocket = refuse('udp socket') as never;
childProcess.spawn = refuse('spawn') as never;
childProcess.exec = refuse('exec') as never;
childProcess.execFile = refuse('execFile') as never;

/**
 * The variables a handler's runtime is built from (functions/core/config.ts
 * and the log fields). Reading one, or listing the environment, means
 * something was wired. Libraries may read their own flags (middy reads one).
 */
const WIRING_VARIABLE =
  /^(RELAYWATCH_\w+|TABLE_NAME|DYNAMODB_ENDPOINT|LOG_LEVEL|AWS_REGION|AWS_LAMBDA_FUNCTION_NAME|POWERTOOLS_SERVICE_NAME)$/;
const environment = process.env;
process.env = new Proxy(environment, {
  get(target, name, receiver) {
    if (typeof name === 'string' && WIRING_VARIABLE.test(name))
      refuse('environment read')(name);
    return Reflect.get(target, name, receiver);
  },
  ownKeys: (target) => {
    refuse('environment listed')(Object.keys(target).length);
    return Reflect.ownKeys(target);
  },
});

// Named imports of the built-ins (import { lookup } from 'node:dns') see the replacements too.
syncBuiltinESMExports();
