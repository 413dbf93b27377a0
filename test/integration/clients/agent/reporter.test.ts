/**
 * The agent's reports against a real status center (DynamoDB Local + local
 * gateway). A recorder sits in between to take the status center "down" and
 * to lose acknowledgements after a batch was stored.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  Canary,
  HeartbeatRecorder,
  TestAgent,
} from '../../../helpers/agent-harness.js';
import {
  pollAgent,
  startCenterAndCanary,
  startHeartbeatRecorder,
  startTestAgent,
  waitFor,
} from '../../../helpers/agent-harness.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import { apiClient } from '../../../helpers/status-center.js';

type Counts = {
  ok: number;
  connect_failed: number;
  origin_error: number;
  error: number;
};
type IpView = { minutes: { relay: Counts; probe: Counts }[] };

const total = (counts: Counts) =>
  counts.ok + counts.connect_failed + counts.origin_error + counts.error;
const WAIT = { timeoutMs: 20_000 };

describe('delivering reports to a real status center', () => {
  let center: TestStatusCenter;
  let canary: Canary;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ center, canary, stop } = await startCenterAndCanary());
  });

  afterAll(() => stop?.());

  describe('through an outage and lost acknowledgements', () => {
    let recorder: HeartbeatRecorder;
    let agent: TestAgent;

    beforeAll(async () => {
      recorder = await startHeartbeatRecorder({ upstream: center.url });
      agent = await startTestAgent({
        statusUrl: recorder.url,
        reporterToken: center.tokens.reporter,
        env: {
          RELAYWATCH_AGENT_INTERVAL: '0.5',
          RELAYWATCH_AGENT_PROBES: canary.target,
        },
      });
    });

    afterAll(async () => {
      await agent?.stop();
      await recorder?.stop();
    });

    const fates = (fate: string) =>
      recorder.posts.filter((post) => post.fate === fate);
    const reportsUntil = (what: string, accept: (reports: any) => boolean) =>
      pollAgent(
        agent,
        '/status',
        what,
        (status) => accept(status.reports),
        WAIT,
      );

    it('buffers while the status center is down, then delivers each batch once, with its batchId', async () => {
      await waitFor(
        'two delivered reports',
        () => fates('forwarded').length >= 2,
        WAIT,
      );

      recorder.setMode('unavailable');
      await reportsUntil(
        'three reports held back',
        (reports) => reports.queuedBatches >= 3,
      );
      recorder.setMode('store-then-drop');
      await waitFor(
        'a stored batch whose answer was lost',
        () => fates('forwarded-then-dropped').length >= 1,
        WAIT,
      );
      recorder.setMode('up');
      const lostAck = fates('forwarded-then-dropped')[0]?.batchId;
      await waitFor(
        'the lost-ack batch sent again',
        () => fates('forwarded').some((post) => post.batchId === lostAck),
        WAIT,
      );
      await reportsUntil(
        'an empty buffer',
        (reports) => reports.queuedBatches === 0,
      );
      await agent.stop();

      const stored = recorder.posts.filter(
        (post) =>
          post.fate === 'forwarded' || post.fate === 'forwarded-then-dropped',
      );
      const distinct = new Map(
        stored.map((post) => [post.batchId, post.heartbeats.length]),
      );
      const sentOnce = [...distinct.values()].reduce((sum, n) => sum + n, 0);
      const api = apiClient(center);
      const view = (
        await api('GET', `/v1/ips/${agent.config.ip}`, { role: 'reader' })
      ).json as IpView;
      const counted = view.minutes.reduce(
        (sum, minute) => sum + total(minute.probe) + total(minute.relay),
        0,
      );
      const finalReports = agent.agent.reporter.stats();

      expect(stored.length).toBeGreaterThan(distinct.size);
      expect(
        fates('unavailable').every((post) => distinct.has(post.batchId)),
      ).toBe(true);
      expect(finalReports).toMatchObject({
        droppedHeartbeats: 0,
        rejectedHeartbeats: 0,
        staleHeartbeats: 0,
      });
      expect(counted).toBe(sentOnce);
    });
  });

  describe('when the status center refuses the reporter token', () => {
    it('drops and counts the refused reports instead of retrying them, and keeps running', async () => {
      const agent = await startTestAgent({
        statusUrl: center.url,
        reporterToken: 'not-the-reporter-token',
        env: {
          RELAYWATCH_AGENT_INTERVAL: '0.5',
          RELAYWATCH_AGENT_PROBES: canary.target,
        },
      });
      try {
        const status = await pollAgent(
          agent,
          '/status',
          'two refused reports',
          (status) => status.reports.rejectedBatches >= 2,
          WAIT,
        );

        expect(status.reports).toMatchObject({
          failedAttempts: 0,
          queuedBatches: 0,
        });
        expect(status.reports.lastError).toBe('HTTP 401');
        expect(
          agent.logs.some(
            (entry) =>
              entry.message === 'status center refused a report; dropped' &&
              entry.status === 401,
          ),
        ).toBe(true);
      } finally {
        await agent.stop();
      }
    });
  });
});
