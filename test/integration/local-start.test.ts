import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Command lines of every process on the machine (Linux /proc). */
async function commandLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.push((await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' '));
    } catch {
      // the process ended while we looked
    }
  }
  return lines;
}

function waitForOutput(child: ChildProcess, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(text)) resolve(output);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code, signal) => reject(new Error(`npm start exited (${code ?? signal}) before "${text}":\n${output}`)));
  });
}

describe('npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops the API and DynamoDB Local on %s to the npm process: no java left, both ports free',
    async (signal) => {
      const [port, dynamodbPort] = [await freePort(), await freePort()];
      const child = spawn('npm', ['start', '--', '--port', String(port), '--dynamodb-port', String(dynamodbPort), '--no-schedule'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await waitForOutput(child, 'relaywatch status center is running');
        expect(await portAnswers(port)).toBe(true);
        expect(await portAnswers(dynamodbPort)).toBe(true);
        const javaOfThisRun = (lines: string[]) => lines.filter((line) => line.includes('DynamoDBLocal') && line.includes(`-port ${dynamodbPort}`));
        expect(javaOfThisRun(await commandLines())).toHaveLength(1);

        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        child.kill(signal);
        // npm waits for its child, which waits for java: once npm is gone, everything is.
        await exited;
        expect(javaOfThisRun(await commandLines())).toEqual([]);
        expect(await portAnswers(port)).toBe(false);
        expect(await portAnswers(dynamodbPort)).toBe(false);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  );
});

describe('the local programs\' flags', () => {
  const run = (script: string, args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, timeout: 60_000 }).then(
      (result) => ({ code: 0, ...result }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it.each([
    ['infra/local/start.ts', 'relaywatch'],
    ['clients/test-stream/bin.ts', 'relaywatch-test-stream'],
  ])('%s prints its version, and refuses an unknown flag with exit 2 and its usage (no stack trace)', async (script, name) => {
    const version = await run(script, ['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${name} ${packageJson.version}\n` });
    const unknown = await run(script, ['--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--no-such-flag'");
    expect(unknown.stderr).toContain('Usage:');
    expect(unknown.stderr).not.toMatch(/\n\s+at /);
  });
});
