import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestFlv,
  startOrigin,
  startSink,
} from '../../../../clients/test-stream/media.js';
import type {
  HeartbeatRecorder,
  TestAgent,
} from '../../../helpers/agent-harness.js';
import {
  startHeartbeatRecorder,
  startTestAgent,
  waitFor,
} from '../../../helpers/agent-harness.js';

const WAIT = { timeoutMs: 15_000 };

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve()),
  );
  return (server.address() as AddressInfo).port;
}

describe('probing reachability every interval', () => {
  let canary: Server;
  let canaryPort: number;
  let closedPort: number;
  let recorder: HeartbeatRecorder;
  let agent: TestAgent;

  beforeAll(async () => {
    canary = createServer((socket) => socket.end());
    canaryPort = await listen(canary);
    const closed = createServer();
    closedPort = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    recorder = await startHeartbeatRecorder();
    agent = await startTestAgent({
      statusUrl: recorder.url,
      env: {
        RELAYWATCH_AGENT_INTERVAL: '1',
        RELAYWATCH_AGENT_PROBES: `127.0.0.1:${canaryPort},127.0.0.1:${closedPort}`,
      },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await recorder?.stop();
    await new Promise<void>((resolve) =>
      canary ? canary.close(() => resolve()) : resolve(),
    );
  });

  it('reports a reachable canary as an ok probe heartbeat from a machine with no relays', async () => {
    const process = `probe:127.0.0.1:${canaryPort}`;

    const probe = await waitFor(
      'a canary probe',
      () => recorder.received().find((h) => h.process === process),
      WAIT,
    );

    expect(probe).toMatchObject({
      kind: 'probe',
      status: 'ok',
      ip: agent.config.ip,
      origin: `tcp://127.0.0.1:${canaryPort}`,
    });
  });

  it('reports a canary that refuses the connection as origin_error', async () => {
    const process = `probe:127.0.0.1:${closedPort}`;

    const probe = await waitFor(
      'a refused probe',
      () => recorder.received().find((h) => h.process === process),
      WAIT,
    );

    expect(probe).toMatchObject({ kind: 'probe', status: 'origin_error' });
    expect(probe.detail).toContain('ECONNREFUSED');
  });

  it('probes again every interval', async () => {
    const process = `probe:127.0.0.1:${canaryPort}`;

    await waitFor(
      'three canary probes',
      () =>
        recorder.received().filter((h) => h.process === process).length >= 3,
      WAIT,
    );
  });
});

describe('probing the origins of relays', () => {
  it('probes the host and port of a relay origin and names the relay origin in the heartbeat', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-probes-'));
    const origin = await startOrigin({ flvPath: await createTestFlv({ dir }) });
    const sink = await startSink();
    const recorder = await startHeartbeatRecorder();
    const agent = await startTestAgent({
      statusUrl: recorder.url,
      env: {
        RELAYWATCH_AGENT_INTERVAL: '1',
        RELAYWATCH_AGENT_PROBE_ORIGINS: 'true',
      },
    });
    try {
      await agent.request('POST', '/relays', {
        body: {
          id: 'probed',
          source: origin.url('/live.flv'),
          target: sink.url('/ingest/p.flv'),
        },
      });

      const probe = await waitFor(
        'an origin probe',
        () =>
          recorder
            .received()
            .find((h) => h.process === `probe:127.0.0.1:${origin.port}`),
        WAIT,
      );

      expect(probe).toMatchObject({
        kind: 'probe',
        status: 'ok',
        origin: `http://127.0.0.1:${origin.port}`,
      });
    } finally {
      await agent.stop();
      await Promise.all([origin.stop(), sink.stop(), recorder.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
