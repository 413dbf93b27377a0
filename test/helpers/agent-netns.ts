/**
 * A private network namespace for real network faults: a relay's ffmpeg runs
 * inside it and reaches servers in the test process through a veth pair with
 * addresses from 198.18.0.0/15 (reserved for network tests). Faults are nft
 * rules inside the namespace, so nothing outside it changes, and no packet
 * can leave the machine: the namespace has no other route. Needs root.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 10_000;

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: COMMAND_TIMEOUT_MS });
  return stdout;
}

export type RelayNamespace = {
  name: string;
  /** Root-namespace end of the veth: servers the relay should reach listen here. */
  hostAddress: string;
  /** The namespace end of the veth. */
  namespaceAddress: string;
  /** An address the namespace has no route to ("Network is unreachable"). */
  unroutedAddress: string;
  /** A script that runs ffmpeg inside the namespace, usable as the agent's ffmpeg path. */
  ffmpegPath: string;
  /** Runs a command inside the namespace and returns its stdout. */
  exec(command: string, args: string[]): Promise<string>;
  /** Silently drops TCP packets from the namespace to hostAddress:port (a cut path). */
  dropTcpTo(port: number): Promise<void>;
  /** Answers TCP packets to hostAddress:port with an ICMP error. */
  rejectTcpTo(
    port: number,
    reason: 'host-unreachable' | 'net-unreachable',
  ): Promise<void>;
  /** Removes every fault rule. */
  clearFaults(): Promise<void>;
  /** Local ports of the namespace's established TCP connections to hostAddress:port. */
  tcpConnectionsTo(port: number): Promise<number[]>;
  /**
   * Removes every fault rule in one step, except that the given connections
   * (by local port) to hostAddress:port stay cut: the path works again for
   * new connections while those stay dead, as when a firewall or NAT on the
   * path lost their state.
   */
  clearFaultsExcept(port: number, localPorts: number[]): Promise<void>;
  /** Points the namespace's resolver (for programs run through `exec`/ffmpegPath) at `nameserver`. */
  setResolver(nameserver: string): Promise<void>;
  destroy(): Promise<void>;
};

const FAULT_TABLE = 'relaywatch_faults';
let created = 0;

async function pickSubnet(): Promise<number> {
  const inUse = await ip('-4', '-o', 'addr', 'show');
  for (let attempt = 0; attempt < 50; attempt++) {
    const third = 1 + Math.floor(Math.random() * 254);
    if (!inUse.includes(`198.18.${third}.`)) return third;
  }
  throw new Error('no free 198.18.x.0/30 subnet for a test namespace');
}

export async function createRelayNamespace(options: {
  tmpDir: string;
  ffmpegPath?: string;
}): Promise<RelayNamespace> {
  created++;
  // Interface names are limited to 15 characters.
  const suffix = `${process.pid % 100_000}${String.fromCharCode(96 + (created % 26))}`;
  const name = `rwns${suffix}`;
  const hostVeth = `rwh${suffix}`;
  const namespaceVeth = `rwn${suffix}`;
  const third = await pickSubnet();
  const hostAddress = `198.18.${third}.1`;
  const namespaceAddress = `198.18.${third}.2`;
  const unroutedAddress = `198.19.${third}.9`;
  const resolverDir = join('/etc/netns', name);

  await ip('netns', 'add', name);
  const exec = async (command: string, args: string[]) => {
    const { stdout } = await run(
      'ip',
      ['netns', 'exec', name, command, ...args],
      {
        timeout: COMMAND_TIMEOUT_MS,
      },
    );
    return stdout;
  };
  const destroy = async () => {
    await ip('netns', 'del', name).catch(() => undefined);
    await ip('link', 'del', hostVeth).catch(() => undefined);
    await rm(resolverDir, { recursive: true, force: true });
  };
  try {
    await ip(
      'link',
      'add',
      hostVeth,
      'type',
      'veth',
      'peer',
      'name',
      namespaceVeth,
    );
    await ip('link', 'set', namespaceVeth, 'netns', name);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await exec('ip', [
      'addr',
      'add',
      `${namespaceAddress}/30`,
      'dev',
      namespaceVeth,
    ]);
    await exec('ip', ['link', 'set', namespaceVeth, 'up']);
    await exec('ip', ['link', 'set', 'lo', 'up']);
    await exec('nft', [
      `add table inet ${FAULT_TABLE}; add chain inet ${FAULT_TABLE} output { type filter hook output priority 0; policy accept; }`,
    ]);
  } catch (error) {
    await destroy();
    throw error;
  }

  const ffmpegPath = join(options.tmpDir, `ffmpeg-in-${name}.sh`);
  // exec keeps ffmpeg's pid and inherited descriptors (the progress pipe).
  await writeFile(
    ffmpegPath,
    `#!/bin/sh\nexec ip netns exec ${name} ${options.ffmpegPath ?? 'ffmpeg'} "$@"\n`,
  );
  await chmod(ffmpegPath, 0o755);

  const addRule = (rule: string) =>
    exec('nft', [`add rule inet ${FAULT_TABLE} output ${rule}`]).then(
      () => undefined,
    );

  return {
    name,
    hostAddress,
    namespaceAddress,
    unroutedAddress,
    ffmpegPath,
    exec,
    dropTcpTo: (port) =>
      addRule(`ip daddr ${hostAddress} tcp dport ${port} drop`),
    rejectTcpTo: (port, reason) =>
      addRule(
        `ip daddr ${hostAddress} tcp dport ${port} reject with icmp type ${reason}`,
      ),
    clearFaults: () =>
      exec('nft', [`flush chain inet ${FAULT_TABLE} output`]).then(
        () => undefined,
      ),
    tcpConnectionsTo: async (port) => {
      const listed = await exec('ss', [
        '-Htn',
        'state',
        'established',
        'dst',
        `${hostAddress}:${port}`,
      ]);
      // Each line: Recv-Q Send-Q local:port peer:port.
      return listed
        .split('\n')
        .map((line) => /:(\d+)\s+\S+:\d+\s*$/.exec(line)?.[1])
        .filter((local): local is string => local !== undefined)
        .map(Number);
    },
    clearFaultsExcept: async (port, localPorts) => {
      if (localPorts.length === 0)
        throw new Error('clearFaultsExcept needs a connection to keep cut');
      // One nft invocation is one transaction: no moment without either rule set.
      await exec('nft', [
        `flush chain inet ${FAULT_TABLE} output; add rule inet ${FAULT_TABLE} output ip daddr ${hostAddress} tcp dport ${port} tcp sport { ${localPorts.join(', ')} } drop`,
      ]);
    },
    setResolver: async (nameserver) => {
      // `ip netns exec` bind-mounts this file over /etc/resolv.conf.
      await mkdir(resolverDir, { recursive: true });
      await writeFile(
        join(resolverDir, 'resolv.conf'),
        `nameserver ${nameserver}\noptions timeout:1 attempts:1\n`,
      );
    },
    destroy,
  };
}
