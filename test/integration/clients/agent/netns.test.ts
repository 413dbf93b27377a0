/**
 * Real network faults: the agent and its relays' ffmpegs run in a private
 * network namespace and reach the origins (HTTP, and nginx-rtmp) across a veth
 * pair; faults are nft rules inside that namespace. Needs root (CI runs as
 * root), nginx and libnginx-mod-rtmp.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  TestOrigin,
  TestSink,
} from '../../../../clients/test-stream/media.js';
import {
  createTestFlv,
  startOrigin,
  startSink,
} from '../../../../clients/test-stream/media.js';
import type {
  AgentProcess,
  HeartbeatRecorder,
} from '../../../helpers/agent-harness.js';
import {
  heartbeatsOf,
  postRelay,
  startAgentProcess,
  startHeartbeatRecorder,
  waitFor,
} from '../../../helpers/agent-harness.js';
import type { RelayNamespace } from '../../../helpers/agent-netns.js';
import { createRelayNamespace } from '../../../helpers/agent-netns.js';
import type { RtmpOrigin } from '../../../helpers/nginx-rtmp.js';
import { startRtmpOrigin } from '../../../helpers/nginx-rtmp.js';

/** Periodic reports are rare, so the failures below can only arrive in change reports. */
const INTERVAL_SECONDS = 60;
const WAIT = { timeoutMs: 30_000 };

