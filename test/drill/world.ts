/**
 * The drill's world on one host (needs root): a hub namespace holding two
 * bridges, the external segment (198.18.S.0/24) and the internal one
 * (198.19.S.0/24); an origin namespace (nginx-rtmp fed by ffmpeg) on the
 * external segment; N relay-machine namespaces, each with an `ext` and an
 * `int` link and a real relaywatch-agent; and, in this process, the status
 * center, the TCP canaries (external) and the ingest sink (internal), on the
 * root namespace's ends of the two segments. Every address is in
 * 198.18.0.0/15 and no namespace has a route off the host.
 *
 * The status center has one address on the external segment. Which link
 * reaches it is the topology: `internal` adds a /32 route to it over each
 * machine's `int` link, `external` removes it, so a cut of `ext` silences
 * the agent. Switching needs no restart.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestSink } from '../../clients/test-stream/media.js';
import { startSink } from '../../clients/test-stream/media.js';
import { createLogger } from '../../functions/log.js';
import type { LocalStatusCenter } from '../../infra/local/status-center.js';
import { startLocalStatusCenter } from '../../infra/local/status-center.js';
import type { Topology } from './figures.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '../..');
const COMMAND_TIMEOUT_MS = 10_000;
const RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
const AGENT_PORT = 8787;
const RTMP_PORT = 1935;
const CANARIES = 3;
const STREAM = 'drill';
const NFT_TABLE = 'rwdrill';
/** Bounds on waiting for a part of the world to come up. */
const READY_BOUND_MS = { agent: 90_000, origin: 30_000 } as const;

export class WorldError extends Error {
  override name = 'WorldError';
}

export type Machine = {
  index: number;
  namespace: string;
  /** The machine's public IP: what the agent reports as and what the blocklist bans. */
  ip: string;
  internalIp: string;
  agentUrl: string;
};

export type World = {
  machines: Machine[];
  statusCenter: LocalStatusCenter;
  agentToken: string;
  sink: TestSink;
  /** The stream every job relays. */
  sourceUrl: string;
  readonly topology: Topology;
  setTopology(topology: Topology): Promise<void>;
  /** Drops every packet on the machine's external link, both ways; the internal link stays. */
  cut(machine: Machine): Promise<void>;
  repair(machine: Machine): Promise<void>;
  /** Drops every packet to and from the origin on the external segment. */
  blackholeOrigin(): Promise<void>;
  restoreOrigin(): Promise<void>;
  stopOrigin(): Promise<void>;
  startOrigin(): Promise<void>;
  /** Everything the world started, so the report can say what was built. */
  describe(): Record<string, unknown>;
  destroy(): Promise<void>;
};

type Say = (line: string) => void;

