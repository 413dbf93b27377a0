/**
 * dispatch() against fake agents on loopback: each answer of the agent's
 * POST /relays contract moves on, stops or lands; order, blocklist, panic,
 * bounds and the reason in words.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  Agent,
  Attempt,
  DispatchOptions,
} from '../../../../clients/dispatcher/index.js';
import {
  BlocklistClientOptionsError,
  dispatch,
} from '../../../../clients/dispatcher/index.js';
import {
  JOB,
  listOf,
  scriptedClient,
  AGENT_TOKEN as TOKEN,
} from '../../../helpers/dispatcher-fakes.js';
import type {
  AgentReply,
  SeenHttpRequest,
} from '../../../helpers/dispatcher-servers.js';
import {
  connectFailed,
  failedStart,
  fakeAgentPool,
  flowing,
  invalidJob,
  onPost,
  postsTo,
  relayExists,
} from '../../../helpers/dispatcher-servers.js';

const pool = fakeAgentPool();
afterEach(pool.stopAll);
/** Fake agents on loopback, each answering POST /relays with its handler, reporting as 198.51.100.1, .2, … */
const agentsAnswering = pool.answering;

/** A blocklist client whose list bans `ips`, loaded from a scripted status center. */
async function blocklistBanning(ips: string[], minHealthyShare?: number) {
  const { client } = scriptedClient(
    [listOf(...ips)],
    minHealthyShare === undefined ? {} : { minHealthyShare },
  );
  await client.refresh();
  return client;
}

