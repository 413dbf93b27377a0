import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { portOpen } from '../../../../infra/local/ports.js';
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

/**
 * `npm start` on ports of its own choosing (port 0 for both: a port picked
 * here and passed would be free only until something else takes it); answers
 * once its banner names them.
 */
async function npmStart(
  extra: readonly string[] = [],
  env: Record<string, string> = {},
) {
  const child = spawn(
    'npm',
    [
      'start',
      '--',
      '--port',
      '0',
      '--dynamodb-port',
      '0',
      '--no-schedule',
      ...extra,
    ],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    const banner = await waitForOutput(child, 'Ctrl-C stops everything.');
    const portOf = (name: string) =>
      Number(
        banner.match(
          new RegExp(`^\\s+${name}\\s+http://127\\.0\\.0\\.1:(\\d+)`, 'm'),
        )?.[1],
      );
    return {
      child,
      banner,
      port: portOf('API'),
      dynamodbPort: portOf('DynamoDB'),
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

describe('npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops the API and DynamoDB Local on %s to the npm process: no java left, both ports free',
    async (signal) => {
      const { child, port, dynamodbPort } = await npmStart();
      try {
        expect(port).toBeGreaterThan(0);
        expect(dynamodbPort).toBeGreaterThan(0);
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
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-metrics-'));
    const file = join(dir, 'metrics.jsonl');
    // One pass, not a minute of them: the run's metric lines are written when it ends.
    const { child, banner, port } = await npmStart(['--metrics-file', file], {
      RELAYWATCH_AGGREGATE_WAITS: 'false',
    }).catch(async (error: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw error;
    });
    try {
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
