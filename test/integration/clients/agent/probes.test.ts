import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  Canary,
  HeartbeatRecorder,
  TestAgent,
} from '../../../helpers/agent-harness.js';
import {
  startCanary,
  startHeartbeatRecorder,
  startRelayRig,
  startTestAgent,
  waitFor,
} from '../../../helpers/agent-harness.js';
import { REFUSING_PORT } from '../../../helpers/connections.js';

const WAIT = { timeoutMs: 15_000 };

describe('probing reachability every interval', () => {
  let canary: Canary;
  let canaryPort: number;
  let closedPort: number;
  let recorder: HeartbeatRecorder;
  let agent: TestAgent;

  beforeAll(async () => {
    canary = await startCanary();
    canaryPort = canary.port;
    closedPort = REFUSING_PORT;
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
    await canary?.stop();
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
    const { origin, recorder, post, stop } = await startRelayRig({
      env: {
        RELAYWATCH_AGENT_INTERVAL: '1',
        RELAYWATCH_AGENT_PROBE_ORIGINS: 'true',
      },
    });
    try {
      await post('probed');

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
      await stop();
    }
  });
});
