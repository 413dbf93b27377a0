import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_LIMITS } from '../../../../clients/agent/job.js';
import type { TestSink } from '../../../../clients/test-stream/media.js';
import type { RelayRig, TestAgent } from '../../../helpers/agent-harness.js';
import {
  isRunning,
  pollAgent,
  startHeartbeatRecorder,
  startRelayRig,
  startTestAgent,
} from '../../../helpers/agent-harness.js';

describe('the job API', () => {
  let rig: RelayRig;
  let sink: TestSink;
  let agent: TestAgent;
  let job: { id: string; source: string; target: string };

  beforeAll(async () => {
    rig = await startRelayRig({ env: { RELAYWATCH_AGENT_MAX_RELAYS: '2' } });
    ({ sink, agent } = rig);
    job = {
      id: 'api-1',
      source: rig.origin.url('/live.flv'),
      target: sink.url('/ingest/api-1.flv'),
    };
  });

  afterAll(() => rig?.stop());

  describe('authentication', () => {
    it('answers 401 naming the authorization header when the token is missing', async () => {
      const answer = await agent.request('GET', '/relays', { token: null });

      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toBe('Bearer');
      expect(answer.json).toEqual({
        code: 'unauthorized',
        error: expect.any(String),
        issues: [{ path: 'authorization', message: expect.any(String) }],
      });
    });

    it('answers 401 to a wrong token and starts nothing', async () => {
      const answer = await agent.request('POST', '/relays', {
        token: 'wrong-token',
        body: { ...job, id: 'intruder' },
      });

      expect(answer.status).toBe(401);
      expect((await agent.request('GET', '/relays/intruder')).status).toBe(404);
    });
  });

  describe('creating a relay', () => {
    it('answers 201 with the relay once it flows, and it runs an ffmpeg', async () => {
      const answer = await agent.request('POST', '/relays', { body: job });

      expect(answer.status).toBe(201);
      expect(answer.headers.get('location')).toBe('/relays/api-1');
      expect(answer.json).toMatchObject({
        id: 'api-1',
        source: job.source,
        target: job.target,
        state: 'flowing',
      });
      const running = await pollAgent(
        agent,
        '/relays/api-1',
        'a pid',
        (relay) => relay.pid,
        { timeoutMs: 10_000 },
      );
      expect(isRunning(running.pid)).toBe(true);
    });

    it('counts the flowing relay and its origin check on GET /metrics, in Prometheus text, behind the same token', async () => {
      const refused = await agent.request('GET', '/metrics', { token: null });
      const answer = await agent.request('GET', '/metrics');

      expect(refused.status).toBe(401);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe(
        'text/plain; version=0.0.4; charset=utf-8',
      );
      expect(answer.text).toContain('# TYPE relaywatch_agent_relays gauge');
      expect(answer.text).toMatch(
        /^relaywatch_agent_relays\{state="flowing",status="ok"\} 1$/m,
      );
      expect(answer.text).toMatch(
        /^relaywatch_agent_origin_checks_total\{status="ok"\} [1-9]\d*$/m,
      );
      expect(answer.text).toMatch(
        /^relaywatch_agent_report_batches_total\{outcome="sent"\} \d+$/m,
      );
    });

    it('answers 200 to the same job again and keeps one relay', async () => {
      const answer = await agent.request('POST', '/relays', { body: job });

      expect(answer.status).toBe(200);
      expect(
        (await agent.request('GET', '/relays')).json.relays.filter(
          (r: { id: string }) => r.id === 'api-1',
        ),
      ).toHaveLength(1);
    });

    it('answers 409 naming the id when the id already relays something else', async () => {
      const answer = await agent.request('POST', '/relays', {
        body: { ...job, target: sink.url('/ingest/other.flv') },
      });

      expect(answer.status).toBe(409);
      expect(answer.json).toMatchObject({
        code: 'relay_exists',
        issues: [{ path: 'id' }],
      });
    });

    it('answers 409 once the relay limit is reached', async () => {
      await agent.request('POST', '/relays', { body: { ...job, id: 'api-2' } });

      const answer = await agent.request('POST', '/relays', {
        body: { ...job, id: 'api-3' },
      });

      expect(answer.status).toBe(409);
      expect(answer.json.code).toBe('relay_limit');
    });

    it('answers 400 naming each bad field', async () => {
      const answer = await agent.request('POST', '/relays', {
        body: {
          id: 'bad id',
          source: 'file:///etc/passwd',
          target: 'rtmp://ingest.example/live/key',
        },
      });

      expect(answer.status).toBe(400);
      expect(answer.json.code).toBe('invalid_relay');
      expect(
        answer.json.issues.map((issue: { path: string }) => issue.path).sort(),
      ).toEqual(['id', 'source']);
    });

    it('answers 400 naming the body when it is not JSON', async () => {
      const answer = await agent.request('POST', '/relays', {
        body: '{"id": ',
      });

      expect(answer.status).toBe(400);
      expect(answer.json).toMatchObject({
        code: 'invalid_json',
        issues: [{ path: '(body)' }],
      });
    });

    it('answers 415 when the body is not declared as JSON', async () => {
      const answer = await agent.request('POST', '/relays', {
        body: JSON.stringify(job),
        headers: { 'content-type': 'text/plain' },
      });

      expect(answer.status).toBe(415);
      expect(answer.json.issues[0].path).toBe('content-type');
    });

    it('answers 413 to a body over the limit', async () => {
      const body = JSON.stringify({
        ...job,
        id: 'big',
        padding: 'x'.repeat(JOB_LIMITS.maxBodyBytes),
      });

      const answer = await agent.request('POST', '/relays', { body });

      expect(answer.status).toBe(413);
      expect(answer.json.code).toBe('body_too_large');
    });

    it('answers 400 naming the source when its URL is over the length limit', async () => {
      const source = `http://origin.example/${'a'.repeat(JOB_LIMITS.maxUrlLength)}`;

      const answer = await agent.request('POST', '/relays', {
        body: { ...job, id: 'long-url', source },
      });

      expect(answer.status).toBe(400);
      expect(answer.json.issues).toEqual([
        {
          path: 'source',
          message: `must be at most ${JOB_LIMITS.maxUrlLength} characters`,
        },
      ]);
    });
  });

  describe('reading and deleting relays', () => {
    it('answers 400 naming the id for an id over the length limit', async () => {
      const answer = await agent.request(
        'GET',
        `/relays/${'x'.repeat(JOB_LIMITS.maxIdLength + 1)}`,
      );

      expect(answer.status).toBe(400);
      expect(answer.json.issues[0].path).toBe('id');
    });

    it('answers 404 for an unknown relay and an unknown route, 405 for a wrong method', async () => {
      expect((await agent.request('DELETE', '/relays/nobody')).status).toBe(
        404,
      );
      expect((await agent.request('GET', '/nowhere')).status).toBe(404);
      const wrongMethod = await agent.request('PUT', '/relays');
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('GET, POST');
    });

    it('stops the ffmpeg of a deleted relay before answering 204', async () => {
      const pid = (await agent.request('GET', '/relays/api-2')).json
        .pid as number;
      expect(isRunning(pid)).toBe(true);

      const answer = await agent.request('DELETE', '/relays/api-2');

      expect(answer.status).toBe(204);
      expect(isRunning(pid)).toBe(false);
    });

    it('shows the machine IP, relay counts and report delivery counters in GET /status', async () => {
      const answer = await agent.request('GET', '/status');

      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({
        ip: agent.config.ip,
        relays: { total: 1 },
        reports: {
          droppedHeartbeats: 0,
          rejectedHeartbeats: 0,
          queuedBatches: expect.any(Number),
        },
      });
    });
  });
});

