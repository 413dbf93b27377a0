/** Runs the dispatcher CLI in process and collects what it prints. */
import type { DispatchIo } from '../../clients/dispatcher/cli.js';
import { runDispatch } from '../../clients/dispatcher/cli.js';
import { AGENT_TOKEN, JOB } from './dispatcher-fakes.js';

/** The bin, for tests that run it as its own process with run-bin.ts (from the project root). */
export const DISPATCH_BIN = 'clients/dispatcher/bin.ts';

/** The flags that give the CLI the JOB. */
export const JOB_FLAGS = [
  '--id',
  JOB.id,
  '--source',
  JOB.source,
  '--target',
  JOB.target,
];

/** The variables that point the CLI at `center` with its reader token, and give it the agent token. */
export const dispatchEnv = (
  center: { url: string; tokens: { reader: string } },
  agentToken = AGENT_TOKEN,
) => ({
  RELAYWATCH_URL: center.url,
  RELAYWATCH_READER_TOKEN: center.tokens.reader,
  RELAYWATCH_AGENT_TOKEN: agentToken,
});

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
