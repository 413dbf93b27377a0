import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatsOf, startHeartbeatRecorder, startTestAgent, waitFor } from '../helpers/agent-harness.js';
import type { HeartbeatRecorder, TestAgent } from '../helpers/agent-harness.js';
import { createTestFlv, startOrigin, startSink } from '../../clients/test-stream/media.js';
import type { TestOrigin, TestSink } from '../../clients/test-stream/media.js';

const WAIT = { timeoutMs: 20_000 };

describe('relaying real streams with ffmpeg on loopback', () => {
  let dir: string;
  let flvPath: string;
  let origin: TestOrigin;
  let sink: TestSink;
  let recorder: HeartbeatRecorder;
  let agent: TestAgent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-'));
    flvPath = await createTestFlv({ dir });
    origin = await startOrigin({ flvPath });
    sink = await startSink();
    recorder = await startHeartbeatRecorder();
    agent = await startTestAgent({ statusUrl: recorder.url });
  });

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([origin?.stop(), sink?.stop(), recorder?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const addRelay = async (id: string, source: string, target = sink.url(`/ingest/${id}.flv`)) => {
    const answer = await agent.request('POST', '/relays', { body: { id, source, target } });
    expect(answer.status).toBe(201);
  };
  const latest = (id: string) => heartbeatsOf(recorder, id).at(-1);

  it('reports a relay whose stream flows as ok, and the target receives the stream', async () => {
    await addRelay('flowing', origin.url('/live.flv'));

    const ok = await waitFor('an ok heartbeat', () => heartbeatsOf(recorder, 'flowing').find((h) => h.status === 'ok'), WAIT);
    await waitFor('bytes at the target', () => sink.bytesReceived('/ingest/flowing.flv') > 0, WAIT);

    expect(ok).toMatchObject({
      ip: agent.config.ip,
      kind: 'relay',
      origin: `http://127.0.0.1:${origin.port}`,
    });
    expect(ok.detail).toMatch(/^streaming: frame=\d+/);
  });

  it('reports origin_error with the HTTP status when the origin answers 404 for the stream path', async () => {
    await addRelay('wrong-path', origin.url('/live/unknown.flv/x'));

    const failed = await waitFor('an origin_error heartbeat', () => latest('wrong-path')?.status === 'origin_error' && latest('wrong-path'), WAIT);

    expect(failed?.detail).toContain('404 Not Found');
  });

  it('keeps restarting a failed relay while its job exists', async () => {
    await waitFor('a second run of the failing relay', async () => {
      const answer = await agent.request('GET', '/relays/wrong-path');
      return answer.json.runs >= 2;
    }, WAIT);
    const answer = await agent.request('GET', '/relays/wrong-path');

    expect(answer.json).toMatchObject({ status: 'origin_error', cause: 'http_status' });
  });

  it('reports origin_error when nothing listens on the origin port (connection refused)', async () => {
    const stopped = await startOrigin({ flvPath });
    await stopped.stop();
    await addRelay('refused', stopped.url('/live.flv'));

    const failed = await waitFor('an origin_error heartbeat', () => latest('refused')?.status === 'origin_error' && latest('refused'), WAIT);

    expect(failed?.detail).toContain('Connection refused');
  });

  it('reports error, never origin_error, when only the push target refuses', async () => {
    const closedSink = await startSink();
    await closedSink.stop();
    await addRelay('dead-target', origin.url('/live.flv'), closedSink.url('/ingest/dead.flv'));

    const failed = await waitFor('a failed heartbeat', () => {
      const heartbeat = latest('dead-target');
      return heartbeat !== undefined && heartbeat.status !== 'ok' && heartbeat;
    }, WAIT);

    expect(failed?.status).toBe('error');
    expect(failed?.detail).toContain('Connection refused');
    expect(heartbeatsOf(recorder, 'dead-target').every((h) => h.status === 'error')).toBe(true);
  });

  it('never reports ok again after reporting the loss of an origin that went away mid-stream', async () => {
    const leaving = await startOrigin({ flvPath });
    await addRelay('origin-lost', leaving.url('/live.flv'));
    await waitFor('an ok heartbeat', () => latest('origin-lost')?.status === 'ok', WAIT);

    await leaving.stop();
    const firstFailure = await waitFor('a failed heartbeat', () => heartbeatsOf(recorder, 'origin-lost').find((h) => h.status !== 'ok'), WAIT);
    const reportsBefore = heartbeatsOf(recorder, 'origin-lost').length;
    // Two more periodic reports must arrive after the first failure.
    await waitFor('two more reports', () => heartbeatsOf(recorder, 'origin-lost').length >= reportsBefore + 2, WAIT);

    const afterFailure = heartbeatsOf(recorder, 'origin-lost').filter((h) => (h.ts ?? 0) >= (firstFailure.ts ?? 0));
    expect(firstFailure.status).toBe('error');
    expect(afterFailure.map((h) => h.status)).not.toContain('ok');
    expect(afterFailure.at(-1)?.status).toBe('origin_error');
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
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-'));
    const origin = await startOrigin({ flvPath: await createTestFlv({ dir }) });
    const sink = await startSink();
    const recorder = await startHeartbeatRecorder();
    // The periodic report is an hour away, so only a change report can carry the ok.
    const agent = await startTestAgent({ statusUrl: recorder.url, env: { RELAYWATCH_AGENT_INTERVAL: '3600' } });
    try {
      await agent.request('POST', '/relays', { body: { id: 'changes', source: origin.url('/live.flv'), target: sink.url('/ingest/c.flv') } });

      const ok = await waitFor('an ok heartbeat', () => heartbeatsOf(recorder, 'changes').find((h) => h.status === 'ok'), WAIT);

      expect(ok.status).toBe('ok');
      expect(recorder.posts).toHaveLength(1);
    } finally {
      await agent.stop();
      await Promise.all([origin.stop(), sink.stop(), recorder.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('spaces immediate reports at least the change gap apart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-'));
    const origin = await startOrigin({ flvPath: await createTestFlv({ dir }) });
    const gone = await startOrigin({ flvPath: join(dir, 'testsrc.flv') });
    await gone.stop();
    const sink = await startSink();
    const recorder = await startHeartbeatRecorder();
    const gapMs = 1_500;
    const agent = await startTestAgent({
      statusUrl: recorder.url,
      env: { RELAYWATCH_AGENT_INTERVAL: '3600', RELAYWATCH_AGENT_CHANGE_GAP: String(gapMs / 1000) },
    });
    try {
      await agent.request('POST', '/relays', { body: { id: 'refused', source: gone.url('/live.flv'), target: sink.url('/ingest/r.flv') } });
      await waitFor('the first change report', () => recorder.posts.length === 1, WAIT);
      // This relay changes status well within the gap after that report.
      await agent.request('POST', '/relays', { body: { id: 'flowing', source: origin.url('/live.flv'), target: sink.url('/ingest/f.flv') } });

      await waitFor('both changes reported', () => new Set(recorder.received().map((h) => h.process)).size === 2, WAIT);

      const [first, second] = recorder.posts;
      expect(recorder.posts).toHaveLength(2);
      expect((second?.receivedAt ?? 0) - (first?.receivedAt ?? 0)).toBeGreaterThanOrEqual(gapMs - 50);
    } finally {
      await agent.stop();
      await Promise.all([origin.stop(), sink.stop(), recorder.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
