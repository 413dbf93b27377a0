import { socketsHeldBy, tcpSockets } from '../../infra/local/ports.js';

/**
 * This process's open connections to `port` (/proc), idle keep-alive ones
 * included: an SDK client left undestroyed keeps one.
 */
export async function openConnections(port: number): Promise<number> {
  const held = await socketsHeldBy('self');
  return ((await tcpSockets()) ?? []).filter(
    (socket) =>
      socket.remotePort === port &&
      socket.state === '01' &&
      held.has(socket.inode),
  ).length;
}

/** This process's open connections to `port` once those closing have closed (or after 2 s). */
export async function settledConnections(
  port: number,
  expected: number,
): Promise<number> {
  const deadline = Date.now() + 2_000;
  while ((await openConnections(port)) !== expected && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return openConnections(port);
}

/**
 * A loopback port nothing listens on, so a connect there is refused: 1
 * (tcpmux), which no service of these machines binds, and which a free port
 * picked for a test (from the ephemeral range) can never be. A port found
 * free instead could be taken by another test while this one relies on it.
 */
export const REFUSING_PORT = 1;
