import { describe, expect, it } from 'vitest';
import {
  buildFfmpegArgs,
  outputFormatOf,
  PROGRESS_FD,
} from '../../../../clients/agent/ffmpeg-args.js';

const timeouts = { ioTimeoutMs: 10_000, progressPeriodMs: 1_000 };
const argsFor = (source: string, target = 'rtmp://ingest.example/live/key') =>
  buildFfmpegArgs({ source, target, timeouts });

/** The options given before `-i`, i.e. those that apply to the input. */
const inputOptions = (args: string[]) => args.slice(0, args.indexOf('-i'));

describe('building the relay command line', () => {
  it('copies the streams without re-encoding from source to target', () => {
    const args = argsFor('http://origin.example/live.flv');

    expect(args.slice(args.indexOf('-i'), args.indexOf('-i') + 2)).toEqual([
      '-i',
      'http://origin.example/live.flv',
    ]);
    expect(args).toContain('copy');
    expect(args[args.indexOf('-c') + 1]).toBe('copy');
    expect(args.at(-1)).toBe('rtmp://ingest.example/live/key');
  });

  it('reports machine-readable progress on the progress descriptor at the configured period', () => {
    const args = argsFor('http://origin.example/live.flv');

    expect(args[args.indexOf('-progress') + 1]).toBe(`pipe:${PROGRESS_FD}`);
    expect(args[args.indexOf('-stats_period') + 1]).toBe('1');
  });

  it('bounds reads of every input with -rw_timeout in microseconds', () => {
    for (const source of [
      'http://o.example/a',
      'rtmp://o.example/live/a',
      'rtsp://o.example/a',
      'srt://o.example:9000',
    ]) {
      const options = inputOptions(argsFor(source));

      expect(options[options.indexOf('-rw_timeout') + 1]).toBe('10000000');
    }
  });

  it('never passes -timeout to an rtmp input, where it would mean "listen"', () => {
    expect(inputOptions(argsFor('rtmp://o.example/live/a'))).not.toContain(
      '-timeout',
    );
    expect(inputOptions(argsFor('rtmps://o.example/live/a'))).not.toContain(
      '-timeout',
    );
  });

  it('bounds the connect of http, rtsp and srt inputs with -timeout', () => {
    for (const source of [
      'http://o.example/a',
      'https://o.example/a',
      'rtsp://o.example/a',
      'srt://o.example:9000',
    ]) {
      const options = inputOptions(argsFor(source));

      expect(options[options.indexOf('-timeout') + 1]).toBe('10000000');
    }
  });

  it('keeps ffmpeg from opening local files through the input', () => {
    const options = inputOptions(argsFor('http://o.example/a.m3u8'));
    const whitelist = options[options.indexOf('-protocol_whitelist') + 1] ?? '';

    expect(whitelist.split(',')).not.toContain('file');
    expect(whitelist.split(',')).toEqual(
      expect.arrayContaining(['http', 'https', 'tcp', 'tls', 'rtmp']),
    );
  });

  it('keeps ffmpeg from writing local files through the output', () => {
    const args = argsFor(
      'http://o.example/a.flv',
      'rtmps://ingest.example/live/key',
    );
    const output = args.slice(args.indexOf('-i') + 2);
    const whitelist = (
      output[output.indexOf('-protocol_whitelist') + 1] ?? ''
    ).split(',');

    expect(output.indexOf('-protocol_whitelist')).toBeGreaterThanOrEqual(0);
    expect(whitelist).not.toContain('file');
    expect(whitelist).not.toContain('pipe');
    expect(whitelist).toEqual(
      expect.arrayContaining([
        'rtmp',
        'rtmps',
        'tls',
        'tcp',
        'srt',
        'http',
        'https',
      ]),
    );
  });

  it('muxes FLV for RTMP and HTTP targets and MPEG-TS for SRT and .ts targets', () => {
    expect(outputFormatOf('rtmp://i.example/live/k')).toBe('flv');
    expect(outputFormatOf('http://i.example/ingest/k.flv')).toBe('flv');
    expect(outputFormatOf('srt://i.example:9000?streamid=k')).toBe('mpegts');
    expect(outputFormatOf('https://i.example/ingest/k.ts')).toBe('mpegts');
  });
});