describe('deleting a relay while its start is being confirmed', () => {
  it('answers the pending POST 409 relay_stopped and keeps nothing', async () => {
    // The origin accepts and never answers: ffmpeg waits out its I/O timeout, the POST its confirm timeout.
    const { origin, agent, stop } = await startRelayRig({
      env: {
        RELAYWATCH_AGENT_IO_TIMEOUT: '60',
        RELAYWATCH_AGENT_CONFIRM_TIMEOUT: '60',
        RELAYWATCH_AGENT_STARTUP_TIMEOUT: '120',
      },
    });
    try {
      const pending = agent.request('POST', '/relays', {
        body: {
          id: 'pending',
          source: origin.url('/hang'),
          target: 'http://127.0.0.1:9/ingest/x.flv',
        },
      });
      await pollAgent(
        agent,
        '/relays/pending',
        'the relay listed as starting',
        (relay) => relay.state === 'starting',
        { timeoutMs: 20_000 },
      );

      const deleted = await agent.request('DELETE', '/relays/pending');
      const answer = await pending;

      expect(deleted.status).toBe(204);
      expect(answer.status).toBe(409);
      expect(answer.json).toMatchObject({
        code: 'relay_stopped',
        issues: [{ path: 'id' }],
      });
      expect((await agent.request('GET', '/relays')).json.relays).toEqual([]);
    } finally {
      await stop();
    }
  });
});

describe('stopping an ffmpeg that ignores SIGTERM', () => {
  it('kills it with SIGKILL after the stop grace and answers 204', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaywatch-agent-stubborn-'));
    // Stands in for an ffmpeg stuck writing to a dead output: once it has
    // reported a frame on the progress descriptor, it ignores SIGTERM.
    const stubborn = join(dir, 'stubborn-ffmpeg.sh');
    const program = [
      "process.on('SIGTERM', () => {});",
      "require('node:fs').writeSync(3, 'frame=1\\nout_time_us=40000\\nspeed=1x\\nprogress=continue\\n');",
      'setInterval(() => {}, 1000);',
    ].join(' ');
    await writeFile(
      stubborn,
      `#!/bin/sh\nexec "${process.execPath}" -e "${program}"\n`,
    );
    await chmod(stubborn, 0o755);
    const recorder = await startHeartbeatRecorder();
    const agent = await startTestAgent({
      statusUrl: recorder.url,
      env: {
        RELAYWATCH_AGENT_FFMPEG: stubborn,
        RELAYWATCH_AGENT_STOP_GRACE: '0.5',
        RELAYWATCH_AGENT_STARTUP_TIMEOUT: '60',
      },
    });
    try {
      // The source names a port that accepts connects, so the agent's origin check passes.
      await agent.request('POST', '/relays', {
        body: {
          id: 'stubborn',
          source: `${recorder.url}/live.flv`,
          target: 'http://127.0.0.1:9/ingest/x.flv',
        },
      });
      const running = await pollAgent(
        agent,
        '/relays/stubborn',
        'the stand-in reporting a frame',
        (relay) => relay.status === 'ok',
        { timeoutMs: 10_000 },
      );
      const pid = running.pid as number;

      const answer = await agent.request('DELETE', '/relays/stubborn');

      expect(answer.status).toBe(204);
      expect(isRunning(pid)).toBe(false);
      expect(
        agent.logs.some(
          (entry) => entry.message === 'relay ignored SIGTERM; killing',
        ),
      ).toBe(true);
    } finally {
      await agent.stop();
      await recorder.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
