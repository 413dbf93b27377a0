import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort, portOpen } from '../../../../infra/local/ports.js';
import packageJson from '../../../../package.json' with { type: 'json' };
import { runBin } from '../../../helpers/run-bin.js';

const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));

/** Command lines of every process on the machine (Linux /proc). */
async function commandLines(): Promise<string[]> {
  const lines: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      lines.push(
        (await readFile(`/proc/${entry}/cmdline`, 'utf8'))
          .split('\0')
          .join(' '),
      );
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
    child.once('exit', (code, signal) =>
      reject(
        new Error(
          `npm start exited (${code ?? signal}) before "${text}":\n${output}`,
        ),
      ),
    );
  });
}

describe('npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops the API and DynamoDB Local on %s to the npm process: no java left, both ports free',
    async (signal) => {
      const [port, dynamodbPort] = [await freePort(), await freePort()];
      const child = spawn(
        'npm',
        [
          'start',
          '--',
          '--port',
          String(port),
          '--dynamodb-port',
          String(dynamodbPort),
          '--no-schedule',
        ],
        {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      try {
        await waitForOutput(child, 'relaywatch status center is running');
        expect(await portOpen(port)).toBe(true);
        expect(await portOpen(dynamodbPort)).toBe(true);
        const javaOfThisRun = (lines: string[]) =>
          lines.filter(
            (line) =>
              line.includes('DynamoDBLocal') &&
              line.includes(`-port ${dynamodbPort}`),
          );
        expect(javaOfThisRun(await commandLines())).toHaveLength(1);

        const exited = new Promise<number | null>((resolve) =>
          child.once('exit', (code) => resolve(code)),
        );
        child.kill(signal);
        // npm waits for its child, which waits for java: once npm is gone, everything is.
        await exited;
        expect(javaOfThisRun(await commandLines())).toEqual([]);
        expect(await portOpen(port)).toBe(false);
        expect(await portOpen(dynamodbPort)).toBe(false);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  );
});

describe('npm start and metric lines', () => {
  // Off by default: test/integration/functions/metrics.test.ts (in process, no second npm start).
  it('appends the EMF lines of an aggregation to the file --metrics-file names, not to the terminal', async () => {
    const [port, dynamodbPort] = [await freePort(), await freePort()];
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-metrics-'));
    const file = join(dir, 'metrics.jsonl');
    const child = spawn(
      'npm',
      [
        'start',
        '--',
        '--port',
        String(port),
        '--dynamodb-port',
        String(dynamodbPort),
        '--no-schedule',
        '--metrics-file',
        file,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const banner = await waitForOutput(
        child,
        'relaywatch status center is running',
      );
      const admin = banner.match(/^\s+admin\s+(\S+)/m)?.[1];
      const response = await fetch(
        `http://127.0.0.1:${port}/_local/run/aggregate`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${admin}`,
            'content-type': 'application/json',
          },
          body: '{}',
        },
      );
      expect(response.status).toBe(200);
      const exited = new Promise<void>((resolve) =>
        child.once('exit', () => resolve()),
      );
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk));
      child.kill('SIGTERM');
      await exited;
      expect(`${banner}${output}`).not.toContain('"_aws"');
      const lines = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(lines).toContainEqual(
        expect.objectContaining({ AggregationRuns: 1, service: 'relaywatch' }),
      );
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the local programs' flags", () => {
  const run = (script: string, args: string[]) => runBin(script, args);

  it.each([
    ['infra/local/start.ts', 'relaywatch', 'npm start'],
    [
      'clients/test-stream/bin.ts',
      'relaywatch-test-stream',
      'relaywatch-test-stream',
    ],
  ])(
    '%s prints its version, and refuses an unknown flag with exit 2, its own name and its usage (no stack trace)',
    async (script, name, program) => {
      const version = await run(script, ['--version']);
      expect(version).toMatchObject({
        code: 0,
        stdout: `${name} ${packageJson.version}\n`,
      });
      const unknown = await run(script, ['--no-such-flag']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("Unknown option '--no-such-flag'");
      // Its own name, not the operator CLI's (`relaywatch:`).
      expect(unknown.stderr.split('\n')[0]).toBe(
        `${program}: Unknown option '--no-such-flag'`,
      );
      expect(unknown.stderr).toContain('Usage:');
      expect(unknown.stderr).not.toMatch(/\n\s+at /);
    },
  );
});