describe('relays whose path to the origin breaks (agent and ffmpeg inside a namespace)', () => {
  let dir: string;
  let flvPath: string;
  let namespace: RelayNamespace;
  let origin: TestOrigin;
  let rtmp: RtmpOrigin;
  let sink: TestSink;
  let recorder: HeartbeatRecorder;
  let agent: AgentProcess;

  /** An agent inside the namespace reporting to the recorder; `env` adds settings. */
  const startNamespacedAgent = (env: Record<string, string> = {}) =>
    startAgentProcess({
      statusUrl: recorder.url,
      netns: namespace.name,
      host: namespace.namespaceAddress,
      // Every change here must leave at once, so the change budget is no limit.
      env: {
        RELAYWATCH_AGENT_INTERVAL: String(INTERVAL_SECONDS),
        RELAYWATCH_AGENT_CHANGE_BUDGET: '3600',
        ...env,
      },
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-netns-'));
    namespace = await createRelayNamespace({ tmpDir: dir });
    flvPath = await createTestFlv({ dir });
    origin = await startOrigin({ flvPath, host: namespace.hostAddress });
    rtmp = await startRtmpOrigin({ dir, host: namespace.hostAddress });
    rtmp.publish('published', flvPath);
    sink = await startSink({ host: namespace.hostAddress });
    recorder = await startHeartbeatRecorder({ host: namespace.hostAddress });
    agent = await startNamespacedAgent();
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([
      origin?.stop(),
      rtmp?.stop(),
      sink?.stop(),
      recorder?.stop(),
    ]);
    await namespace?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const statuses = (id: string) => heartbeatsOf(recorder, id);
  /** A relay's logged statuses with their causes: what an assertion on them prints when it fails. */
  const statusTrail = (logs: readonly Record<string, unknown>[], id: string) =>
    JSON.stringify(
      logs
        .filter((e) => e.message === 'relay status' && e.relay === id)
        .map(({ status, cause, detail }) => ({ status, cause, detail })),
    );
  const verdicts = (id: string) =>
    agent.logs
      .filter((entry) => entry.message === 'relay status' && entry.relay === id)
      .map((entry) => entry.status);

  /** Starts a relay, waits until it flows, cuts its origin's port, and returns the first failure report (timed, not asserted). */
  async function cutFlowingRelay(
    id: string,
    source: string,
    originPort: number,
  ) {
    const answer = await postRelay(agent, sink, id, source);
    expect(answer.status).toBe(201);
    await waitFor(
      'an ok heartbeat',
      () => statuses(id).some((h) => h.status === 'ok'),
      WAIT,
    );

    await namespace.dropTcpTo(originPort);
    const cutAt = Date.now();
    const failed = await waitFor(
      'a failure heartbeat',
      () =>
        recorder
          .received()
          .find(
            (h) =>
              h.process === id && h.status !== 'ok' && h.receivedAt >= cutAt,
          ),
      WAIT,
    );
    console.info(
      `${id}: ${failed.status} reached the status center ${failed.receivedAt - cutAt} ms after the cut`,
    );
    return failed;
  }

  it("reports connect_failed, and no error before it, as soon as packets to a flowing HTTP relay's origin are dropped", async () => {
    const failed = await cutFlowingRelay(
      'cut-http',
      origin.url('/live.flv'),
      origin.port,
    );

    expect(failed).toMatchObject({
      kind: 'relay',
      status: 'connect_failed',
      origin: `http://${namespace.hostAddress}:${origin.port}`,
    });
    expect(failed.detail).toMatch(
      /^origin check: connect to \S+ failed: Connection timed out/,
    );
    expect(verdicts('cut-http')).toEqual(['ok', 'connect_failed']);
  });

  it('reports ok again once the HTTP path is repaired', async () => {
    await namespace.clearFaults();

    const recovered = await waitFor(
      'an ok heartbeat after the repair',
      () => statuses('cut-http').at(-1)?.status === 'ok',
      WAIT,
    );

    expect(recovered).toBe(true);
    // A stalled run that ends as the path comes back keeps its connect_failed
    // (the next test makes that order certain); a failure lists the causes.
    expect(verdicts('cut-http'), statusTrail(agent.logs, 'cut-http')).toEqual([
      'ok',
      'connect_failed',
      'ok',
    ]);
  });

  it('keeps connect_failed, and no error, for a stalled HTTP run that ends after its path is repaired', async () => {
    // No stall or I/O timeout of this agent ends a run during the test: the
    // test ends the stalled run itself, after the repair, as the stall
    // watchdog would (SIGKILL). Its own origin leaves the other relays alone.
    const own = await startOrigin({ flvPath, host: namespace.hostAddress });
    const patient = await startNamespacedAgent({
      RELAYWATCH_AGENT_IO_TIMEOUT: '120',
      RELAYWATCH_AGENT_STALL_TIMEOUT: '120',
    });
    const id = 'repaired-under-stall';
    try {
      const answer = await postRelay(patient, sink, id, own.url('/live.flv'));
      expect(answer.status).toBe(201);
      await waitFor(
        'an ok heartbeat',
        () => statuses(id).some((h) => h.status === 'ok'),
        WAIT,
      );
      const stalledFlows = await namespace.tcpConnectionsTo(own.port);
      expect(stalledFlows).toHaveLength(1);

      await namespace.dropTcpTo(own.port);
      await waitFor(
        'a connect_failed heartbeat',
        () => statuses(id).some((h) => h.status === 'connect_failed'),
        WAIT,
      );
      // New connections get through again; the stalled run's stays dead, so
      // its stream cannot resume, and the check after it ends connects.
      await namespace.clearFaultsExcept(own.port, stalledFlows);
      const { json: running } = await patient.request('GET', `/relays/${id}`);
      process.kill(running.pid, 'SIGKILL');
      await waitFor(
        'an ok heartbeat after the repair',
        () => statuses(id).at(-1)?.status === 'ok',
        WAIT,
      );

      const logged = patient.logs.filter((entry) => entry.relay === id);
      expect(
        logged
          .filter((entry) => entry.message === 'relay status')
          .map((entry) => entry.status),
        statusTrail(patient.logs, id),
      ).toEqual(['ok', 'connect_failed', 'ok']);
      expect(
        logged.find((entry) => entry.message === 'relay run ended'),
      ).toMatchObject({
        run: 1,
        signal: 'SIGKILL',
        status: 'connect_failed',
        cause: 'connect_timeout',
      });
    } finally {
      await patient.stop();
      await namespace.clearFaults();
      await own.stop();
    }
  }, 60_000);

  it("reports connect_failed, and no error before it, as soon as packets to a flowing RTMP relay's origin are dropped", async () => {
    const failed = await cutFlowingRelay(
      'cut-rtmp',
      rtmp.url('published'),
      rtmp.port,
    );

    expect(failed).toMatchObject({
      kind: 'relay',
      status: 'connect_failed',
      origin: `rtmp://${namespace.hostAddress}:${rtmp.port}`,
    });
    expect(failed.detail).toMatch(
      /^origin check: connect to \S+ failed: Connection timed out/,
    );
    expect(verdicts('cut-rtmp')).toEqual(['ok', 'connect_failed']);
  });

  it('reports the RTMP relay ok again once the path is repaired', async () => {
    await namespace.clearFaults();

    const recovered = await waitFor(
      'an ok heartbeat after the repair',
      () => statuses('cut-rtmp').at(-1)?.status === 'ok',
      WAIT,
    );

    expect(recovered).toBe(true);
  });

  it('answers 502 connect_failed to a job whose origin this machine cannot reach, and reports it', async () => {
    await namespace.dropTcpTo(rtmp.port);
    const postedAt = Date.now();

    const answer = await postRelay(
      agent,
      sink,
      'unreachable',
      rtmp.url('published'),
    );
    console.info(
      `unreachable RTMP origin: 502 after ${Date.now() - postedAt} ms`,
    );
    await namespace.clearFaults();

    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({
      code: 'relay_failed',
      status: 'connect_failed',
      cause: 'connect_timeout',
    });
    const reported = await waitFor(
      'the failed start reported',
      () => statuses('unreachable')[0],
      WAIT,
    );
    expect(reported.status).toBe('connect_failed');
    expect((await agent.request('GET', '/relays/unreachable')).status).toBe(
      404,
    );
  });

  it('answers 502 connect_failed when the path answers "no route to host"', async () => {
    await namespace.rejectTcpTo(origin.port, 'host-unreachable');

    const answer = await postRelay(
      agent,
      sink,
      'no-route',
      origin.url('/live.flv'),
    );
    await namespace.clearFaults();

    expect(answer.status).toBe(502);
    expect(answer.json).toMatchObject({
      code: 'relay_failed',
      status: 'connect_failed',
      cause: 'no_route_to_host',
    });
    expect(answer.json.detail).toContain('No route to host');
    const reported = await waitFor(
      'the failed start reported',
      () => statuses('no-route')[0],
      WAIT,
    );
    expect(reported.status).toBe('connect_failed');
  });
});