describe('dispatch: where the job lands', () => {
  it('lands on the first agent that answers 201 flowing, sends nothing to the others, and keeps the relay view', async () => {
    const { fakes, agents } = await agentsAnswering(flowing, flowing);

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({
      landed: true,
      agent: agents[0],
      state: 'flowing',
      stoppedBy: 'landed',
    });
    expect(result.relay).toMatchObject({ id: JOB.id, state: 'flowing' });
    expect(result.attempts).toHaveLength(1);
    expect(result.attempts[0]).toMatchObject({
      outcome: 'landed',
      httpStatus: 201,
      state: 'flowing',
      status: 'ok',
    });
    expect(result.reason).toBe('landed on 198.51.100.1 (flowing) at attempt 1');
    expect(postsTo(fakes)).toEqual([1, 0]);
    const post = fakes[0]?.posts[0];
    expect(post?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(post?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(post?.body ?? '')).toEqual(JOB);
  });

  it('counts 202 starting as landed, reported as starting rather than flowing', async () => {
    const { agents } = await agentsAnswering(() => ({
      status: 202,
      body: { ...JOB, status: 'starting', state: 'starting' },
    }));

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({ landed: true, state: 'starting' });
    expect(result.reason).toContain('(starting)');
  });

  it('counts a 201 without a state (an agent that answers at once) as landed with state unknown', async () => {
    const { fakes, agents } = await agentsAnswering(
      () => ({ status: 201, body: { ...JOB, status: 'starting', runs: 0 } }),
      flowing,
    );

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({
      landed: true,
      agent: agents[0],
      state: 'unknown',
    });
    expect(postsTo(fakes)).toEqual([1, 0]);
  });

  it('treats 409 relay_exists as landed when the agent already runs this very job', async () => {
    const same = await pool.start({
      reply: onPost(relayExists, () => ({
        status: 200,
        body: { ...JOB, status: 'ok', runs: 1 },
      })),
    });
    const { fakes, agents } = await agentsAnswering(flowing);

    const result = await dispatch(
      JOB,
      [{ url: same.url, ip: '198.51.100.9' }, ...agents],
      { token: TOKEN },
    );

    expect(result).toMatchObject({
      landed: true,
      state: 'flowing',
      agent: { url: same.url },
    });
    expect(result.reason).toBe('landed on 198.51.100.9 (flowing) at attempt 1');
    expect(
      same.posts.map((request) => `${request.method} ${request.path}`),
    ).toEqual(['POST /relays', `GET /relays/${JOB.id}`]);
    expect(postsTo(fakes)).toEqual([0]);
  });

  it('treats an agent that answers 200 for a job it already runs as landed', async () => {
    const { agents } = await agentsAnswering(() => ({
      status: 200,
      body: { ...JOB, status: 'ok', runs: 3 },
    }));

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({ landed: true, state: 'flowing' });
  });
});

describe('dispatch: moving on', () => {
  it('reads the code of an agent older than the error contract from its "error" field', async () => {
    // Prepare
    const { agents } = await agentsAnswering(
      () => ({
        status: 502,
        body: {
          error: 'relay_failed',
          status: 'connect_failed',
          detail: 'Connection timed out',
        },
      }),
      flowing,
    );
    // Act
    const result = await dispatch(JOB, agents, { token: TOKEN });
    // Assess
    expect(result.attempts[0]).toMatchObject({
      outcome: 'failed_start',
      code: 'relay_failed',
      status: 'connect_failed',
    });
    expect(result).toMatchObject({ landed: true, agent: agents[1] });
  });

  it('moves on after a failed start and reports the agent status and detail of the failed one', async () => {
    const { fakes, agents } = await agentsAnswering(connectFailed, flowing);

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({
      landed: true,
      agent: agents[1],
      state: 'flowing',
    });
    expect(result.attempts.map((attempt) => attempt.outcome)).toEqual([
      'failed_start',
      'landed',
    ]);
    expect(result.attempts[0]).toMatchObject({
      agent: agents[0],
      httpStatus: 502,
      code: 'relay_failed',
      status: 'connect_failed',
      detail: expect.stringContaining('Connection timed out'),
      networkError: null,
    });
    expect(result.reason).toBe(
      'landed on 198.51.100.2 (flowing) at attempt 2; before it: origin unreachable from 1 of 1 agent',
    );
    expect(postsTo(fakes)).toEqual([1, 1]);
  });

  it.each<
    [string, AgentReply | ((request: SeenHttpRequest) => AgentReply), RegExp]
  >([
    [
      'an origin error',
      failedStart('origin_error', 'Connection refused'),
      /origin refused the relay or answered an error: Connection refused/,
    ],
    [
      'another start error',
      failedStart('error', 'Invalid data found'),
      /relay failed to start: Invalid data found/,
    ],
    [
      '401',
      {
        status: 401,
        body: {
          code: 'unauthorized',
          error: 'the agent token is missing or wrong',
        },
      },
      /agent refused our token \(HTTP 401\)/,
    ],
    [
      '403',
      { status: 403, body: { code: 'forbidden', error: 'forbidden' } },
      /agent refused our token \(HTTP 403\)/,
    ],
    [
      '409 relay_limit',
      {
        status: 409,
        body: {
          code: 'relay_limit',
          error: 'this agent runs its maximum number of relays',
        },
      },
      /agent at its relay limit/,
    ],
    [
      '429',
      { status: 429, body: { code: 'busy', error: 'busy' } },
      /agent busy \(HTTP 429\)/,
    ],
    ['503', { status: 503 }, /agent busy \(HTTP 503\)/],
    [
      '500',
      { status: 500, body: { code: 'internal', error: 'internal error' } },
      /agent answered HTTP 500 internal/,
    ],
    [
      'a 502 that is not relay_failed',
      { status: 502, body: 'bad gateway' },
      /agent answered HTTP 502/,
    ],
    ['a redirect', { status: 307 }, /agent answered HTTP 307/],
    ['a dropped connection', 'drop', /agent unreachable/],
  ])('moves on to the next agent after %s', async (_, reply, reason) => {
    const { fakes, agents } = await agentsAnswering(
      typeof reply === 'function' ? reply : () => reply,
      flowing,
    );

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({ landed: true, agent: agents[1] });
    expect(result.attempts[0]?.reason).toMatch(reason);
    expect(result.attempts[0]?.outcome).not.toBe('landed');
    expect(postsTo(fakes)).toEqual([1, 1]);
  });

  it('moves on from 409 relay_exists when the relay under that id is another job', async () => {
    const other = await pool.start({
      reply: onPost(relayExists, () => ({
        status: 200,
        body: {
          ...JOB,
          source: 'rtmp://elsewhere.example/live/1',
          status: 'ok',
        },
      })),
    });
    const { agents } = await agentsAnswering(flowing);

    const result = await dispatch(
      JOB,
      [{ url: other.url, ip: '198.51.100.9' }, ...agents],
      { token: TOKEN },
    );

    expect(result).toMatchObject({ landed: true, agent: agents[0] });
    expect(result.attempts[0]).toMatchObject({
      outcome: 'refused',
      httpStatus: 409,
      reason: 'agent already runs another job with this id',
    });
  });

  it('moves on from an agent that cannot be reached', async () => {
    const { fakes, agents } = await agentsAnswering(flowing, flowing);
    await fakes[0]?.stop();

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({ landed: true, agent: agents[1] });
    expect(result.attempts[0]).toMatchObject({
      outcome: 'unreachable',
      httpStatus: null,
      networkError: expect.stringMatching(/fetch failed|ECONNREFUSED/),
    });
  });

  it('moves on from an agent that does not answer in time, after asking it to drop the job', async () => {
    const { fakes, agents } = await agentsAnswering(() => 'hang', flowing);

    // Long enough for the second agent to answer on a loaded machine; the first never answers at all.
    const result = await dispatch(JOB, agents, {
      token: TOKEN,
      attemptTimeoutMs: 2_000,
    });

    expect(result).toMatchObject({ landed: true, agent: agents[1] });
    expect(result.attempts[0]).toMatchObject({
      outcome: 'timeout',
      httpStatus: null,
      networkError: 'no answer within 2000 ms',
      cancel: 'not_found',
    });
    expect(
      fakes[0]?.posts.map((request) => `${request.method} ${request.path}`),
    ).toEqual(['POST /relays', `DELETE /relays/${JOB.id}`]);
  });

  it('stops at a 400 without trying any other agent: the job itself is bad', async () => {
    const invalid = invalidJob(
      'source',
      'must be an http(s), rtmp(s), rtsp or srt URL',
    );
    const { fakes, agents } = await agentsAnswering(invalid, flowing, flowing);

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({
      landed: false,
      agent: null,
      state: null,
      stoppedBy: 'bad_job',
    });
    expect(result.attempts).toHaveLength(1);
    expect(result.attempts[0]).toMatchObject({
      outcome: 'bad_job',
      httpStatus: 400,
      code: 'invalid_relay',
    });
    expect(result.reason).toBe(
      'the agent refused the job as invalid: source must be an http(s), rtmp(s), rtsp or srt URL; no other agent tried',
    );
    expect(postsTo(fakes)).toEqual([1, 0, 0]);
  });

  it('tries the agents in the order given, telling onAttempt about each before the next one starts', async () => {
    const { fakes, agents } = await agentsAnswering(
      connectFailed,
      connectFailed,
      flowing,
      flowing,
    );
    const heard: Array<{ ip: string; postsSoFar: number[] }> = [];
    const order = [agents[1], agents[0], agents[3], agents[2]] as Agent[];

    const result = await dispatch(JOB, order, {
      token: TOKEN,
      onAttempt: (attempt: Attempt) =>
        heard.push({ ip: attempt.agent.ip, postsSoFar: postsTo(fakes) }),
    });

    expect(result).toMatchObject({ landed: true, agent: agents[3] });
    expect(heard).toEqual([
      { ip: '198.51.100.2', postsSoFar: [0, 1, 0, 0] },
      { ip: '198.51.100.1', postsSoFar: [1, 1, 0, 0] },
      { ip: '198.51.100.4', postsSoFar: [1, 1, 0, 1] },
    ]);
  });

  it('ignores what onAttempt throws, so a landed job is still reported as landed', async () => {
    const { agents } = await agentsAnswering(flowing);

    const result = await dispatch(JOB, agents, {
      token: TOKEN,
      onAttempt: () => {
        throw new Error('hook bug');
      },
    });

    expect(result.landed).toBe(true);
  });
});

describe('dispatch: when no agent takes the job', () => {
  it('says "origin unreachable from 5 of 5 agents" when every agent answers connect_failed, never landed', async () => {
    const { fakes, agents } = await agentsAnswering(
      connectFailed,
      connectFailed,
      connectFailed,
      connectFailed,
      connectFailed,
    );

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result).toMatchObject({
      landed: false,
      agent: null,
      state: null,
      stoppedBy: 'exhausted',
      notTried: [],
    });
    expect(result.reason).toBe('origin unreachable from 5 of 5 agents');
    expect(result.attempts.map((attempt) => attempt.status)).toEqual(
      Array(5).fill('connect_failed'),
    );
    expect(postsTo(fakes)).toEqual([1, 1, 1, 1, 1]);
  });

  it('counts each kind of failure in words when they differ', async () => {
    const { fakes, agents } = await agentsAnswering(
      connectFailed,
      () => ({
        status: 401,
        body: {
          code: 'unauthorized',
          error: 'the agent token is missing or wrong',
        },
      }),
      connectFailed,
      flowing,
    );
    await fakes[3]?.stop();

    const result = await dispatch(JOB, agents, { token: TOKEN });

    expect(result.landed).toBe(false);
    expect(result.reason).toBe(
      'origin unreachable from 2 of 4 agents, 1 of 4 agents refused our token, 1 of 4 agents unreachable',
    );
  });

  it('says "no agent given" for an empty list and sends nothing', async () => {
    const result = await dispatch(JOB, [], { token: TOKEN });

    expect(result).toMatchObject({
      landed: false,
      stoppedBy: 'no_usable_agent',
      reason: 'no agent given',
      attempts: [],
    });
  });
});

