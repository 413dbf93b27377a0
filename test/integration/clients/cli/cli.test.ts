import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../../../clients/cli/cli.js';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import { ROOT, runBin } from '../../../helpers/run-bin.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

const CLI = 'clients/cli/bin.ts';
const HEALTHY = [
  '198.51.100.1',
  '198.51.100.2',
  '198.51.100.3',
  '198.51.100.4',
];
const BROKEN = '198.51.100.5';

function heartbeats(ip: string, status: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    ip,
    process: `ffmpeg-${i}`,
    status,
    origin: `rtmp://origin-a.example.net/live/s${i}`,
    ...(status === 'connect_failed' ? { detail: 'Connection timed out' } : {}),
  }));
}

describe('the relaywatch CLI against the local status center', () => {
  // Entered 20 s into the current minute; the test moves the server's clock by hand.
  const minute = minuteOf(Date.now());
  let now = minuteStart(minute) + 20_000;
  let center: TestStatusCenter;
  let env: { admin: Record<string, string>; reader: Record<string, string> };

  /** The ban's end as the CLI prints it (ISO, whole seconds), read from the API. */
  const banEnd = async (ip: string) => {
    const ban = (
      await apiClient(center)('GET', `/v1/ips/${ip}`, { role: 'reader' })
    ).json.ban;
    return String(ban.until).replace(/\.\d{3}Z$/, 'Z');
  };
  const cli = (args: string[], as: 'admin' | 'reader' = 'admin') =>
    runBin(CLI, args, env[as]);

  beforeAll(async () => {
    center = await startStatusCenter({ overrides: { now: () => now } });
    env = {
      admin: {
        RELAYWATCH_URL: center.url,
        RELAYWATCH_TOKEN: center.tokens.admin,
      },
      reader: {
        RELAYWATCH_URL: center.url,
        RELAYWATCH_TOKEN: center.tokens.reader,
      },
    };
    // Four machines relay fine; the fifth cannot reach the origins they reach: an automatic ban.
    const api = apiClient(center);
    for (const ip of HEALTHY)
      expect(await postHeartbeats(api, heartbeats(ip, 'ok', 12))).toBe(202);
    expect(
      await postHeartbeats(api, heartbeats(BROKEN, 'connect_failed', 12)),
    ).toBe(202);
    now = minuteStart(minute + 1) + 15_000;
    await center.aggregate(new Date(now).toISOString());
  });
  afterAll(async () => center?.stop());

  it('explains an automatic ban in words with why: its rule, reason, end, evidence and event', async () => {
    const run = await cli(['why', BROKEN], 'reader');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(EXIT.ok);
    const until = await banEnd(BROKEN);
    expect(
      run.stdout.startsWith(`${BROKEN} is BANNED until ${until} (in `),
    ).toBe(true);
    expect(run.stdout).toContain('An automatic ban (rule fail-ratio)');
    expect(run.stdout).toContain('connect failures 12/12 (100%) >= 50%');
    expect(run.stdout).toContain('12 of its 12 counted samples');
    expect(run.stdout).toMatch(
      /relays: 12 connect_failed; probes: none; 1 origin$/m,
    );
    expect(run.stdout).toMatch(
      /banned until \S+: 12 of 12 counted samples failed to connect \(100%\)/,
    );
  });

  it('says a healthy IP is not banned, with its last minute of evidence', async () => {
    const run = await cli(['why', HEALTHY[0] as string], 'reader');
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toContain(`${HEALTHY[0]} is not banned.`);
    expect(run.stdout).toMatch(
      /0 of 12 counted samples failed to connect \(0%\)/,
    );
  });

  it('lists the automatic ban with bans, and the fleet with one verdict per IP', async () => {
    const bans = await cli(['bans'], 'reader');
    expect(bans.code).toBe(EXIT.ok);
    const until = (await banEnd(BROKEN)).replaceAll('.', '\\.');
    expect(bans.stdout).toMatch(
      new RegExp(
        `${BROKEN.replaceAll('.', '\\.')}\\s+${until} \\(in [^)]+\\)\\s+automatic\\s+100%\\s+12\\s+connect failures`,
      ),
    );
    const fleet = await cli(['fleet', '--json'], 'reader');
    expect(fleet.code).toBe(EXIT.ok);
    expect(
      JSON.parse(fleet.stdout).banned.map((ban: { ip: string }) => ban.ip),
    ).toEqual([BROKEN]);
    const table = await cli(['fleet'], 'reader');
    expect(
      table.stdout.split('\n').filter((line) => line.includes(' ok ')).length,
    ).toBe(HEALTHY.length);
    expect(table.stdout).toMatch(
      new RegExp(
        `${BROKEN.replaceAll('.', '\\.')}\\s+banned\\s+100%\\s+12\\s+12`,
      ),
    );
  });

  it('shows the status: last aggregated minute, counts and no flags', async () => {
    const run = await cli(['status'], 'reader');
    expect(run.code).toBe(EXIT.ok);
    expect(run.stdout).toMatch(/reporting IPs:\s+5/);
    expect(run.stdout).toMatch(/bans in force:\s+1/);
    expect(run.stdout).toMatch(/aggregation lag:\s+0 min/);
  });

  it('bans a small CIDR address by address, saying so, and unbans one of them', async () => {
    const ban = await cli([
      'ban',
      '203.0.113.8/30',
      '--for',
      '15m',
      '--reason',
      'rack maintenance',
    ]);
    expect(ban.code).toBe(EXIT.ok);
    expect(ban.stderr).toContain(
      'banning the 4 addresses of 203.0.113.8/30 one by one',
    );
    expect(ban.stdout.trim().split('\n')).toHaveLength(4);
    // The end is the server's time (its clock is the test's) plus 15 minutes; "(in …)" counts from the CLI's own clock.
    const until = new Date(now + 15 * 60_000)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    expect(ban.stdout).toMatch(
      new RegExp(
        `banned 203\\.0\\.113\\.11 until ${until} \\(in \\d+m( \\d+s)?\\): rack maintenance`,
      ),
    );
    const list = JSON.parse((await cli(['bans', '--json'])).stdout);
    expect(
      list.entries
        .filter((entry: { manual: boolean }) => entry.manual)
        .map((e: { ip: string }) => e.ip),
    ).toEqual(['203.0.113.10', '203.0.113.11', '203.0.113.8', '203.0.113.9']);
    now += 1_000;
    const unban = await cli(['unban', '203.0.113.9']);
    expect(unban.code).toBe(EXIT.ok);
    expect(unban.stdout).toBe('lifted the ban on 203.0.113.9\n');
    const again = await cli(['unban', '203.0.113.9']);
    expect(again.code).toBe(EXIT.notFound);
    expect(again.stderr).toContain('no ban in force for 203.0.113.9');
  });

  it('refuses a CIDR over 256 addresses before sending anything', async () => {
    const run = await cli(['ban', '10.0.0.0/23', '--for', '1h']);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain(
      '10.0.0.0/23 holds 512 addresses; the CLI bans at most 256',
    );
    expect(
      JSON.parse((await cli(['bans', '--json'])).stdout).entries.some(
        (e: { ip: string }) => e.ip.startsWith('10.'),
      ),
    ).toBe(false);
  });

  it('lists the events of one IP since a duration ago', async () => {
    const run = await cli(['events', '--ip', '203.0.113.9', '--since', '2h']);
    expect(run.code).toBe(EXIT.ok);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^AT\s+TYPE\s+SUBJECT\s+RULE\s+WHAT$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[1])).toEqual([
      'manual_unban',
      'manual_ban',
    ]);
  });

  it('exits 4 when a reader token tries to ban, and when the token is unknown', async () => {
    const reader = await cli(['ban', '192.0.2.1', '--for', '1m'], 'reader');
    expect(reader.code).toBe(EXIT.auth);
    expect(reader.stderr).toContain('403');
    const unknown = await runBin(CLI, [
      'bans',
      '--url',
      center.url,
      '--token',
      'not-a-token',
    ]);
    expect(unknown.code).toBe(EXIT.auth);
    expect(unknown.stderr).toContain('401');
  });

  it('exits 5 when nothing listens at the URL', async () => {
    const server = createServer();
    await new Promise<void>((resolve) =>
      server.listen(0, '127.0.0.1', resolve),
    );
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const run = await runBin(CLI, [
      'status',
      '--url',
      `http://127.0.0.1:${port}`,
      '--token',
      'x',
    ]);
    expect(run.code).toBe(EXIT.unavailable);
    expect(run.stderr).toContain(
      `cannot reach the status center at http://127.0.0.1:${port}`,
    );
  });

  it('issues a reporter token that reports for its machine only, and revokes it', async () => {
    const ip = '198.51.100.7';
    const issued = await cli(['token', 'issue', '--ip', ip]);
    expect(issued.code).toBe(EXIT.ok);
    const token = issued.stdout.trim();
    expect(issued.stderr).toContain(`reporter token for ${ip}`);
    const post = (body: unknown) =>
      fetch(`${center.url}/v1/heartbeats`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(body),
      });
    expect((await post({ ip, process: 'p1', status: 'ok' })).status).toBe(202);
    expect(
      (await post({ ip: '198.51.100.8', process: 'p1', status: 'ok' })).status,
    ).toBe(403);
    now += 1_000;
    const revoked = await cli(['token', 'revoke', '--ip', ip]);
    expect(revoked.code).toBe(EXIT.ok);
    expect(revoked.stdout).toContain(
      `revoked every reporter token issued to ${ip}`,
    );
    const events = await cli(['events', '--ip', ip, '--json']);
    expect(
      JSON.parse(events.stdout).events.map(
        (event: { type: string }) => event.type,
      ),
    ).toEqual(['reporter_token_revoked', 'reporter_token_issued']);
  });

  it.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['ban', '192.0.2.1', '--for', '90'], 'a duration with a unit'],
    [['ban', '192.0.2.1'], 'ban needs --for'],
    [['why'], '"why" takes one argument'],
    [['why', 'not-an-ip'], 'must be an IPv4 or IPv6 address'],
    [['bans', '--since', '2h'], '--since does not apply to "bans"'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [[], 'a command is required'],
  ])('exits 2 with a usage message for %j', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
  });

  it('prints help with -h and the version with --version, without a URL or token', async () => {
    const help = await runBin(CLI, ['-h']);
    expect(help.code).toBe(EXIT.ok);
    expect(help.stdout).toContain('why <ip>');
    expect(help.stdout).toContain('Exit codes:');
    const version = await runBin(CLI, ['--version']);
    expect(version.stdout).toMatch(/^relaywatch \d+\.\d+\.\d+\n$/);
  });
});

