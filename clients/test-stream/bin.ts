#!/usr/bin/env -S npx tsx
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestFlv, startOrigin, startSink } from './media.js';

const HELP = `relaywatch-test-stream: a local live stream to relay, and a place to push it

Serves a looped test pattern (made once with ffmpeg) as HTTP-FLV at
  http://<host>:<origin-port>/live.flv   (also /live/<name>.flv; /status/404 etc. for faults)
and accepts pushed streams (HTTP POST, what ffmpeg sends) at
  http://<host>:<sink-port>/<any path>   printing the bytes received every 10 s.

Usage: npm run test-stream -- [--host 127.0.0.1] [--origin-port 8080] [--sink-port 8081]
Ctrl-C stops it. Needs ffmpeg on the PATH (or --ffmpeg PATH).
`;

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    'origin-port': { type: 'string', default: '8080' },
    'sink-port': { type: 'string', default: '8081' },
    ffmpeg: { type: 'string', default: 'ffmpeg' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const port = (name: string, text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    process.stderr.write(`relaywatch-test-stream: ${name} must be a port number, not "${text}"\n`);
    process.exit(2);
  }
  return value;
};

const dir = await mkdtemp(join(tmpdir(), 'relaywatch-test-stream-'));
const flvPath = await createTestFlv({ dir, ffmpegPath: values.ffmpeg });
const origin = await startOrigin({ flvPath, host: values.host, port: port('--origin-port', values['origin-port']) });
const sink = await startSink({ host: values.host, port: port('--sink-port', values['sink-port']) });
process.stdout.write(`test stream  ${origin.url('/live.flv')}\npush sink    ${sink.url('/out/<name>.flv')}\n`);

const report = setInterval(() => {
  const pushes = sink.received().map(({ path, bytes }) => `${path} ${(bytes / 1024).toFixed(0)} KiB`);
  process.stdout.write(`${new Date().toISOString()} pulling: ${origin.liveStreams()}  pushed: ${pushes.join(', ') || 'nothing yet'}\n`);
}, 10_000);

const stop = async () => {
  clearInterval(report);
  await Promise.all([origin.stop(), sink.stop()]);
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