describe('dispatch: the blocklist and the panic rule', () => {
  it('leaves blocked agents out and says so when the others fail', async () => {
    const { fakes, agents } = await agentsAnswering(
      flowing,
      connectFailed,
      connectFailed,
    );
    const blocklist = await blocklistBanning(['198.51.100.1']);

    const result = await dispatch(JOB, agents, { token: TOKEN, blocklist });

    expect(result.landed).toBe(false);
    expect(result.selection).toMatchObject({
      candidates: 3,
      healthy: 2,
      panic: false,
      usable: [agents[1], agents[2]],
    });
    expect(result.selection.blocked.map(({ candidate }) => candidate)).toEqual([
      agents[0],
    ]);
    expect(result.reason).toBe(
      'origin unreachable from 2 of 2 agents; 1 blocked agent not tried',
    );
    expect(postsTo(fakes)).toEqual([0, 1, 1]);
  });

  it('tries blocked agents too, in order, when too few are healthy (panic)', async () => {
    const { fakes, agents } = await agentsAnswering(
      connectFailed,
      flowing,
      flowing,
    );
    const blocklist = await blocklistBanning(['198.51.100.1', '198.51.100.2']);

    const result = await dispatch(JOB, agents, { token: TOKEN, blocklist });

    expect(result).toMatchObject({
      landed: true,
      agent: agents[1],
      selection: { panic: true, healthy: 1 },
    });
    expect(postsTo(fakes)).toEqual([1, 1, 0]);
  });

  it('sends nothing when every agent is blocked and panic is off', async () => {
    const { fakes, agents } = await agentsAnswering(flowing, flowing);
    const blocklist = await blocklistBanning(
      ['198.51.100.1', '198.51.100.2'],
      0,
    );

    const result = await dispatch(JOB, agents, { token: TOKEN, blocklist });

    expect(result).toMatchObject({
      landed: false,
      stoppedBy: 'no_usable_agent',
      attempts: [],
    });
    expect(result.reason).toBe('every agent is blocked (2) and panic is off');
    expect(postsTo(fakes)).toEqual([0, 0]);
  });
});

