/**
 * Real media endpoints for trying the agent, its tests and fixture capture, on addresses the
 * test controls: an origin that serves a live FLV stream (a short file made
 * once by ffmpeg, looped with rewritten timestamps and paced in real time),
 * fault routes (status codes, a hang, a non-media page), and a sink that
 * accepts pushed streams over HTTP.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Makes a 4 s, 10 fps, 160x120 H.264 FLV with a keyframe every second. */
export async function createTestFlv(options: {
  dir: string;
  ffmpegPath?: string;
}): Promise<string> {
  const path = join(options.dir, 'testsrc.flv');
  await run(
    options.ffmpegPath ?? 'ffmpeg',
    [
      ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '4'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency'],
      ...['-g', '10', '-pix_fmt', 'yuv420p', '-f', 'flv', path],
    ],
    { timeout: 30_000 },
  );
  return path;
}

type FlvTag = { timestamp: number; bytes: Buffer };
type FlvStream = {
  header: Buffer;
  prelude: Buffer[];
  media: FlvTag[];
  loopMs: number;
};

/** Splits an FLV file into what a player needs once and what repeats. */
export function parseFlv(file: Buffer): FlvStream {
  const headerEnd = file.readUInt32BE(5) + 4;
  const header = file.subarray(0, headerEnd);
  const prelude: Buffer[] = [];
  const media: FlvTag[] = [];
  let offset = headerEnd;
  while (offset + 11 <= file.length) {
    const type = (file[offset] ?? 0) & 0x1f;
    const size = file.readUIntBE(offset + 1, 3);
    const timestamp =
      file.readUIntBE(offset + 4, 3) | ((file[offset + 7] ?? 0) << 24);
    const bytes = file.subarray(offset, offset + 11 + size + 4);
    const first = file[offset + 11] ?? 0;
    const second = file[offset + 12] ?? 0;
    // Metadata and codec sequence headers are sent once per connection; a
    // second copy mid-stream would look like a codec change.
    const isSequenceHeader =
      (type === 9 && (first & 0x0f) === 7 && second === 0) ||
      (type === 8 && first >> 4 === 10 && second === 0);
    // The end-of-sequence marker ffmpeg writes last would end the stream
    // for a reader on every loop.
    const isEndOfSequence = type === 9 && (first & 0x0f) === 7 && second === 2;
    if (type === 18 || isSequenceHeader) prelude.push(bytes);
    else if (!isEndOfSequence) media.push({ timestamp, bytes });
    offset += 11 + size + 4;
  }
  const last = media.at(-1)?.timestamp ?? 0;
  const beforeLast =
    media.findLast((tag) => tag.timestamp < last)?.timestamp ?? last - 100;
  return { header, prelude, media, loopMs: last + (last - beforeLast) };
}

function withTimestamp(tag: Buffer, timestamp: number): Buffer {
  const copy = Buffer.from(tag);
  copy.writeUIntBE(timestamp & 0xffffff, 4, 3);
  copy[7] = (timestamp >>> 24) & 0xff;
  return copy;
}

/**
 * Media is sent this far ahead of real time. ffmpeg probes about 5 s of an FLV
 * input before it writes anything, so a burst longer than that lets a relay
 * start at once instead of after 5 s (real origins burst a GOP cache).
 */
const DEFAULT_LEAD_MS = 6_000;
const PACE_EVERY_MS = 20;

function streamLive(
  flv: FlvStream,
  response: ServerResponse,
  options: { chunked: boolean; leadMs: number; onEnd: () => void },
): void {
  // Without chunking, as many HTTP-FLV servers send it, a reader can only
  // learn of a cut from the connection closing early.
  response.useChunkedEncodingByDefault = options.chunked;
  response.writeHead(200, {
    'content-type': 'video/x-flv',
    connection: 'close',
  });
  response.write(flv.header);
  for (const tag of flv.prelude) response.write(tag);
  const startedAt = Date.now();
  let index = 0;
  let loop = 0;
  const pacer = setInterval(() => {
    const horizon = Date.now() - startedAt + options.leadMs;
    for (;;) {
      const tag = flv.media[index];
      if (tag === undefined) break;
      const timestamp = loop * flv.loopMs + tag.timestamp;
      if (timestamp > horizon) break;
      response.write(withTimestamp(tag.bytes, timestamp));
      index++;
      if (index === flv.media.length) {
        index = 0;
        loop++;
      }
    }
  }, PACE_EVERY_MS);
  response.on('close', () => {
    clearInterval(pacer);
    options.onEnd();
  });
}

