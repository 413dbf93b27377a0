import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { socketsHeldBy, tcpSockets } from '../../../../infra/local/ports.js';
import { ensureTable } from '../../../../infra/local/table.js';
import {
  localEndpoint,
  recordLocalTable,
} from '../../../helpers/local-tables.js';

/**
 * This process's open connections to DynamoDB Local (/proc), idle keep-alive
 * ones included: an SDK client left undestroyed keeps one.
 */
async function openConnections(): Promise<number> {
  const port = Number(new URL(localEndpoint()).port);
  const held = await socketsHeldBy('self');
  return ((await tcpSockets()) ?? []).filter(
    (socket) =>
      socket.remotePort === port &&
      socket.state === '01' &&
      held.has(socket.inode),
  ).length;
}

/** The open connections once those closing have closed (or after 2 s). */
async function settledConnections(expected: number): Promise<number> {
  const deadline = Date.now() + 2_000;
  while ((await openConnections()) !== expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return openConnections();
}

describe('ensureTable (the local status center makes its table)', () => {
  it('makes the table once, then finds it, and leaves no connection open either way', async () => {
    const tableName = `relaywatch-ensure-${randomBytes(6).toString('hex')}`;
    recordLocalTable(tableName);
    const options = {
      endpoint: localEndpoint(),
      region: 'us-east-1',
      tableName,
    };
    const before = await openConnections();

    const made = await ensureTable(options);
    expect(made.created).toBe(true);
    expect(made.streamArn).toMatch(/:table\/relaywatch-ensure-/);
    expect(await settledConnections(before)).toBe(before);

    const found = await ensureTable(options);
    expect(found).toEqual({ created: false, streamArn: made.streamArn });
    expect(await settledConnections(before)).toBe(before);
  });
});
