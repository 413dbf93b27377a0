import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTINGS } from '../../../../clients/agent/config.js';
import type { HeartbeatRecorder } from '../../../helpers/agent-harness.js';
import {
  startHeartbeatRecorder,
  waitFor,
} from '../../../helpers/agent-harness.js';
import { startBin as startAnyBin } from '../../../helpers/run-bin.js';

const RUN_BOUND_MS = 30_000;

/** Starts the bin as a user would (through tsx, on this Node); bounded. */
const startBin = (args: string[], env: Record<string, string>) =>
  startAnyBin('clients/agent/bin.ts', args, env, RUN_BOUND_MS);

describe('relaywatch-agent', () => {
  let recorder: HeartbeatRecorder;

  beforeAll(async () => {
    recorder = await startHeartbeatRecorder();
  });

  afterAll(async () => {
    await recorder?.stop();
  });

  it('explains every flag and environment variable with --help and exits 0', async () => {
    const run = await startBin(['--help'], {}).exited;

    expect(run.code).toBe(0);
    for (const setting of Object.values(SETTINGS)) {
      expect(run.stdout).toContain(`--${setting.flag}`);
      expect(run.stdout).toContain(setting.env);
    }
  });

  it('refuses to start with a bad setting, naming the variable, and exits 2', async () => {
    const run = await startBin([], { RELAYWATCH_URL: 'not a url' }).exited;

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('RELAYWATCH_URL (--url)');
    expect(run.stderr).toContain('RELAYWATCH_AGENT_TOKEN');
  });

  it('serves the job API, logs JSON lines on stderr, reports, and stops cleanly on SIGTERM', async () => {
    const agentToken = 'bin-test-agent-token-0123';
    const bin = startBin(
      ['--port', '0', '--interval', '0.5', '--probes', '127.0.0.1:9'],
      {
        RELAYWATCH_URL: recorder.url,
        RELAYWATCH_REPORTER_TOKEN: 'reporter-token',
        RELAYWATCH_AGENT_TOKEN: agentToken,
        RELAYWATCH_AGENT_IP: '192.0.2.44',
      },
    );
    try {
      const started = await waitFor(
        'the started log line',
        () => {
          const line = bin
            .output()
            .stderr.split('\n')
            .find((text) => text.includes('"agent started"'));
          return line ? (JSON.parse(line) as { url: string }) : undefined;
        },
        { timeoutMs: RUN_BOUND_MS },
      );
      const status = await fetch(`${started.url}/status`, {
        headers: { authorization: `Bearer ${agentToken}` },
      });
      await waitFor(
        'a probe heartbeat',
        () => recorder.received().some((h) => h.ip === '192.0.2.44'),
        { timeoutMs: 10_000 },
      );

      bin.child.kill('SIGTERM');
      const run = await bin.exited;

      expect(status.status).toBe(200);
      expect(run.code).toBe(0);
      const lines = run.stderr.trim().split('\n');
      expect(
        lines.every((line) => typeof JSON.parse(line).message === 'string'),
      ).toBe(true);
      expect(lines.at(-1)).toContain('"agent stopped"');
    } finally {
      bin.child.kill('SIGKILL');
    }
  });
});
