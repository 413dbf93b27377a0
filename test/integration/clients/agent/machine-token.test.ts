/**
 * The relay agent with a per-machine reporter token against a real status
 * center: it reports for its own IP and is refused for any other.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Canary } from '../../../helpers/agent-harness.js';
import {
  pollAgent,
  startCenterAndCanary,
  startTestAgent,
} from '../../../helpers/agent-harness.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import { apiClient } from '../../../helpers/status-center.js';

const WAIT = { timeoutMs: 20_000 };

describe('an agent with a per-machine reporter token', () => {
  let center: TestStatusCenter;
  let probes: string;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    let canary: Canary;
    ({ center, canary, stop } = await startCenterAndCanary());
    probes = canary.target;
  });
  afterAll(() => stop?.());

  const tokenFor = async (ip: string) =>
    (
      await apiClient(center)('POST', '/v1/reporter-tokens', {
        role: 'admin',
        body: { ip },
      })
    ).json.token as string;

  it('delivers its reports when the token is for its own IP', async () => {
    const ip = '198.51.100.201';
    const agent = await startTestAgent({
      statusUrl: center.url,
      reporterToken: await tokenFor(ip),
      env: {
        RELAYWATCH_AGENT_IP: ip,
        RELAYWATCH_AGENT_INTERVAL: '0.5',
        RELAYWATCH_AGENT_PROBES: probes,
      },
    });
    try {
      await pollAgent(
        agent,
        '/status',
        'two delivered reports',
        (status) => status.reports.sentBatches >= 2,
        WAIT,
      );
      const view = await apiClient(center)('GET', `/v1/ips/${ip}`, {
        role: 'reader',
      });
      const probesCounted = view.json.minutes.reduce(
        (sum: number, m: { probe: { ok: number } }) => sum + m.probe.ok,
        0,
      );
      expect(probesCounted).toBeGreaterThan(0);
      expect(
        (await agent.request('GET', '/status')).json.reports.rejectedBatches,
      ).toBe(0);
    } finally {
      await agent.stop();
    }
  });

  it('renews its lease with an empty report when it has nothing to report (no relay, no probe), and the status center accepts it', async () => {
    const ip = '198.51.100.204';
    const agent = await startTestAgent({
      statusUrl: center.url,
      reporterToken: await tokenFor(ip),
      env: {
        RELAYWATCH_AGENT_IP: ip,
        RELAYWATCH_AGENT_INTERVAL: '0.5',
        RELAYWATCH_AGENT_PROBES: '',
      },
    });
    try {
      const status = await pollAgent(
        agent,
        '/status',
        'two delivered renewals',
        (status) => status.reports.sentBatches >= 2,
        WAIT,
      );
      // Accepted (202) by the real status center, machine token and all: none refused, none waiting.
      expect(status.reports).toMatchObject({
        sentHeartbeats: 0,
        rejectedBatches: 0,
        failedAttempts: 0,
      });
    } finally {
      await agent.stop();
    }
  });

  it('has its reports refused with 403 when the token is for another machine', async () => {
    const agent = await startTestAgent({
      statusUrl: center.url,
      reporterToken: await tokenFor('198.51.100.202'),
      env: {
        RELAYWATCH_AGENT_IP: '198.51.100.203',
        RELAYWATCH_AGENT_INTERVAL: '0.5',
        RELAYWATCH_AGENT_PROBES: probes,
      },
    });
    try {
      const status = await pollAgent(
        agent,
        '/status',
        'a refused report',
        (status) => status.reports.rejectedBatches >= 1,
        WAIT,
      );
      expect(status.reports.lastError).toBe('HTTP 403');
    } finally {
      await agent.stop();
    }
  });
});
