/**
 * Real network faults: the relay's ffmpeg runs in a private network namespace
 * and reaches the origin across a veth pair; faults are nft rules inside that
 * namespace. Needs root (CI runs as root).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatsOf, startHeartbeatRecorder, startTestAgent, waitFor } from '../helpers/agent-harness.js';
import type { HeartbeatRecorder, TestAgent } from '../helpers/agent-harness.js';
import { createRelayNamespace } from '../helpers/agent-netns.js';
import type { RelayNamespace } from '../helpers/agent-netns.js';
import { createTestFlv, startOrigin, startSink } from '../../clients/test-stream/media.js';
import type { TestOrigin, TestSink } from '../../clients/test-stream/media.js';

const INTERVAL_SECONDS = 5;
const INTERVAL_MS = INTERVAL_SECONDS * 1000;

describe('a relay whose path to the origin breaks', () => {
  let dir: string;
  let namespace: RelayNamespace;
  let origin: TestOrigin;
  let sink: TestSink;
  let recorder: HeartbeatRecorder;
  let agent: TestAgent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-netns-'));
    namespace = await createRelayNamespace({ tmpDir: dir });
    const flvPath = await createTestFlv({ dir });
    origin = await startOrigin({ flvPath, host: namespace.hostAddress });
    sink = await startSink({ host: namespace.hostAddress });
    recorder = await startHeartbeatRecorder();
    agent = await startTestAgent({
      statusUrl: recorder.url,
      env: { RELAYWATCH_AGENT_FFMPEG: namespace.ffmpegPath, RELAYWATCH_AGENT_INTERVAL: String(INTERVAL_SECONDS) },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([origin?.stop(), sink?.stop(), recorder?.stop()]);
    await namespace?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const statuses = (id: string) => heartbeatsOf(recorder, id);

  it('reports connect_failed within two intervals of packets to the origin being dropped', async () => {
    await agent.request('POST', '/relays', {
      body: { id: 'cut-path', source: origin.url('/live.flv'), target: sink.url('/ingest/cut.flv') },
    });
    await waitFor('an ok heartbeat', () => statuses('cut-path').some((h) => h.status === 'ok'), { timeoutMs: 20_000 });

    await namespace.dropTcpTo(origin.port);
    const cutAt = Date.now();
    const failed = await waitFor(
      'a connect_failed heartbeat',
      () => recorder.received().find((h) => h.process === 'cut-path' && h.status === 'connect_failed'),
      { timeoutMs: 2 * INTERVAL_MS },
    );
    const receivedAfterMs = failed.receivedAt - cutAt;
    console.info(`connect_failed reached the status center ${receivedAfterMs} ms after the cut (interval ${INTERVAL_MS} ms)`);

    expect(failed).toMatchObject({ kind: 'relay', origin: `http://${namespace.hostAddress}:${origin.port}` });
    expect(failed.detail).toContain('Connection timed out');
  });

  it('reports ok again once the path is repaired', async () => {
    await namespace.clearFaults();

    const recovered = await waitFor(
      'an ok heartbeat after the repair',
      () => {
        const last = statuses('cut-path').at(-1);
        return last?.status === 'ok' && last;
      },
      { timeoutMs: 20_000 },
    );

    expect(recovered.status).toBe('ok');
  });

  it('reports connect_failed when the path answers "no route to host"', async () => {
    await namespace.rejectTcpTo(origin.port, 'host-unreachable');
    await agent.request('POST', '/relays', {
      body: { id: 'no-route', source: origin.url('/live.flv'), target: sink.url('/ingest/no-route.flv') },
    });

    const failed = await waitFor(
      'a connect_failed heartbeat',
      () => recorder.received().find((h) => h.process === 'no-route' && h.status === 'connect_failed'),
      { timeoutMs: 2 * INTERVAL_MS },
    );

    expect(failed.detail).toContain('No route to host');
    expect(statuses('no-route').some((h) => h.status === 'ok')).toBe(false);
  });
});
