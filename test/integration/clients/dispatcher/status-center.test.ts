import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../../../clients/dispatcher/cli.js';
import type { BlocklistClient } from '../../../../clients/dispatcher/index.js';
import { createBlocklistClient } from '../../../../clients/dispatcher/index.js';
import {
  dispatchEnv,
  JOB_FLAGS,
  runCli,
} from '../../../helpers/dispatcher-cli.js';
import { recordingLogger } from '../../../helpers/dispatcher-fakes.js';
import type { FakeAgent } from '../../../helpers/dispatcher-servers.js';
import { startFakeAgent } from '../../../helpers/dispatcher-servers.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startStatusCenter,
} from '../../../helpers/status-center.js';

const BANNED = '203.0.113.70';
const OTHER = '203.0.113.71';

/**
 * The client and the CLI against the real status center (local gateway, the
 * Lambda handlers, DynamoDB Local). Tests run in order: the last one stops the
 * center to see the client fail static.
 */
describe('the dispatcher against the real status center', () => {
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;
  let stopped = false;
  // The client's clock runs `offset` ahead of real time, so a ban can expire without waiting.
  let offset = 0;
  let client: BlocklistClient;

  beforeAll(async () => {
    center = await startStatusCenter();
    api = apiClient(center);
    client = createBlocklistClient({
      url: center.url,
      token: center.tokens.reader,
      refreshMs: 10_000,
      maxStaleMs: 600_000,
      now: () => Date.now() + offset,
      logger: recordingLogger(),
    });
  });

  afterAll(async () => {
    await client?.stop();
    if (!stopped) await center?.stop();
  });

  it('loads an empty list and blocks nothing', async () => {
    const result = await client.refresh();

    expect(result.outcome).toBe('updated');
    expect(client.isBlocked(BANNED)).toBe(false);
    expect(client.state()).toMatchObject({ status: 'fresh', activeEntries: 0 });
  });

  it('blocks an IP on the poll after an admin bans it by hand', async () => {
    const put = await api('PUT', `/v1/bans/${BANNED}`, {
      body: { durationSeconds: 600, reason: 'bad uplink' },
    });
    expect(put.status).toBe(201);

    const result = await client.refresh();

    expect(result.outcome).toBe('updated');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.isBlocked(OTHER)).toBe(false);
    expect(client.banOf(BANNED)).toMatchObject({
      reason: 'bad uplink',
      manual: true,
    });
  });

  it('revalidates with the ETag and gets a 304 that leaves the list as it was', async () => {
    const { etag } = client.state();

    const result = await client.refresh();

    expect(etag).toMatch(/^".+"$/);
    expect(result.outcome).toBe('not-modified');
    expect(client.state().etag).toBe(etag);
    expect(client.isBlocked(BANNED)).toBe(true);
  });

  it('is refused with 403 when given a reporter token, and does not take that as an empty list', async () => {
    const wrongRole = createBlocklistClient({
      url: center.url,
      token: center.tokens.reporter,
      logger: recordingLogger(),
      ...(client.snapshot()
        ? { snapshot: client.snapshot() ?? undefined }
        : {}),
    });

    const result = await wrongRole.refresh();

    expect(result.error).toMatchObject({ kind: 'auth', status: 403 });
    expect(wrongRole.isBlocked(BANNED)).toBe(true);
  });

  it('lets relaywatch-dispatch send the job to the agent whose machine is not banned', async () => {
    const agents: FakeAgent[] = await Promise.all([
      startFakeAgent(),
      startFakeAgent(),
    ]);
    try {
      const run = await runCli(
        [
          ...JOB_FLAGS,
          ...['--agent', `${agents[0]?.url}=${BANNED}`],
          ...['--agent', `${agents[1]?.url}=${OTHER}`],
        ],
        { env: dispatchEnv(center, agents[0]?.token) },
      );

      expect(run.code).toBe(EXIT.dispatched);
      expect(run.output).toMatchObject({
        agent: { ip: OTHER },
        why: { panic: false, blocked: [{ ip: BANNED, manual: true }] },
        blocklist: { status: 'fresh' },
      });
      expect(agents.map((agent) => agent.posts.length)).toEqual([0, 1]);
    } finally {
      await Promise.all(agents.map((agent) => agent.stop()));
    }
  });

  it('keeps blocking the banned IP after the status center stops, says it is stale, and lets the ban expire on time', async () => {
    await center.stop();
    stopped = true;

    const result = await client.refresh();

    expect(result.error?.kind).toBe('network');
    expect(client.isBlocked(BANNED)).toBe(true);
    expect(client.state().status).toBe('stale');
    offset = 601_000;
    expect(client.isBlocked(BANNED)).toBe(false);
  });
});
