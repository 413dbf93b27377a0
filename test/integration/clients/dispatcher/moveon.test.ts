/**
 * relaywatch-dispatch with several agents over loopback: it moves on until one
 * takes the job, prints every attempt, and says in words (and in its exit
 * code) why no agent took it.
 */
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
  AgentReply,
  FakeAgent,
  FakeStatusCenter,
} from '../../../helpers/dispatcher-servers.js';
import {
  connectFailed,
  fakeAgentPool,
  flowing,
  invalidJob,
  postsTo,
  startFakeStatusCenter,
} from '../../../helpers/dispatcher-servers.js';
import { runBin } from '../../../helpers/run-bin.js';

/** The JSON lines on stderr whose message is "attempt". */
const attemptLines = (stderr: string) =>
  stderr
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line))
    .filter((line) => line.message === 'attempt');

describe('relaywatch-dispatch moving on through several agents', () => {
  let center: FakeStatusCenter;
  let env: Record<string, string>;
  const pool = fakeAgentPool();
  let agents: FakeAgent[] = [];

  beforeEach(async () => {
    center = await startFakeStatusCenter();
    env = dispatchEnv(center);
  });

  afterEach(async () => {
    await Promise.all([center.stop(), pool.stopAll()]);
  });

  /** Starts one fake agent per answer (they report as 198.51.100.1, .2, …); resolves with their --agent flags. */
  async function startAgents(...posts: Array<() => AgentReply>) {
    const started = await pool.answering(...posts);
    agents = started.fakes;
    return started.flags;
  }
  const postsPerAgent = () => postsTo(agents);

  it('moves on from an agent that cannot reach the origin, lands on the next, and prints both attempts', async () => {
    const flags = await startAgents(connectFailed, flowing, flowing);

    const run = await runCli([...JOB_FLAGS, ...flags], {
      env,
      random: () => 0,
    });

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output).toMatchObject({
      outcome: 'dispatched',
      agent: { ip: '198.51.100.2' },
      state: 'flowing',
      agentStatus: 201,
      reason:
        'landed on 198.51.100.2 (flowing) at attempt 2; before it: origin unreachable from 1 of 1 agent',
      attempts: [
        {
          agent: { ip: '198.51.100.1' },
          outcome: 'failed_start',
          httpStatus: 502,
          status: 'connect_failed',
        },
        {
          agent: { ip: '198.51.100.2' },
          outcome: 'landed',
          httpStatus: 201,
          state: 'flowing',
        },
      ],
    });
    expect(run.output.attempts[0].detail).toContain('Connection timed out');
    expect(attemptLines(run.stderr)).toMatchObject([
      {
        level: 'warn',
        job: JOB.id,
        attempt: 1,
        agent: { ip: '198.51.100.1' },
        outcome: 'failed_start',
      },
      {
        level: 'info',
        job: JOB.id,
        attempt: 2,
        agent: { ip: '198.51.100.2' },
        outcome: 'landed',
      },
    ]);
    expect(postsPerAgent()).toEqual([1, 1, 0]);
  });

  it('starts at the random choice and goes round the list', async () => {
    const flags = await startAgents(flowing, flowing, connectFailed);

    const run = await runCli([...JOB_FLAGS, ...flags], {
      env,
      random: () => 0.99,
    });

    expect(run.code).toBe(EXIT.dispatched);
    expect(
      run.output.attempts.map(
        (attempt: { agent: { ip: string } }) => attempt.agent.ip,
      ),
    ).toEqual(['198.51.100.3', '198.51.100.1']);
    expect(postsPerAgent()).toEqual([1, 0, 1]);
  });

  it('exits 6 with "origin unreachable from 3 of 3 agents" when no agent can start the job', async () => {
    const flags = await startAgents(
      connectFailed,
      connectFailed,
      connectFailed,
    );

    const run = await runCli([...JOB_FLAGS, ...flags], { env });

    expect(run.code).toBe(EXIT.notStarted);
    expect(run.output).toMatchObject({
      outcome: 'not-started',
      state: null,
      reason: 'origin unreachable from 3 of 3 agents',
      agentStatus: 502,
    });
    expect(run.output.attempts).toHaveLength(3);
    expect(attemptLines(run.stderr)).toHaveLength(3);
    expect(postsPerAgent()).toEqual([1, 1, 1]);
  });

  it('does not try a blocked agent and says so', async () => {
    const flags = await startAgents(connectFailed, flowing, connectFailed);
    center.setEntries([ban('198.51.100.2', { until: inAnHour() })]);

    const run = await runCli([...JOB_FLAGS, ...flags], {
      env,
      random: () => 0,
    });

    expect(run.code).toBe(EXIT.notStarted);
    expect(run.output.reason).toBe(
      'origin unreachable from 2 of 2 agents; 1 blocked agent not tried',
    );
    expect(run.output.why).toMatchObject({
      healthy: 2,
      blocked: [{ ip: '198.51.100.2' }],
    });
    expect(postsPerAgent()).toEqual([1, 0, 1]);
  });

  it('exits 7 and tries no other agent when the job itself is invalid', async () => {
    const invalid = invalidJob(
      'target',
      'must be an rtmp(s), srt or http(s) URL',
    );
    const flags = await startAgents(invalid, flowing);

    const run = await runCli([...JOB_FLAGS, ...flags], {
      env,
      random: () => 0,
    });

    expect(run.code).toBe(EXIT.badJob);
    expect(run.output).toMatchObject({
      outcome: 'bad-job',
      agentStatus: 400,
      agent: { ip: '198.51.100.1' },
    });
    expect(run.output.reason).toContain(
      'target must be an rtmp(s), srt or http(s) URL',
    );
    expect(postsPerAgent()).toEqual([1, 0]);
  });

  it('exits 4 saying that every agent refused our token', async () => {
    const flags = await startAgents(flowing, flowing, flowing);

    const run = await runCli([...JOB_FLAGS, ...flags], {
      env: { ...env, RELAYWATCH_AGENT_TOKEN: 'wrong-token' },
    });

    expect(run.code).toBe(EXIT.refused);
    expect(run.output).toMatchObject({
      outcome: 'refused',
      reason: '3 of 3 agents refused our token',
      agentStatus: 401,
    });
  });

  it('exits 5 when no agent can be reached', async () => {
    const flags = await startAgents(flowing, flowing);
    await Promise.all(agents.map((agent) => agent.stop()));

    const run = await runCli([...JOB_FLAGS, ...flags], { env });

    expect(run.code).toBe(EXIT.unreachable);
    expect(run.output).toMatchObject({
      outcome: 'unreachable',
      reason: '2 of 2 agents unreachable',
      agentStatus: null,
    });
    expect(run.output.error).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('gives up on an agent after --post-timeout-ms, cancels the job there, and moves on', async () => {
    const flags = await startAgents(() => 'hang', flowing);

    // Long enough for the second agent to answer on a loaded machine; the first never answers at all.
    const run = await runCli(
      [...JOB_FLAGS, ...flags, '--post-timeout-ms', '2000'],
      { env, random: () => 0 },
    );

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output.attempts[0]).toMatchObject({
      outcome: 'timeout',
      networkError: 'no answer within 2000 ms',
      cancel: 'not_found',
    });
    expect(agents[0]?.posts.map((request) => request.method)).toEqual([
      'POST',
      'DELETE',
    ]);
  });

  it('stops after --max-attempts agents', async () => {
    const flags = await startAgents(connectFailed, connectFailed, flowing);

    const run = await runCli([...JOB_FLAGS, ...flags, '--max-attempts', '2'], {
      env,
      random: () => 0,
    });

    expect(run.code).toBe(EXIT.notStarted);
    expect(run.output.reason).toBe(
      'origin unreachable from 2 of 2 agents; 1 more agent not tried (maxAttempts 2)',
    );
    expect(postsPerAgent()).toEqual([1, 1, 0]);
  });

  it('runs as a program: one result line on stdout, one attempt line per agent on stderr, exit 6', async () => {
    const flags = await startAgents(connectFailed, connectFailed);

    const failure = await runBin(DISPATCH_BIN, [...JOB_FLAGS, ...flags], env);

    expect(failure).toMatchObject({ code: EXIT.notStarted });
    const { stdout, stderr } = failure;
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      outcome: 'not-started',
      reason: 'origin unreachable from 2 of 2 agents',
    });
    expect(attemptLines(stderr)).toHaveLength(2);
  });
});
