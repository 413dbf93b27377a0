import { readdir, readFile, readlink } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';

/** A TCP port free on `host` right now (free, not reserved: another process may take it next). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address ? address.port : 0),
      );
    });
  });
}

/**
 * Whether something accepts TCP connections on <host>:<port>; false after
 * 1 s without an answer (a host whose packets are dropped).
 */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether the process <pid> holds every socket listening on <port> (there
 * may be one per address family), from /proc (Linux); undefined where that
 * cannot be told. A port checked free (freePort) can be taken by another
 * process before the server started on it binds it: the server then fails,
 * but the port answers, and a client would talk to whatever took it.
 */
export async function listensOn(
  pid: number,
  port: number,
): Promise<boolean | undefined> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const listeners: string[] = [];
  try {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
      for (const line of (await readFile(table, 'utf8')).split('\n')) {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        if (fields[1]?.endsWith(`:${portHex}`) && fields[3] === '0A')
          listeners.push(`socket:[${fields[9]}]`);
      }
  } catch {
    return undefined;
  }
  const held = new Set<string>();
  try {
    for (const fd of await readdir(`/proc/${pid}/fd`))
      held.add(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
  } catch {
    return false; // gone
  }
  return listeners.length > 0 && listeners.every((socket) => held.has(socket));
}