async function sh(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      timeout: COMMAND_TIMEOUT_MS,
    });
    return stdout;
  } catch (error) {
    const detail =
      (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new WorldError(`${command} ${args.join(' ')}: ${detail}`);
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Root, and every program the world needs; throws WorldError naming what is missing. */
export async function checkPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new WorldError(
      'the drill must run as root (network namespaces, nft)',
    );
  for (const program of ['ip', 'nft', 'nginx', 'ffmpeg', 'ffprobe', 'java']) {
    await sh('sh', ['-c', `command -v ${program}`]).catch(() => {
      throw new WorldError(
        `${program} is not installed (apt-get install -y iproute2 nftables nginx libnginx-mod-rtmp ffmpeg default-jre-headless)`,
      );
    });
  }
  await access(RTMP_MODULE).catch(() => {
    throw new WorldError(
      `${RTMP_MODULE} is missing (apt-get install -y libnginx-mod-rtmp)`,
    );
  });
}

/** A third octet S such that neither 198.18.S.0/24 nor 198.19.S.0/24 is in use on this host. */
async function pickSegment(): Promise<number> {
  const inUse = await sh('ip', ['-4', '-o', 'addr', 'show']);
  for (let attempt = 0; attempt < 50; attempt++) {
    const third = 1 + Math.floor(Math.random() * 254);
    if (
      !inUse.includes(`198.18.${third}.`) &&
      !inUse.includes(`198.19.${third}.`)
    )
      return third;
  }
  throw new WorldError(
    'no free 198.18.S.0/24 + 198.19.S.0/24 pair for the drill',
  );
}

/** Processes started by the world, each in its own process group so its children go with it. */
class Processes {
  private readonly children: Array<{ name: string; child: ChildProcess }> = [];

  start(
    name: string,
    command: string,
    args: string[],
    options: { logFile: string; env?: NodeJS.ProcessEnv },
  ) {
    const fd = openSync(options.logFile, 'a');
    try {
      const child = spawn(command, args, {
        cwd: REPO,
        detached: true,
        stdio: ['ignore', fd, fd],
        env: options.env ?? process.env,
      });
      child.on('error', () => undefined);
      this.children.push({ name, child });
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`. */
  async stop(child: ChildProcess, graceMs = 8_000): Promise<void> {
    const index = this.children.findIndex((entry) => entry.child === child);
    if (index >= 0) this.children.splice(index, 1);
    if (
      child.exitCode !== null ||
      child.signalCode !== null ||
      child.pid === undefined
    )
      return;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => resolve()),
    );
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-(child.pid as number), name);
      } catch {
        // already gone
      }
    };
    signal('SIGTERM');
    const killed = await Promise.race([
      exited.then(() => false),
      delay(graceMs).then(() => true),
    ]);
    if (killed) {
      signal('SIGKILL');
      await Promise.race([exited, delay(2_000)]);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children].map(({ child }) => this.stop(child)));
  }
}

async function waitFor(
  what: string,
  boundMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await delay(500);
  }
  throw new WorldError(`${what} did not come up within ${boundMs / 1000} s`);
}

function listenCanary(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

export type WorldOptions = {
  machines: number;
  agentIntervalSeconds: number;
  logDir: string;
  say: Say;
};

/**
 * Builds the world; on any failure it removes what it built and throws WorldError.
 * The caller must call destroy() (also on SIGINT).
 */
export async function buildWorld(options: WorldOptions): Promise<World> {
  const { say, logDir } = options;
  const tag = `rwd${process.pid}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  const processes = new Processes();
  const namespaces: string[] = [];
  let destroyed: Promise<void> | undefined;

  const destroy = () => {
    destroyed ??= (async () => {
      await processes.stopAll();
      // Anything still running inside our namespaces was started by the world (ffmpeg children).
      for (const namespace of namespaces) {
        const pids = await sh('ip', ['netns', 'pids', namespace]).catch(
          () => '',
        );
        for (const pid of pids.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      for (const cleanup of cleanups.reverse())
        await cleanup().catch(() => undefined);
      for (const namespace of namespaces.reverse())
        await sh('ip', ['netns', 'del', namespace]).catch(() => undefined);
    })();
    return destroyed;
  };

  const addNamespace = async (name: string) => {
    await sh('ip', ['netns', 'add', name]);
    namespaces.push(name);
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  };
  const nft = (namespace: string, script: string) =>
    sh('ip', ['netns', 'exec', namespace, 'nft', script]);
  const addCutTable = (namespace: string) =>
    nft(
      namespace,
      `add table inet ${NFT_TABLE}; ` +
        `add chain inet ${NFT_TABLE} cut_out { type filter hook output priority 0; policy accept; }; ` +
        `add chain inet ${NFT_TABLE} cut_in { type filter hook input priority 0; policy accept; }`,
    );
  const cutExt = (namespace: string) =>
    nft(
      namespace,
      `add rule inet ${NFT_TABLE} cut_out oifname "ext" drop; add rule inet ${NFT_TABLE} cut_in iifname "ext" drop`,
    );
  const uncutExt = (namespace: string) =>
    nft(
      namespace,
      `flush chain inet ${NFT_TABLE} cut_out; flush chain inet ${NFT_TABLE} cut_in`,
    );

  try {
    const s = await pickSegment();
    const ext = (host: number) => `198.18.${s}.${host}`;
    const int = (host: number) => `198.19.${s}.${host}`;
    const statusAddress = ext(1);
    const canaryAddress = ext(2);
    const originAddress = ext(10);
    const sinkAddress = int(1);
    say(
      `building the world: segments ${ext(0)}/24 (external) and ${int(0)}/24 (internal), ${options.machines} machines`,
    );

    // The hub: two bridges. Bridging inside a fresh namespace keeps the host's firewall out of the path.
    const hub = `${tag}h`;
    await addNamespace(hub);
    for (const bridge of ['brx', 'bri']) {
      await sh('ip', ['-n', hub, 'link', 'add', bridge, 'type', 'bridge']);
      await sh('ip', ['-n', hub, 'link', 'set', bridge, 'up']);
    }
    const plug = async (
      bridge: 'brx' | 'bri',
      hubEnd: string,
      peer: string,
      peerNamespace?: string,
    ) => {
      const peerSide =
        peerNamespace === undefined
          ? ['peer', 'name', peer]
          : ['peer', 'name', peer, 'netns', peerNamespace];
      await sh('ip', [
        'link',
        'add',
        'name',
        hubEnd,
        'netns',
        hub,
        'type',
        'veth',
        ...peerSide,
      ]);
      await sh('ip', [
        '-n',
        hub,
        'link',
        'set',
        hubEnd,
        'master',
        bridge,
        'up',
      ]);
    };

    // The root namespace's ends: status center and canaries (external), sink (internal).
    const rootExt = `${tag}x`;
    const rootInt = `${tag}i`;
    await plug('brx', 'rootx', rootExt);
    cleanups.push(() => sh('ip', ['link', 'del', rootExt]));
    await plug('bri', 'rooti', rootInt);
    cleanups.push(() => sh('ip', ['link', 'del', rootInt]));
    await sh('ip', ['addr', 'add', `${statusAddress}/24`, 'dev', rootExt]);
    await sh('ip', ['addr', 'add', `${canaryAddress}/24`, 'dev', rootExt]);
    await sh('ip', ['addr', 'add', `${sinkAddress}/24`, 'dev', rootInt]);
    await sh('ip', ['link', 'set', rootExt, 'up']);
    await sh('ip', ['link', 'set', rootInt, 'up']);

    // The origin: nginx-rtmp and its publisher, in a namespace on the external segment.
    const originNs = `${tag}o`;
    await addNamespace(originNs);
    await plug('brx', 'origin', 'ext', originNs);
    await sh('ip', [
      '-n',
      originNs,
      'addr',
      'add',
      `${originAddress}/24`,
      'dev',
      'ext',
    ]);
    await sh('ip', ['-n', originNs, 'link', 'set', 'ext', 'up']);
    await addCutTable(originNs);
    const originDir = join(logDir, 'origin');
    await mkdir(originDir, { recursive: true });
    const nginxConf = join(originDir, 'nginx.conf');
    await writeFile(
      nginxConf,
      [
        `load_module ${RTMP_MODULE};`,
        'daemon off;',
        'master_process off;',
        `pid ${join(originDir, 'nginx.pid')};`,
        `error_log ${join(originDir, 'nginx-error.log')} info;`,
        'events {}',
        `rtmp { server { listen ${RTMP_PORT}; application live { live on; } } }`,
        '',
      ].join('\n'),
    );
    let nginx: ChildProcess | undefined;
    let publisher: ChildProcess | undefined;
    const sourceUrl = `rtmp://${originAddress}:${RTMP_PORT}/live/${STREAM}`;
    const startOrigin = async () => {
      nginx = processes.start(
        'nginx',
        'ip',
        [
          'netns',
          'exec',
          originNs,
          'nginx',
          '-e',
          join(originDir, 'nginx-error.log'),
          '-p',
          originDir,
          '-c',
          nginxConf,
        ],
        {
          logFile: join(originDir, 'nginx.log'),
        },
      );
      await waitFor('nginx-rtmp', READY_BOUND_MS.origin, () =>
        tcpReachable(originAddress, RTMP_PORT),
      );
      // A low-bitrate test pattern with sound, paced in real time; a keyframe every second.
      publisher = processes.start(
        'publisher',
        'ip',
        [
          ...[
            'netns',
            'exec',
            originNs,
            'ffmpeg',
            '-nostdin',
            '-hide_banner',
            '-loglevel',
            'warning',
            '-re',
          ],
          ...[
            '-f',
            'lavfi',
            '-i',
            'testsrc=size=160x120:rate=10',
            '-f',
            'lavfi',
            '-i',
            'sine=frequency=440:sample_rate=22050',
          ],
          ...[
            '-c:v',
            'libx264',
            '-preset',
            'ultrafast',
            '-tune',
            'zerolatency',
            '-g',
            '10',
            '-pix_fmt',
            'yuv420p',
            '-b:v',
            '100k',
          ],
          ...[
            '-c:a',
            'aac',
            '-b:a',
            '32k',
            '-f',
            'flv',
            `rtmp://127.0.0.1:${RTMP_PORT}/live/${STREAM}`,
          ],
        ],
        { logFile: join(originDir, 'publisher.log') },
      );
      await waitFor('the origin stream', READY_BOUND_MS.origin, () =>
        streamPlays(sourceUrl),
      );
    };
    const stopOrigin = async () => {
      if (publisher) await processes.stop(publisher, 3_000);
      if (nginx) await processes.stop(nginx, 3_000);
      publisher = undefined;
      nginx = undefined;
    };
    await startOrigin();
    say(`origin up: ${sourceUrl}`);

    // Canaries and the sink, in this process.
    const canaryServers = await Promise.all(
      Array.from({ length: CANARIES }, () => listenCanary(canaryAddress)),
    );
    cleanups.push(async () => {
      for (const server of canaryServers) server.close();
    });
    const canaries = canaryServers.map(
      (server) =>
        `${canaryAddress}:${(server.address() as { port: number }).port}`,
    );
    const sink = await startSink({ host: sinkAddress });
    cleanups.push(() => sink.stop());

    // The status center, on the external segment's root end.
    const scLog = join(logDir, 'status-center.log');
    const scFd = openSync(scLog, 'a');
    cleanups.push(async () => closeSync(scFd));
    const statusCenter = await startLocalStatusCenter({
      port: 0,
      host: statusAddress,
      dynamodbPort: 0,
      schedule: true,
      overrides: {
        log: createLogger({
          level: 'info',
          write: (line) => writeToFd(scFd, line),
        }),
      },
    });
    cleanups.push(() => statusCenter.stop());
    say(`status center up: ${statusCenter.url}`);

    // The relay machines.
    const agentToken = `drill-agent-${process.pid}-${Math.random().toString(36).slice(2, 12)}`;
    const machines: Machine[] = [];
    for (let index = 0; index < options.machines; index++) {
      const namespace = `${tag}m${index}`;
      await addNamespace(namespace);
      await plug('brx', `m${index}x`, 'ext', namespace);
      await plug('bri', `m${index}i`, 'int', namespace);
      const ip = ext(100 + index);
      const internalIp = int(100 + index);
      await sh('ip', [
        '-n',
        namespace,
        'addr',
        'add',
        `${ip}/24`,
        'dev',
        'ext',
      ]);
      await sh('ip', [
        '-n',
        namespace,
        'addr',
        'add',
        `${internalIp}/24`,
        'dev',
        'int',
      ]);
      await sh('ip', ['-n', namespace, 'link', 'set', 'ext', 'up']);
      await sh('ip', ['-n', namespace, 'link', 'set', 'int', 'up']);
      await addCutTable(namespace);
      machines.push({
        index,
        namespace,
        ip,
        internalIp,
        agentUrl: `http://${internalIp}:${AGENT_PORT}`,
      });
    }
    let currentTopology: Topology = 'internal';
    const setTopology = async (topology: Topology) => {
      for (const machine of machines) {
        if (topology === 'internal') {
          await sh('ip', [
            '-n',
            machine.namespace,
            'route',
            'replace',
            `${statusAddress}/32`,
            'via',
            sinkAddress,
            'dev',
            'int',
          ]);
        } else {
          await sh('ip', [
            '-n',
            machine.namespace,
            'route',
            'del',
            `${statusAddress}/32`,
          ]).catch(() => undefined);
        }
      }
      currentTopology = topology;
    };
    await setTopology('internal');

    const reporterTokens = new Map<string, string>();
    for (const machine of machines)
      reporterTokens.set(
        machine.ip,
        await reporterTokenFor(statusCenter, machine.ip),
      );
    for (const machine of machines) {
      processes.start(
        `agent-${machine.index}`,
        'ip',
        [
          ...[
            'netns',
            'exec',
            machine.namespace,
            process.execPath,
            '--import',
            'tsx',
            'clients/agent/bin.ts',
          ],
          ...[
            '--url',
            statusCenter.url,
            '--host',
            machine.internalIp,
            '--port',
            String(AGENT_PORT),
          ],
          ...[
            '--ip',
            machine.ip,
            '--interval',
            String(options.agentIntervalSeconds),
            '--probes',
            canaries.join(','),
          ],
        ],
        {
          logFile: join(logDir, `agent-${machine.index}-${machine.ip}.log`),
          env: {
            ...process.env,
            RELAYWATCH_AGENT_TOKEN: agentToken,
            RELAYWATCH_REPORTER_TOKEN: reporterTokens.get(machine.ip),
          },
        },
      );
    }
    for (const machine of machines) {
      await waitFor(
        `the agent on ${machine.ip}`,
        READY_BOUND_MS.agent,
        async () => {
          const response = await fetch(`${machine.agentUrl}/status`, {
            headers: { authorization: `Bearer ${agentToken}` },
            signal: AbortSignal.timeout(2_000),
          });
          await response.body?.cancel();
          return response.ok;
        },
      );
    }
    say(
      `${machines.length} agents up (report interval ${options.agentIntervalSeconds} s, ${CANARIES} canaries each)`,
    );

    const world: World = {
      machines,
      statusCenter,
      agentToken,
      sink,
      sourceUrl,
      get topology() {
        return currentTopology;
      },
      setTopology,
      cut: (machine) => cutExt(machine.namespace).then(() => undefined),
      repair: (machine) => uncutExt(machine.namespace).then(() => undefined),
      blackholeOrigin: () => cutExt(originNs).then(() => undefined),
      restoreOrigin: () => uncutExt(originNs).then(() => undefined),
      stopOrigin,
      startOrigin,
      describe: () => ({
        segments: { external: `${ext(0)}/24`, internal: `${int(0)}/24` },
        statusCenter: statusCenter.url,
        origin: sourceUrl,
        canaries,
        sink: sink.url('/'),
        machines: machines.map(({ ip, internalIp, namespace }) => ({
          ip,
          internalIp,
          namespace,
        })),
      }),
      destroy,
    };
    return world;
  } catch (error) {
    await destroy();
    if (error instanceof WorldError) throw error;
    throw new WorldError(
      `building the world failed: ${(error as Error).message}`,
    );
  }
}

/**
 * The machine's own reporter token where the status center issues them
 * (POST /v1/reporter-tokens), else the fleet-wide one.
 */
async function reporterTokenFor(
  statusCenter: LocalStatusCenter,
  ip: string,
): Promise<string> {
  const response = await fetch(`${statusCenter.url}/v1/reporter-tokens`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${statusCenter.tokens.admin}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ ip }),
    signal: AbortSignal.timeout(10_000),
  }).catch(() => undefined);
  if (response?.status === 201) {
    const body = (await response.json()) as { token?: unknown };
    if (typeof body.token === 'string') return body.token;
  } else await response?.body?.cancel();
  return statusCenter.tokens.reporter;
}

function writeToFd(fd: number, line: string): void {
  try {
    // Synchronous, so the status center's lines never interleave.
    writeSync(fd, line);
  } catch {
    // the log file is closed at shutdown
  }
}

function tcpReachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** ffprobe reads the stream's first frames from the root namespace (bounded). */
async function streamPlays(url: string): Promise<boolean> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-rw_timeout',
      '3000000',
      '-show_entries',
      'stream=codec_type',
      '-of',
      'csv=p=0',
      url,
    ],
    { timeout: 8_000 },
  );
  return stdout.includes('video');
}
