#!/usr/bin/env -S npx tsx
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import packageJson from '../../package.json' with { type: 'json' };
import type { SettingsTable } from '../settings.js';
import { portSetting, readSettings } from '../settings.js';
import { createTestFlv, startOrigin, startSink } from './media.js';

/** Its settings, named once: parsing and the usage line derive from this table. */
const SETTINGS = {
  host: { flag: 'host', fallback: '127.0.0.1', help: 'address to listen on' },
  originPort: {
    flag: 'origin-port',
    fallback: '8080',
    help: 'port of the test stream',
  },
  sinkPort: {
    flag: 'sink-port',
    fallback: '8081',
    help: 'port of the push sink',
  },
  ffmpeg: {
    flag: 'ffmpeg',
    fallback: 'ffmpeg',
    value: 'PATH',
    help: 'ffmpeg executable',
  },
  help: { flag: 'help', short: 'h', boolean: true, help: 'this text' },
  version: { flag: 'version', boolean: true, help: 'print the version' },
} as const satisfies SettingsTable;

const usage = Object.values(SETTINGS as SettingsTable)
  .filter((setting) => !setting.boolean)
  .map((setting) => `[--${setting.flag} ${setting.value ?? setting.fallback}]`)
  .join(' ');

const HELP = `relaywatch-test-stream: a local live stream to relay, and a place to push it

Serves a looped test pattern (made once with ffmpeg) as HTTP-FLV at
  http://<host>:<origin-port>/live.flv   (also /live/<name>.flv; /status/404 etc. for faults)
and accepts pushed streams (HTTP POST, what ffmpeg sends) at
  http://<host>:<sink-port>/<any path>   printing the bytes received every 10 s.

Usage: npm run test-stream -- ${usage}
  -h, --help     this text
  --version      print the version
Ctrl-C stops it. Needs ffmpeg on the PATH (or --ffmpeg PATH). Exit codes: 0 stopped, 2 usage error.
`;

const fail = (message: string, help = ''): never => {
  process.stderr.write(`relaywatch-test-stream: ${message}\n${help}`);
  process.exit(2);
};
const read = (() => {
  try {
    return readSettings(SETTINGS, { argv: process.argv.slice(2), env: {} });
  } catch (error) {
    return fail((error as Error).message, `\n${HELP}`);
  }
})();
const text = (key: keyof typeof SETTINGS) => read.text(key) ?? '';
if (read.flags.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (read.flags.version) {
  process.stdout.write(`relaywatch-test-stream ${packageJson.version}\n`);
  process.exit(0);
}
const ports = (() => {
  try {
    return {
      origin: portSetting(SETTINGS.originPort, text('originPort')),
      sink: portSetting(SETTINGS.sinkPort, text('sinkPort')),
    };
  } catch (error) {
    return fail((error as Error).message);
  }
})();

const dir = await mkdtemp(join(tmpdir(), 'relaywatch-test-stream-'));
const flvPath = await createTestFlv({ dir, ffmpegPath: text('ffmpeg') });
const origin = await startOrigin({
  flvPath,
  host: text('host'),
  port: ports.origin,
});
const sink = await startSink({
  host: text('host'),
  port: ports.sink,
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
