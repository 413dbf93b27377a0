#!/usr/bin/env -S npx tsx
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import packageJson from '../../package.json' with { type: 'json' };
import { createTestFlv, startOrigin, startSink } from './media.js';

const HELP = `relaywatch-test-stream: a local live stream to relay, and a place to push it

Serves a looped test pattern (made once with ffmpeg) as HTTP-FLV at
  http://<host>:<origin-port>/live.flv   (also /live/<name>.flv; /status/404 etc. for faults)
and accepts pushed streams (HTTP POST, what ffmpeg sends) at
  http://<host>:<sink-port>/<any path>   printing the bytes received every 10 s.

Usage: npm run test-stream -- [--host 127.0.0.1] [--origin-port 8080] [--sink-port 8081] [--ffmpeg PATH]
  -h, --help     this text
  --version      print the version
Ctrl-C stops it. Needs ffmpeg on the PATH (or --ffmpeg PATH). Exit codes: 0 stopped, 2 usage error.
`;

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        'origin-port': { type: 'string', default: '8080' },
        'sink-port': { type: 'string', default: '8081' },
        ffmpeg: { type: 'string', default: 'ffmpeg' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (error) {
    process.stderr.write(
      `relaywatch-test-stream: ${(error as Error).message}\n\n${HELP}`,
    );
    process.exit(2);
  }
})();
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (values.version) {
  process.stdout.write(`relaywatch-test-stream ${packageJson.version}\n`);
  process.exit(0);
}
const port = (name: string, text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65_535) {
    process.stderr.write(
      `relaywatch-test-stream: ${name} must be a port number, not "${text}"\n`,
    );
    process.exit(2);
  }
  return value;
};

const dir = await mkdtemp(join(tmpdir(), 'relaywatch-test-stream-'));
const flvPath = await createTestFlv({ dir, ffmpegPath: values.ffmpeg });
const origin = await startOrigin({
  flvPath,
  host: values.host,
  port: port('--origin-port', values['origin-port']),
});
const sink = await startSink({
  host: values.host,
  port: port('--sink-port', values['sink-port']),
});
process.stdout.write(
  `test stream  ${origin.url('/live.flv')}\npush sink    ${sink.url('/out/<name>.flv')}\n`,
);

const report = setInterval(() => {
  const pushes = sink
    .received()
    .map(({ path, bytes }) => `${path} ${(bytes / 1024).toFixed(0)} KiB`);
  process.stdout.write(
    `${new Date().toISOString()} pulling: ${origin.liveStreams()}  pushed: ${pushes.join(', ') || 'nothing yet'}\n`,
  );
}, 10_000);

const stop = async () => {
  clearInterval(report);
  await Promise.all([origin.stop(), sink.stop()]);
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
