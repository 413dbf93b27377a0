/**
 * The one ffmpeg command line of a relay: pull `source`, copy the streams
 * unchanged, push to `target`, report progress on fd 3. Pure.
 */
import { parseUrl } from './job.js';

/** File descriptor ffmpeg writes `-progress` blocks to (stdout stays unused). */
export const PROGRESS_FD = 3;

export type FfmpegTimeouts = {
  /** Bound on every read/write; without it ffmpeg can wait forever. */
  ioTimeoutMs: number;
  /** How often ffmpeg reports progress. */
  progressPeriodMs: number;
};

/**
 * Nested protocols a source may use (HLS → http/tls/crypto, RTSP → rtp/udp);
 * anything else, such as `file`, is refused by ffmpeg itself.
 */
const INPUT_PROTOCOL_WHITELIST =
  'http,https,tcp,tls,crypto,httpproxy,rtmp,rtmps,rtmpt,rtsp,rtp,udp,srt';

/** The push side too: only the target schemes and what they nest (RTMPS/HTTPS → tls → tcp). */
const OUTPUT_PROTOCOL_WHITELIST = 'rtmp,rtmps,tcp,tls,srt,http,https,httpproxy';

/** Muxer for the push: FLV for RTMP ingest, MPEG-TS for SRT and `.ts` URLs. */
export function outputFormatOf(target: string): 'flv' | 'mpegts' {
  const url = parseUrl(target);
  if (url === undefined) return 'flv';
  if (url.protocol === 'srt:') return 'mpegts';
  if (/\.(ts|m2ts)$/i.test(url.pathname)) return 'mpegts';
  return 'flv';
}

/**
 * Input timeout options. `-rw_timeout` bounds reads on every protocol but not
 * the connect. The protocol-level `-timeout` also bounds the connect for
 * http, rtsp and srt, yet on an `rtmp://` input it means "listen for an
 * incoming connection", so it is never passed there.
 */
function inputTimeoutArgs(source: string, ioTimeoutMs: number): string[] {
  const micros = String(ioTimeoutMs * 1000);
  const scheme = parseUrl(source)?.protocol ?? '';
  const connectBound = ['http:', 'https:', 'rtsp:', 'srt:'].includes(scheme);
  return ['-rw_timeout', micros, ...(connectBound ? ['-timeout', micros] : [])];
}

export function buildFfmpegArgs(options: {
  source: string;
  target: string;
  timeouts: FfmpegTimeouts;
}): string[] {
  const { source, target, timeouts } = options;
  return [
    '-nostdin',
    '-hide_banner',
    // The level tag lets the classifier tell errors from warnings; the
    // interactive stats line is replaced by the machine-readable progress.
    ...['-loglevel', 'level+info', '-nostats'],
    ...['-progress', `pipe:${PROGRESS_FD}`],
    ...['-stats_period', String(timeouts.progressPeriodMs / 1000)],
    ...inputTimeoutArgs(source, timeouts.ioTimeoutMs),
    ...['-protocol_whitelist', INPUT_PROTOCOL_WHITELIST],
    ...['-i', source],
    ...['-c', 'copy'],
    ...['-f', outputFormatOf(target)],
    ...['-rw_timeout', String(timeouts.ioTimeoutMs * 1000)],
    ...['-protocol_whitelist', OUTPUT_PROTOCOL_WHITELIST],
    target,
  ];
}
