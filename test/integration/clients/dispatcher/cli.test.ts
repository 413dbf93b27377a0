import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../../../clients/dispatcher/cli.js';
import {
  DISPATCH_BIN,
  dispatchEnv,
  JOB_FLAGS,
  runCli,
} from '../../../helpers/dispatcher-cli.js';
import { ban, inAnHour, JOB } from '../../../helpers/dispatcher-fakes.js';
import type {
  FakeAgent,
  FakeStatusCenter,
} from '../../../helpers/dispatcher-servers.js';
import {
  agentFlags,
  startFakeAgent,
  startFakeStatusCenter,
} from '../../../helpers/dispatcher-servers.js';
import { runBin } from '../../../helpers/run-bin.js';

describe('relaywatch-dispatch against a status center and agents over loopback', () => {
  let center: FakeStatusCenter;
  let agents: FakeAgent[];
  let env: Record<string, string>;

  beforeEach(async () => {
    center = await startFakeStatusCenter();
    agents = await Promise.all([
      startFakeAgent(),
      startFakeAgent(),
      startFakeAgent(),
    ]);
    env = dispatchEnv(center);
  });

  afterEach(async () => {
    await Promise.all([center.stop(), ...agents.map((agent) => agent.stop())]);
  });

  const postsPerAgent = () => agents.map((agent) => agent.posts.length);

  it('sends the job to a non-blocked agent with the agent token, and says which agent was blocked', async () => {
    center.setEntries([
      ban('198.51.100.2', {
        until: inAnHour(),
        reason: 'connect failures 18/20',
      }),
    ]);

    const runs = [];
    for (const draw of [0, 0.5, 0.99])
      runs.push(
        await runCli([...JOB_FLAGS, ...agentFlags(agents)], {
          env,
          random: () => draw,
        }),
      );

    expect(runs.map((run) => run.code)).toEqual([
      EXIT.dispatched,
      EXIT.dispatched,
      EXIT.dispatched,
    ]);
    expect(agents[1]?.posts).toHaveLength(0);
    expect(postsPerAgent().reduce((a, b) => a + b)).toBe(3);
    const post = [...(agents[0]?.posts ?? []), ...(agents[2]?.posts ?? [])][0];
    expect(post?.path).toBe('/relays');
    expect(post?.headers.authorization).toBe('Bearer agent-fake-token');
    expect(JSON.parse(post?.body ?? '')).toEqual(JOB);
    const output = runs[0]?.output;
    expect(output).toMatchObject({
      outcome: 'dispatched',
      job: { id: JOB.id },
      agentStatus: 202,
      why: {
        candidates: 3,
        healthy: 2,
        panic: false,
        blocked: [{ ip: '198.51.100.2', reason: 'connect failures 18/20' }],
      },
      blocklist: { status: 'fresh', activeEntries: 1, lastError: null },
    });
    expect(['198.51.100.1', '198.51.100.3']).toContain(output.agent.ip);
  });

  it('still dispatches, and reports panic, when most agents are blocked', async () => {
    center.setEntries(
      ['198.51.100.1', '198.51.100.2'].map((ip) =>
        ban(ip, { until: inAnHour() }),
      ),
    );

    const run = await runCli([...JOB_FLAGS, ...agentFlags(agents)], {
      env,
      random: () => 0,
    });

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output).toMatchObject({
      outcome: 'dispatched',
      agent: { ip: '198.51.100.1' },
      why: { panic: true, healthy: 1 },
    });
    expect(postsPerAgent()).toEqual([1, 0, 0]);
  });

  it('exits 3 and sends nothing when every agent is blocked and panic is off', async () => {
    center.setEntries(
      ['198.51.100.1', '198.51.100.2', '198.51.100.3'].map((ip) =>
        ban(ip, { until: inAnHour() }),
      ),
    );

    const run = await runCli(
      [...JOB_FLAGS, ...agentFlags(agents), '--min-healthy-share', '0'],
      { env },
    );

    expect(run.code).toBe(EXIT.noAgent);
    expect(run.output).toMatchObject({ outcome: 'no-agent', agent: null });
    expect(postsPerAgent()).toEqual([0, 0, 0]);
  });

  it('fails open and dispatches when the status center is down and nothing is cached', async () => {
    await center.stop();

    const run = await runCli([...JOB_FLAGS, ...agentFlags(agents)], { env });

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output.blocklist).toMatchObject({
      status: 'failed-open',
      lastSuccessAt: null,
      lastError: { kind: 'network' },
    });
    expect(run.stderr).toContain('failing open');
  });

  it('revalidates its cache file with If-None-Match, and keeps avoiding blocked agents from it when the status center is down', async () => {
    center.setEntries([ban('198.51.100.2', { until: inAnHour() })]);
    const cacheFile = join(
      await mkdtemp(join(tmpdir(), 'dispatch-cache-')),
      'blocklist.json',
    );
    const flags = [
      ...JOB_FLAGS,
      ...agentFlags(agents),
      '--cache-file',
      cacheFile,
    ];
    const first = await runCli(flags, { env });
    const saved = JSON.parse(await readFile(cacheFile, 'utf8'));

    const second = await runCli(flags, { env });
    await center.stop();
    const third = await runCli(flags, { env, random: () => 0.5 });

    expect(saved).toMatchObject({
      etag: first.output.blocklist.etag,
      blocklist: { entries: [{ ip: '198.51.100.2' }] },
    });
    expect(center.requests[1]?.headers['if-none-match']).toBe(saved.etag);
    expect(second.output.blocklist.status).toBe('fresh');
    expect(third.code).toBe(EXIT.dispatched);
    expect(third.output).toMatchObject({
      agent: { ip: '198.51.100.3' },
      why: { blocked: [{ ip: '198.51.100.2' }] },
      blocklist: { status: 'stale', lastError: { kind: 'network' } },
    });
    expect(agents[1]?.posts).toHaveLength(0);
  });

  it('reads agents from a JSON file', async () => {
    const file = join(
      await mkdtemp(join(tmpdir(), 'dispatch-agents-')),
      'agents.json',
    );
    await writeFile(
      file,
      JSON.stringify([{ url: agents[2]?.url, ip: '198.51.100.3' }]),
    );

    const run = await runCli([...JOB_FLAGS, '--agents-file', file], { env });

    expect(run.code).toBe(EXIT.dispatched);
    expect(postsPerAgent()).toEqual([0, 0, 1]);
  });

  it('chooses but sends nothing with --dry-run', async () => {
    const run = await runCli(
      [...JOB_FLAGS, ...agentFlags(agents), '--dry-run'],
      {
        env: { ...env, RELAYWATCH_AGENT_TOKEN: '' },
      },
    );

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output.outcome).toBe('dry-run');
    expect(postsPerAgent()).toEqual([0, 0, 0]);
  });

  it('exits 4 with the agent answer when the agent refuses the job', async () => {
    const run = await runCli(
      [...JOB_FLAGS, '--agent', `${agents[0]?.url}=198.51.100.1`],
      {
        env: { ...env, RELAYWATCH_AGENT_TOKEN: 'wrong-agent-token' },
      },
    );

    expect(run.code).toBe(EXIT.refused);
    expect(run.output).toMatchObject({
      outcome: 'refused',
      agentStatus: 401,
      agentResponse: { error: 'bad token' },
    });
  });

  it('exits 5 when the chosen agent cannot be reached', async () => {
    const gone = agents[0]?.url;
    await agents[0]?.stop();

    const run = await runCli(
      [...JOB_FLAGS, '--agent', `${gone}=198.51.100.1`],
      { env },
    );

    expect(run.code).toBe(EXIT.unreachable);
    expect(run.output).toMatchObject({
      outcome: 'unreachable',
      agent: { url: gone },
    });
    expect(run.output.error).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('runs as a program: the bin dispatches, prints one JSON line and exits 0', async () => {
    center.setEntries([ban('198.51.100.1', { until: inAnHour() })]);
    const flags = [
      ...JOB_FLAGS,
      '--agent',
      `${agents[0]?.url}=198.51.100.1`,
      ...['--agent', `${agents[1]?.url}=198.51.100.2`],
    ];

    const { stdout } = await runBin(DISPATCH_BIN, flags, env);

    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      outcome: 'dispatched',
      agent: { ip: '198.51.100.2' },
    });
    expect(postsPerAgent()).toEqual([0, 1, 0]);
  });

  it('runs as a program: a usage error exits 2', async () => {
    const failure = await runBin(DISPATCH_BIN, ['--id', 'x'], {
      RELAYWATCH_URL: '',
    });

    expect(failure).toMatchObject({ code: EXIT.usage });
    expect(failure.stderr).toContain('--help');
  });
});
