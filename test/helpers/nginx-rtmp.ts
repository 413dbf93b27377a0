/**
 * A real RTMP origin: nginx with the RTMP module (Debian: nginx,
 * libnginx-mod-rtmp), fed by an ffmpeg publisher that loops a test file. It
 * listens on one address of this machine only (loopback, or the root end of a
 * test namespace's veth).
 */

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  listensOn,
  onFreePort,
  PortTakenError,
  portOpen,
} from '../../infra/local/ports.js';

const READY_BOUND_MS = 10_000;
const STOP_BOUND_MS = 5_000;

export type RtmpOrigin = {
  host: string;
  port: number;
  /** `rtmp://host:port/live/<name>`. */
  url(name: string): string;
  /** Starts an ffmpeg publishing the file (looped, at its own pace) as stream `name`. */
  publish(name: string, flvPath: string): ChildProcess;
  stop(): Promise<void>;
};

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve();
  return new Promise((resolve) => {
    const bound = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, STOP_BOUND_MS);
    child.once('close', () => {
      clearTimeout(bound);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts nginx-rtmp (application `live`, `idle_streams off`) in `dir`; resolves once it accepts connects. */
export function startRtmpOrigin(options: {
  dir: string;
  host?: string;
}): Promise<RtmpOrigin> {
  const host = options.host ?? '127.0.0.1';
  return onFreePort((port) => startOn(options.dir, host, port), host);
}

async function startOn(
  dir: string,
  host: string,
  port: number,
): Promise<RtmpOrigin> {
  const conf = join(dir, `nginx-${port}.conf`);
  await writeFile(
    conf,
    [
      'load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;',
      'daemon off; master_process off;',
      `pid ${join(dir, `nginx-${port}.pid`)};`,
      `error_log ${join(dir, `nginx-${port}-error.log`)};`,
      'events {}',
      `rtmp { server { listen ${host}:${port}; application live { live on; idle_streams off; } } }`,
    ].join('\n'),
  );
  const nginx = spawn('nginx', ['-p', dir, '-c', conf], {
    stdio: 'ignore',
  });
  const publishers = new Set<ChildProcess>();
  const stop = async () => {
    await Promise.all([...publishers].map(stopChild));
    await stopChild(nginx);
  };
  const deadline = Date.now() + READY_BOUND_MS;
  while (!(await portOpen(port, host))) {
    if (nginx.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `nginx-rtmp did not start on ${host}:${port} (see ${dir})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (nginx.pid !== undefined && (await listensOn(nginx.pid, port)) === false) {
    await stop();
    throw new PortTakenError(port);
  }
  const url = (name: string) => `rtmp://${host}:${port}/live/${name}`;
  return {
    host,
    port,
    url,
    publish(name, flvPath) {
      const publisher = spawn(
        'ffmpeg',
        [
          '-nostdin',
          '-loglevel',
          'error',
          '-re',
          '-stream_loop',
          '-1',
          '-i',
          flvPath,
          '-c',
          'copy',
          '-f',
          'flv',
          url(name),
        ],
        { stdio: 'ignore' },
      );
      publishers.add(publisher);
      publisher.once('close', () => publishers.delete(publisher));
      return publisher;
    },
    stop,
  };
}
