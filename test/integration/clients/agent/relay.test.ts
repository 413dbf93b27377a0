import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  TestOrigin,
  TestSink,
} from '../../../../clients/test-stream/media.js';
import {
  startOrigin,
  startSink,
} from '../../../../clients/test-stream/media.js';
import type {
  HeartbeatRecorder,
  RelayRig,
  TestAgent,
} from '../../../helpers/agent-harness.js';
import {
  heartbeatsOf,
  pollAgent,
  postRelay,
  startRelayRig,
  startTestAgent,
  waitFor,
} from '../../../helpers/agent-harness.js';

const WAIT = { timeoutMs: 20_000 };

describe('relaying real streams with ffmpeg on loopback', () => {
  let rig: RelayRig;
  let flvPath: string;
  let origin: TestOrigin;
  let sink: TestSink;
  let recorder: HeartbeatRecorder;
  let agent: TestAgent;

  beforeAll(async () => {
    rig = await startRelayRig();
    ({ flvPath, origin, sink, recorder, agent } = rig);
  });

  afterAll(() => rig?.stop());

  const post = (id: string, source: string, target?: string) =>
    rig.post(id, source, target);
  const addRelay = async (id: string, source: string, target?: string) => {
    const answer = await post(id, source, target);
    expect(answer.status).toBe(201);
    return answer;
  };
  const latest = (id: string) => heartbeatsOf(recorder, id).at(-1);
  /** How many ffmpeg runs the agent started for a relay, from its own log. */
  const runsLogged = (id: string) =>
    agent.logs.filter(
      (entry) => entry.message === 'relay run' && entry.relay === id,
    ).length;
  /** Resolves once `count` more reports have reached the recorder. */
  const moreReports = (count: number) => {
    const before = recorder.posts.length;
    return waitFor(
      `${count} more reports`,
      () => recorder.posts.length >= before + count,
      WAIT,
    );
  };
  /** A refused start: not listed, not restarted, and its one failure still reported. */
  const expectNotKept = async (id: string, status: string) => {
    await moreReports(2);
    expect((await agent.request('GET', `/relays/${id}`)).status).toBe(404);
    expect(
      (await agent.request('GET', '/relays')).json.relays.map(
        (relay: { id: string }) => relay.id,
      ),
    ).not.toContain(id);
    expect(runsLogged(id)).toBe(1);
    expect(heartbeatsOf(recorder, id).map((h) => h.status)).toEqual([status]);
  };

  it('answers 201 flowing for a relay whose stream flows, reports it ok, and the target receives the stream', async () => {
    const answer = await addRelay('flowing', origin.url('/live.flv'));

    const ok = await waitFor(
      'an ok heartbeat',
      () => heartbeatsOf(recorder, 'flowing').find((h) => h.status === 'ok'),
      WAIT,
    );
    await waitFor(
      'bytes at the target',
      () => sink.bytesReceived('/ingest/flowing.flv') > 0,
      WAIT,
    );

    expect(answer.json).toMatchObject({
      id: 'flowing',
      state: 'flowing',
      status: 'ok',
      runs: 1,
    });
    expect(ok).toMatchObject({
      ip: agent.config.ip,
      kind: 'relay',
      origin: `http://127.0.0.1:${origin.port}`,
    });
    expect(ok.detail).toMatch(/^streaming: frame=\d+/);
    expect((await agent.request('GET', '/relays/flowing')).json.state).toBe(
      'flowing',
    );
  });

  it('answers 502 origin_error with the HTTP status when the origin answers 404, and does not keep the job', async () => {
    const answer = await post('wrong-path', origin.url('/live/unknown.flv/x'));

    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({
      code: 'relay_failed',
      status: 'origin_error',
    });
    expect(answer.json.detail).toContain('404 Not Found');
    await expectNotKept('wrong-path', 'origin_error');
  });

  it('answers 502 origin_error when nothing listens on the origin port (connection refused)', async () => {
    const stopped = await startOrigin({ flvPath });
    await stopped.stop();

    const answer = await post('refused', stopped.url('/live.flv'));

    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({
      code: 'relay_failed',
      status: 'origin_error',
      cause: 'connection_refused',
    });
    expect(answer.json.detail).toContain('Connection refused');
    await expectNotKept('refused', 'origin_error');
  });

  it('answers 502 error, never origin_error, when only the push target refuses', async () => {
    const closedSink = await startSink();
    await closedSink.stop();

    const answer = await post(
      'dead-target',
      origin.url('/live.flv'),
      closedSink.url('/ingest/dead.flv'),
    );

    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({
      code: 'relay_failed',
      status: 'error',
    });
    expect(answer.json.detail).toMatch(/^push target: .*Connection refused/);
    await expectNotKept('dead-target', 'error');
  });

  it('answers 202 starting and keeps the job when the relay neither flows nor fails within the confirm timeout', async () => {
    const slow = await startTestAgent({
      statusUrl: recorder.url,
      env: { RELAYWATCH_AGENT_CONFIRM_TIMEOUT: '0' },
    });
    try {
      const answer = await postRelay(
        slow,
        sink,
        'unconfirmed',
        origin.url('/live.flv'),
      );

      expect(answer.status).toBe(202);
      expect(answer.json).toMatchObject({
        id: 'unconfirmed',
        state: 'starting',
        status: 'starting',
      });
      const flowing = await pollAgent(
        slow,
        '/relays/unconfirmed',
        'the kept relay flowing',
        (relay) => relay.state === 'flowing',
        WAIT,
      );
      expect(flowing.status).toBe('ok');
    } finally {
      await slow.stop();
    }
  });

  it('reports the loss of an origin that went away mid-stream as origin_error at once, and never ok again', async () => {
    const leaving = await startOrigin({ flvPath });
    await addRelay('origin-lost', leaving.url('/live.flv'));
    await waitFor(
      'an ok heartbeat',
      () => latest('origin-lost')?.status === 'ok',
      WAIT,
    );

    await leaving.stop();
    const firstFailure = await waitFor(
      'a failed heartbeat',
      () =>
        heartbeatsOf(recorder, 'origin-lost').find((h) => h.status !== 'ok'),
      WAIT,
    );
    await moreReports(2);

    const afterFailure = heartbeatsOf(recorder, 'origin-lost').filter(
      (h) => (h.ts ?? 0) >= (firstFailure.ts ?? 0),
    );
    // The agent checks the origin before it restarts the relay, so the first
    // verdict is the check's, however late the report leaves.
    const firstVerdict = agent.logs.find(
      (entry) =>
        entry.message === 'relay status' &&
        entry.relay === 'origin-lost' &&
        entry.status !== 'ok',
    );
    expect(firstVerdict).toMatchObject({
      status: 'origin_error',
      cause: 'connection_refused',
    });
    expect(firstVerdict?.detail).toMatch(
      /^origin check: connect to 127\.0\.0\.1:\d+ failed: Connection refused/,
    );
    expect(firstFailure.status).toBe('origin_error');
    expect(firstFailure.detail).toContain('Connection refused');
    expect(afterFailure.map((h) => h.status)).not.toContain('ok');
    expect(afterFailure.at(-1)?.status).toBe('origin_error');
  });

  it('keeps restarting a relay that failed after it flowed, while its job exists', async () => {
    await pollAgent(
      agent,
      '/relays/origin-lost',
      'a second run of the failing relay',
      (relay) => relay.runs >= 2,
      WAIT,
    );
    const answer = await agent.request('GET', '/relays/origin-lost');

    expect(answer.json).toMatchObject({
      state: 'failing',
      status: 'origin_error',
      cause: 'connection_refused',
    });
  });

  it('stops the relay ffmpeg and stops reporting the relay once its job is deleted', async () => {
    const before = await agent.request('GET', '/relays/flowing');
    expect(before.json.pid).toBeGreaterThan(0);

    const answer = await agent.request('DELETE', '/relays/flowing');

    expect(answer.status).toBe(204);
    expect(() => process.kill(before.json.pid, 0)).toThrow();
    expect((await agent.request('GET', '/relays/flowing')).status).toBe(404);
  });
});

