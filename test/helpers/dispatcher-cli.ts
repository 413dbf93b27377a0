/** Runs the dispatcher CLI in process and collects what it prints. */
import type { DispatchIo } from '../../clients/dispatcher/cli.js';
import { runDispatch } from '../../clients/dispatcher/cli.js';

export type CliRun = {
  code: number;
  stdout: string;
  stderr: string;
  output: any;
};

export async function runCli(
  argv: string[],
  io: Partial<Omit<DispatchIo, 'argv'>> = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runDispatch({
    argv,
    env: {},
    ...io,
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  const lines = stdout.trim().split('\n');
  let output: any;
  try {
    output = lines.length === 1 ? JSON.parse(lines[0] ?? '') : undefined;
  } catch {
    output = undefined;
  }
  return { code, stdout, stderr, output };
}