describe('dispatch: bounds', () => {
  it('tries at most maxAttempts agents and names the ones left', async () => {
    const { fakes, agents } = await agentsAnswering(
      connectFailed,
      connectFailed,
      flowing,
    );

    const result = await dispatch(JOB, agents, {
      token: TOKEN,
      maxAttempts: 2,
    });

    expect(result).toMatchObject({
      landed: false,
      stoppedBy: 'max_attempts',
      notTried: [agents[2]],
    });
    expect(result.reason).toBe(
      'origin unreachable from 2 of 2 agents; 1 more agent not tried (maxAttempts 2)',
    );
    expect(postsTo(fakes)).toEqual([1, 1, 0]);
  });

  it('stops at the overall bound, cutting the attempt in flight short', async () => {
    const { fakes, agents } = await agentsAnswering(
      () => 'hang',
      () => 'hang',
      flowing,
    );

    const result = await dispatch(JOB, agents, {
      token: TOKEN,
      attemptTimeoutMs: 60_000,
      totalTimeoutMs: 300,
    });

    expect(result).toMatchObject({
      landed: false,
      stoppedBy: 'total_timeout',
      notTried: [agents[1], agents[2]],
    });
    expect(result.attempts).toHaveLength(1);
    expect(result.attempts[0]?.networkError).toMatch(
      /^no answer within \d+ ms \(the overall bound\)$/,
    );
    expect(result.reason).toBe(
      'no answer in time from 1 of 1 agent; 2 more agents not tried (overall bound of 300 ms reached)',
    );
    expect(postsTo(fakes)).toEqual([1, 0, 0]);
  });
});

