/** Runs one of the project's bins as a separate process, as a user would; bounded. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Safety net only: a run that hangs is killed, and the test then fails on its exit code. */
const RUN_BOUND_MS = 60_000;

export type BinRun = { code: number | null; stdout: string; stderr: string };

/**
 * Starts a bin: `command` is a .ts entry (run through tsx) or a built .mjs file
 * (run by node alone). `exited` resolves with its exit code and output.
 */
export function startBin(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
  boundMs = RUN_BOUND_MS,
) {
  const nodeArgs = command.endsWith('.ts')
    ? ['--import', 'tsx', command]
    : [command];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const bound = setTimeout(() => child.kill('SIGKILL'), boundMs);
  const exited = new Promise<BinRun>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(bound);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Runs a bin to its end. */
export function runBin(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<BinRun> {
  return startBin(command, args, env).exited;
}