describe('reporting a status change at once', () => {
  it('sends the changed process before the next periodic report is due', async () => {
    // The periodic report is an hour away, so only a change report can carry the ok.
    const { recorder, post, stop } = await startRelayRig({
      env: { RELAYWATCH_AGENT_INTERVAL: '3600' },
    });
    try {
      await post('changes');

      const ok = await waitFor(
        'an ok heartbeat',
        () => heartbeatsOf(recorder, 'changes').find((h) => h.status === 'ok'),
        WAIT,
      );

      expect(ok.status).toBe('ok');
      expect(recorder.posts).toHaveLength(1);
    } finally {
      await stop();
    }
  });

  it('spaces immediate reports at least the change gap apart', async () => {
    const gapMs = 1_500;
    const { flvPath, recorder, post, stop } = await startRelayRig({
      env: {
        RELAYWATCH_AGENT_INTERVAL: '3600',
        RELAYWATCH_AGENT_CHANGE_GAP: String(gapMs / 1000),
      },
    });
    try {
      const gone = await startOrigin({ flvPath });
      await gone.stop();
      await post('refused', gone.url('/live.flv'));
      await waitFor(
        'the first change report',
        () => recorder.posts.length === 1,
        WAIT,
      );
      // This relay changes status well within the gap after that report.
      await post('flowing');

      await waitFor(
        'both changes reported',
        () => new Set(recorder.received().map((h) => h.process)).size === 2,
        WAIT,
      );

      const [first, second] = recorder.posts;
      expect(recorder.posts).toHaveLength(2);
      expect(
        (second?.receivedAt ?? 0) - (first?.receivedAt ?? 0),
      ).toBeGreaterThanOrEqual(gapMs - 50);
    } finally {
      await stop();
    }
  });
});