describe('dispatch: bad arguments', () => {
  const agents: Agent[] = [{ url: 'http://127.0.0.1:9', ip: '198.51.100.1' }];

  // [the name in the error, the options, the message, the job and agents when not JOB and `agents`]
  it.each<[string, unknown, RegExp, { job?: unknown; list?: unknown }?]>([
    [
      'attemptTimeoutMs',
      { attemptTimeoutMs: 0 },
      /attemptTimeoutMs must be a whole number of milliseconds/,
    ],
    [
      'totalTimeoutMs',
      { totalTimeoutMs: 1.5 },
      /totalTimeoutMs must be a whole number/,
    ],
    [
      'maxAttempts',
      { maxAttempts: 0 },
      /maxAttempts must be a whole number from 1 \(got 0\)/,
    ],
    ['token', { token: 'two words' }, /token must be a non-empty agent token/],
    ['blocklist', { blocklist: {} }, /blocklist must be a blocklist client/],
    ['fetch', { fetch: 'fetch' }, /fetch must be a function/],
    ['onAttempt', { onAttempt: 1 }, /onAttempt must be a function/],
    [
      'attemptTimeout',
      { attemptTimeout: 10 },
      /attemptTimeout is not an option/,
    ],
    [
      'job.id',
      {},
      /job\.id must be a non-empty string/,
      { job: { ...JOB, id: '' } },
    ],
    [
      'job.target',
      {},
      /job\.target must be a non-empty string/,
      { job: { id: 'x', source: 'y' } },
    ],
    ['agents', {}, /agents must be an array/, { list: 'http://127.0.0.1:9' }],
    [
      'agents[0].url',
      {},
      /agents\[0\]\.url must be an http\(s\) URL/,
      { list: [{ url: 'ftp://x', ip: '198.51.100.1' }] },
    ],
  ])(
    'throws BlocklistClientOptionsError naming %s',
    async (option, options, message, { job = JOB, list = agents } = {}) => {
      const error = await dispatch(
        job as typeof JOB,
        list as Agent[],
        options as DispatchOptions,
      ).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(BlocklistClientOptionsError);
      expect(error).toMatchObject({ option });
      expect((error as Error).message).toMatch(/^dispatch: /);
      expect((error as Error).message).toMatch(message);
    },
  );
});
