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

/** A TCP socket of this host, from /proc/net/tcp and tcp6 (Linux). */
export type TcpSocket = {
  localPort: number;
  remotePort: number;
  /** /proc's state: 0A listening, 01 established. */
  state: string;
  /** As a process's fd links name it: socket:[<inode>]. */
  inode: string;
};

/** Every TCP socket of this host (Linux /proc); undefined where there is no /proc. */
export async function tcpSockets(): Promise<TcpSocket[] | undefined> {
  const sockets: TcpSocket[] = [];
  const portOf = (address: string) =>
    Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
  try {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
      for (const line of (await readFile(table, 'utf8')).split('\n').slice(1)) {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        if (fields.length < 10) continue;
        sockets.push({
          localPort: portOf(fields[1] as string),
          remotePort: portOf(fields[2] as string),
          state: fields[3] as string,
          inode: `socket:[${fields[9]}]`,
        });
      }
  } catch {
    return undefined;
  }
  return sockets;
}

/** The sockets process <pid> holds open, as its fd links name them; empty once it is gone. */
export async function socketsHeldBy(
  pid: number | 'self',
): Promise<Set<string>> {
  const held = new Set<string>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds)
    held.add(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
  return held;
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
  const sockets = await tcpSockets();
  if (!sockets) return undefined;
  const listeners = sockets.filter(
    (socket) => socket.localPort === port && socket.state === '0A',
  );
  const held = await socketsHeldBy(pid);
  return (
    listeners.length > 0 && listeners.every((socket) => held.has(socket.inode))
  );
}

/** Another process listens on the port a server was to be started on. */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    /** What to do about it, for a port the user chose. */
    advice = '',
  ) {
    super(`port ${port} is already in use${advice}`);
    this.name = 'PortTakenError';
  }
}

/** Tries with a port chosen anew (onFreePort). */
const FREE_PORT_TRIES = 5;

/**
 * Starts a server on a port free on `host` (`start` binds it), choosing
 * another when `start` finds it taken (PortTakenError: another process
 * bound it between freePort and the server), up to FREE_PORT_TRIES times.
 */
export async function onFreePort<T>(
  start: (port: number) => Promise<T>,
  host = '127.0.0.1',
): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await start(await freePort(host));
    } catch (error) {
      if (!(error instanceof PortTakenError) || tries === FREE_PORT_TRIES)
        throw error;
    }
  }
}
