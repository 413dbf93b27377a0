import { describe, expect, it } from 'vitest';
import {
  openConnections,
  settledConnections,
} from '../../../helpers/connections.js';
import { localEndpoint } from '../../../helpers/local-tables.js';
import {
  apiClient,
  minuteOfRelays,
  postHeartbeats,
  startStatusCenter,
} from '../../../helpers/status-center.js';

/** Settles with whether `promise` had settled by then. */
function settledYet(promise: Promise<unknown>): () => boolean {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return () => settled;
}

describe('stopping the local status center', () => {
  it('lets an aggregation in flight end against a running DynamoDB Local before stopping it', async () => {
    const center = await startStatusCenter({ ownDynamoDb: true });
    const now = Date.now();
    expect(
      await postHeartbeats(
        apiClient(center),
        minuteOfRelays('198.51.100.7', now - 30_000, 'ok'),
      ),
    ).toBe(202);

    const run = center.aggregate(new Date(now).toISOString());
    const ended = settledYet(run);
    await center.stop();

    // Ended before stop() did, and not cut off: it ran to its summary.
    expect(ended()).toBe(true);
    await expect(run).resolves.toMatchObject({ passes: expect.any(Array) });
  });

  it('leaves no connection open to DynamoDB once stopped', async () => {
    const port = Number(new URL(localEndpoint()).port);
    const before = await openConnections(port);
    const center = await startStatusCenter();
    const api = apiClient(center);
    expect(
      await postHeartbeats(
        api,
        minuteOfRelays('198.51.100.8', Date.now() - 30_000, 'ok'),
      ),
    ).toBe(202);
    expect((await api('GET', '/v1/blocklist')).status).toBe(200);
    await center.aggregate();
    expect(await openConnections(port)).toBeGreaterThan(before);

    await center.stop();
    expect(await settledConnections(port, before)).toBe(before);
  });
});