describe('npx relaywatch, typed in a terminal in the project directory', () => {
  // npm scripts (and so this test) get node_modules/.bin first in PATH, whose
  // node is the node@22 package; a terminal's PATH has the system's Node.
  const terminalPath = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !/node_modules[\\/]\.bin$/.test(dir))
    .join(delimiter);

  it.each([
    [['--version'], /^relaywatch \d+\.\d+\.\d+\n$/],
    [['--help'], /Exit codes:/],
  ])(
    'runs %j cleanly: no npm warning (EBADENGINE) on the Node npx runs on',
    async (args, output) => {
      // A fresh npm cache, as on a first run: npx then links the project into
      // its cache, and checks package.json engines against its own Node.
      const cache = await mkdtemp(join(tmpdir(), 'relaywatch-npx-'));
      try {
        const run = await promisify(execFile)('npx', ['relaywatch', ...args], {
          cwd: ROOT,
          env: {
            PATH: terminalPath,
            HOME: process.env.HOME ?? cache,
            npm_config_cache: cache,
            npm_config_offline: 'true',
            npm_config_update_notifier: 'false',
          },
          // Safety net only: a hung npx is killed and the test fails.
          timeout: 60_000,
        });
        expect(run.stderr).toBe('');
        expect(run.stdout).toMatch(output);
      } finally {
        await rm(cache, { recursive: true, force: true });
      }
    },
  );
});
