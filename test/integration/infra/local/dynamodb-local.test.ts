import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDynamoDbLocal } from '../../../../infra/local/dynamodb-local.js';
import {
  freePort,
  listensOn,
  PortTakenError,
  portOpen,
} from '../../../../infra/local/ports.js';
import { listTables } from '../../../helpers/list-tables.js';

/** The pids of the java processes started with `-port <port>`. */
async function javaOn(port: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8')
      .then((text) => text.split('\0'))
      .catch(() => [] as string[]);
    const at = args.indexOf('-port');
    if (args[0] === 'java' && at >= 0 && args[at + 1] === String(port))
      pids.push(Number(entry));
  }
  return pids;
}

function listen(
  port: number,
  where: { host: string; ipv6Only?: boolean } = { host: '127.0.0.1' },
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ port, ...where }, () => resolve(server));
  });
}

describe('DynamoDB Local started for the local status center and the tests', () => {
  const closing: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
  });

  it('fails with PortTakenError, and leaves no java behind, when another process takes its port before java binds it', async () => {
    const port = await freePort();
    const starting = startDynamoDbLocal({ port });
    // java takes over a second to bind; the port is free when it is checked.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const impostor = await listen(port);
    closing.push(() => new Promise((resolve) => impostor.close(resolve)));

    const error = await starting.then(
      (dynamodb) => {
        closing.push(() => dynamodb.stop());
        return undefined;
      },
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(PortTakenError);
    expect((error as Error).message).toBe(
      `port ${port} is already in use; choose another (DYNAMODB_PORT)`,
    );
    expect(await javaOn(port)).toEqual([]);
    expect(await portOpen(port)).toBe(true); // the impostor's, untouched
  });

  it('fails with PortTakenError when java cannot bind a port taken where portOpen does not look (IPv6 only)', async () => {
    const port = await freePort();
    const taken = await listen(port, { host: '::', ipv6Only: true });
    closing.push(() => new Promise((resolve) => taken.close(resolve)));
    expect(await portOpen(port)).toBe(false); // free on 127.0.0.1

    const error = await startDynamoDbLocal({ port }).then(
      (dynamodb) => {
        closing.push(() => dynamodb.stop());
        return undefined;
      },
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(PortTakenError);
    expect(await javaOn(port)).toEqual([]);
  });

  it('starts on a free port of its choosing with port 0, answers there, and frees it on stop', async () => {
    const dynamodb = await startDynamoDbLocal({ port: 0 });
    closing.push(() => dynamodb.stop());
    expect(dynamodb.port).toBeGreaterThan(0);
    expect(dynamodb.endpoint).toBe(`http://127.0.0.1:${dynamodb.port}`);
    const [pid] = await javaOn(dynamodb.port);
    expect(await listensOn(pid as number, dynamodb.port)).toBe(true);
    expect(await listensOn(process.pid, dynamodb.port)).toBe(false);

    expect(await listTables(dynamodb.endpoint)).toEqual([]);

    await dynamodb.stop();
    expect(await portOpen(dynamodb.port)).toBe(false);
    expect(await javaOn(dynamodb.port)).toEqual([]);
  });
});