export type TestOrigin = {
  host: string;
  port: number;
  /** `http://host:port<path>`; `/live.flv` is the healthy stream. */
  url(path: string): string;
  /** Paths requested so far, in order. */
  requests: string[];
  /** Connections currently receiving the live stream. */
  liveStreams(): number;
  /** Drops every live stream abruptly while still accepting new ones. */
  cutStreams(): void;
  /** Stops listening and drops every connection: new connects are refused. */
  stop(): Promise<void>;
};

/**
 * Routes: `/live.flv` (and any `/live/<name>.flv`) stream forever without a
 * length; `/chunked.flv` streams the same with chunked transfer encoding;
 * `/status/<code>` answers that HTTP status; `/hang` accepts and never
 * answers; `/html.flv` answers 200 with a web page; anything else is 404.
 */
export async function startOrigin(options: {
  flvPath: string;
  host?: string;
  port?: number;
  leadMs?: number;
}): Promise<TestOrigin> {
  const flv = parseFlv(await readFile(options.flvPath));
  const host = options.host ?? '127.0.0.1';
  const requests: string[] = [];
  const live = new Set<ServerResponse>();
  const server = createServer(
    (request: IncomingMessage, response: ServerResponse) => {
      const path = (request.url ?? '/').split('?')[0] ?? '/';
      requests.push(path);
      if (
        path === '/live.flv' ||
        path === '/chunked.flv' ||
        /^\/live\/[\w.-]+\.flv$/.test(path)
      ) {
        live.add(response);
        streamLive(flv, response, {
          chunked: path === '/chunked.flv',
          leadMs: options.leadMs ?? DEFAULT_LEAD_MS,
          onEnd: () => live.delete(response),
        });
        return;
      }
      const status = /^\/status\/([1-5]\d\d)$/.exec(path)?.[1];
      if (status !== undefined) {
        response.writeHead(Number(status), { 'content-type': 'text/plain' });
        response.end(`status ${status}\n`);
        return;
      }
      if (path === '/hang') return;
      if (path === '/html.flv') {
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end('<html><body>maintenance</body></html>\n');
        return;
      }
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('no such stream\n');
    },
  );
  const sockets = trackSockets(server);
  const port = await listen(server, host, options.port ?? 0);
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    url: (path) => `http://${bracketed}:${port}${path}`,
    requests,
    liveStreams: () => live.size,
    cutStreams: () => {
      for (const response of live) response.socket?.destroy();
    },
    stop: () => closeServer(server, sockets),
  };
}

export type TestSink = {
  port: number;
  /** `http://host:port<path>`, a push target. */
  url(path: string): string;
  /** Bytes received per path, summed over every push. */
  bytesReceived(path: string): number;
  /** Every path pushed to so far, with its bytes. */
  received(): Array<{ path: string; bytes: number }>;
  stop(): Promise<void>;
};

/** Accepts pushed streams (ffmpeg POSTs its output, chunked) and counts bytes. */
export async function startSink(
  options: { host?: string; port?: number } = {},
): Promise<TestSink> {
  const host = options.host ?? '127.0.0.1';
  const received = new Map<string, number>();
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    request.on('data', (chunk: Buffer) => {
      received.set(path, (received.get(path) ?? 0) + chunk.length);
    });
    request.on('end', () => response.end());
  });
  const sockets = trackSockets(server);
  const port = await listen(server, host, options.port ?? 0);
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return {
    port,
    url: (path) => `http://${bracketed}:${port}${path}`,
    bytesReceived: (path) => received.get(path) ?? 0,
    received: () => [...received].map(([path, bytes]) => ({ path, bytes })),
    stop: () => closeServer(server, sockets),
  };
}

/** The server's open connections, so stop() can drop them instead of waiting. */
function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () =>
      resolve((server.address() as AddressInfo).port),
    );
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });
}
