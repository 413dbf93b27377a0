import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ensureTable } from '../../../../infra/local/table.js';
import {
  localEndpoint,
  recordLocalTable,
} from '../../../helpers/local-tables.js';

/**
 * This process's open connections to DynamoDB Local (/proc), idle keep-alive
 * ones included: an SDK client left undestroyed keeps one.
 */
function openConnections(): number {
  const port = Number(new URL(localEndpoint()).port);
  const remote = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((table) => readFileSync(table, 'utf8').split('\n'))
    .map((line) => line.trim().split(/\s+/))
    // sl local_address rem_address st … inode; st 01: established
    .filter((fields) => fields[2]?.endsWith(remote) && fields[3] === '01')
    .map((fields) => `socket:[${fields[9]}]`);
  const held = new Set(
    readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    }),
  );
  return inodes.filter((inode) => held.has(inode)).length;
}

/** The open connections once those closing have closed (or after 2 s). */
async function settledConnections(expected: number): Promise<number> {
  const deadline = Date.now() + 2_000;
  while (openConnections() !== expected && Date.now() < deadline)
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
    const before = openConnections();

    const made = await ensureTable(options);
    expect(made.created).toBe(true);
    expect(made.streamArn).toMatch(/:table\/relaywatch-ensure-/);
    expect(await settledConnections(before)).toBe(before);

    const found = await ensureTable(options);
    expect(found).toEqual({ created: false, streamArn: made.streamArn });
    expect(await settledConnections(before)).toBe(before);
  });
});
