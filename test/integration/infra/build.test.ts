import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../../clients/cli/cli.js';
import { BUILT_BINS, buildBins } from '../../../infra/build.js';
import packageJson from '../../../package.json' with { type: 'json' };
import { waitFor } from '../../helpers/agent-harness.js';
import { runBin } from '../../helpers/run-bin.js';
import type { TestStatusCenter } from '../../helpers/status-center.js';
import { apiClient, startStatusCenter } from '../../helpers/status-center.js';

const NAMES = Object.keys(BUILT_BINS) as (keyof typeof BUILT_BINS)[];

describe('npm run build', () => {
  // Built outside the repository: nothing in node_modules is in reach of the bundles.
  const outdir = mkdtempSync(join(tmpdir(), 'relaywatch-dist-'));
  const built = (name: string) => join(outdir, `${name}.mjs`);

  beforeAll(async () => {
    await buildBins(outdir);
  });
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it.each(NAMES)(
    'emits %s, which prints its version with node alone',
    async (name) => {
      const run = await runBin(built(name), ['--version']);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`${name} ${packageJson.version}\n`);
    },
  );

  it.each(NAMES)(
    'emits %s, which prints its help with -h and refuses an unknown flag with exit 2',
    async (name) => {
      const help = await runBin(built(name), ['-h']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(name);
      const unknown = await runBin(built(name), ['--no-such-flag']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("Unknown option '--no-such-flag'");
    },
  );

  describe('against the local status center', () => {
    let center: TestStatusCenter;
    beforeAll(async () => {
      center = await startStatusCenter();
    });
    afterAll(async () => center?.stop());

    it('runs the built agent: its probe heartbeats reach the status center', async () => {
      const ip = '192.0.2.91';
      const port = new URL(center.url).port;
      const agent = spawn(
        process.execPath,
        [
          built('relaywatch-agent'),
          '--port',
          '0',
          '--interval',
          '0.5',
          '--probes',
          `127.0.0.1:${port}`,
        ],
        {
          env: {
            PATH: process.env.PATH ?? '',
            RELAYWATCH_URL: center.url,
            RELAYWATCH_REPORTER_TOKEN: center.tokens.reporter,
            RELAYWATCH_AGENT_TOKEN: 'built-agent-token-0123456789',
            RELAYWATCH_AGENT_IP: ip,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      agent.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) =>
        agent.once('exit', resolve),
      );
      try {
        const api = apiClient(center);
        await waitFor(
          'a probe heartbeat of the built agent',
          async () => {
            const view = await api('GET', `/v1/ips/${ip}`, { role: 'reader' });
            return view.json.minutes.some(
              (minute: { probe: { ok: number } }) => minute.probe.ok > 0,
            );
          },
          { timeoutMs: 60_000, everyMs: 200 },
        );
      } catch (error) {
        throw new Error(`${(error as Error).message}; agent stderr: ${stderr}`);
      } finally {
        agent.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    });

    it('runs the built CLI: bans lists a ban placed through it', async () => {
      const env = {
        RELAYWATCH_URL: center.url,
        RELAYWATCH_TOKEN: center.tokens.admin,
      };
      expect(
        (
          await runBin(
            built('relaywatch'),
            ['ban', '203.0.113.44', '--for', '5m', '--reason', 'built cli'],
            env,
          )
        ).code,
      ).toBe(EXIT.ok);
      const bans = await runBin(built('relaywatch'), ['bans'], env);
      expect(bans.code).toBe(EXIT.ok);
      expect(bans.stdout).toMatch(/203\.0\.113\.44 .* manual .* built cli/);
    });
  });
});
