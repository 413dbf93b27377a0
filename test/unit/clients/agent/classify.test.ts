import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type {
  RelayObservation,
  RunEnding,
} from '../../../../clients/agent/classify.js';
import {
  classifyProbeError,
  classifyRelay,
  mayBeTheOrigin,
  originCheckVerdict,
  parseLine,
} from '../../../../clients/agent/classify.js';
import { HEARTBEAT_LIMITS } from '../../../../functions/core/heartbeat.js';

const FIXTURES = fileURLToPath(
  new URL('../../../fixtures/ffmpeg/', import.meta.url),
);

type FixtureMeta = {
  source: string;
  target: string;
  exitCode: number | null;
  signal: string | null;
  progressed: boolean;
};

/** A captured run as the supervisor would hand it over when ffmpeg exits. */
function capturedRun(name: string): RelayObservation & { text: string } {
  const meta = JSON.parse(
    readFileSync(join(FIXTURES, `${name}.json`), 'utf8'),
  ) as FixtureMeta;
  const text = readFileSync(join(FIXTURES, `${name}.txt`), 'utf8');
  return {
    source: meta.source,
    target: meta.target,
    lines: text.split(/\r\n|\r|\n/).filter((line) => line.trim() !== ''),
    progressed: meta.progressed,
    ending: { kind: 'exited', code: meta.exitCode, signal: meta.signal },
    text,
  };
}

/** classifyRelay for runs from `source` to `target`. */
const classifierFor =
  (source: string, target: string) =>
  (run: Omit<RelayObservation, 'source' | 'target'>) =>
    classifyRelay({ source, target, ...run });

describe('classifying real ffmpeg 5.1 failures (captured fixtures)', () => {
  // [fixture, status, cause, the text of the line that must decide]
  const cases = [
    [
      'http-connect-timeout',
      'connect_failed',
      'connect_timeout',
      'failed: Connection timed out',
    ],
    [
      'rtmp-connect-timeout',
      'connect_failed',
      'connect_timeout',
      'failed: Connection timed out',
    ],
    [
      'http-no-route-to-host',
      'connect_failed',
      'no_route_to_host',
      'failed: No route to host',
    ],
    [
      'http-network-unreachable',
      'connect_failed',
      'network_unreachable',
      'failed: Network is unreachable',
    ],
    [
      'dns-tempfail',
      'connect_failed',
      'resolver_unreachable',
      'Temporary failure in name resolution',
    ],
    [
      'dns-nxdomain',
      'origin_error',
      'unknown_host',
      'Name or service not known',
    ],
    [
      'http-refused',
      'origin_error',
      'connection_refused',
      'failed: Connection refused',
    ],
    [
      'rtmp-refused',
      'origin_error',
      'connection_refused',
      'failed: Connection refused',
    ],
    ['http-404', 'origin_error', 'http_status', 'HTTP error 404 Not Found'],
    ['http-403', 'origin_error', 'http_status', 'HTTP error 403 Forbidden'],
    [
      'http-503',
      'origin_error',
      'http_status',
      'HTTP error 503 Service Unavailable',
    ],
    [
      'http-not-media',
      'origin_error',
      'not_media',
      'Invalid data found when processing input',
    ],
    [
      'rtmp-no-such-stream',
      'origin_error',
      'rtmp_server_error',
      'Server error: No such stream',
    ],
    ['http-hang', 'error', 'no_answer', 'Connection timed out'],
    ['http-midstream-cut', 'error', 'midstream_eof', 'Stream ends prematurely'],
    [
      'http-midstream-path-cut',
      'error',
      'midstream_timeout',
      'Connection timed out',
    ],
    [
      'rtmp-midstream-publisher-killed',
      'error',
      'midstream_eof',
      'Input/output error',
    ],
    ['rtmp-midstream-path-cut', 'error', 'midstream_eof', 'Input/output error'],
    ['http-chunked-eof', 'error', 'input_ended', 'the input ended'],
    [
      'target-refused-http',
      'error',
      'target_connection_refused',
      'failed: Connection refused',
    ],
    [
      'target-refused-rtmp',
      'error',
      'target_connection_refused',
      'failed: Connection refused',
    ],
    [
      'target-connect-timeout',
      'error',
      'target_connect_timeout',
      'failed: Connection timed out',
    ],
  ] as const;

  it.each(cases)(
    'classifies %s as %s (%s), quoting the deciding line',
    (name, status, cause, decidingText) => {
      const run = capturedRun(name);

      const result = classifyRelay(run);

      expect(result).toMatchObject({ status, cause });
      expect(result.detail).toContain(decidingText);
    },
  );

  it('reports the connect-phase line, not the final line, for a connect timeout', () => {
    const run = capturedRun('http-connect-timeout');

    const result = classifyRelay(run);

    expect(result.detail).toMatch(
      /^\[tcp @ 0x[0-9a-f]+\] \[error\] Connection to tcp:\/\/\S+ failed: Connection timed out$/,
    );
  });

  it('never reports a mid-stream loss as ok even though ffmpeg exited 0', () => {
    for (const name of [
      'http-midstream-cut',
      'http-midstream-path-cut',
      'rtmp-midstream-publisher-killed',
      'rtmp-midstream-path-cut',
      'http-chunked-eof',
    ]) {
      const run = capturedRun(name);
      expect(run.ending).toMatchObject({ code: 0 });

      expect(classifyRelay(run).status).toBe('error');
    }
  });

  it('blames a push-target failure on neither the origin nor the path to it', () => {
    for (const name of [
      'target-refused-http',
      'target-refused-rtmp',
      'target-connect-timeout',
    ]) {
      const result = classifyRelay(capturedRun(name));

      expect(result.status).toBe('error');
      expect(result.cause).toMatch(/^target_/);
      expect(result.detail).toMatch(/^push target: /);
    }
  });

  it('keeps the stream key of an RTMP target out of the detail', () => {
    const run = capturedRun('target-refused-rtmp');
    const lines = [...run.lines, `[error] ${run.target}: Connection refused`];

    const result = classifyRelay({
      ...run,
      lines: lines.filter((line) => !line.includes('Connection to')),
    });

    expect(run.target).toContain('streamkey');
    expect(result.detail).not.toContain('streamkey');
    expect(result.detail).toContain('rtmp://127.0.0.1:9/live/…');
  });
});

describe('telling the source from the target when they share a host and port', () => {
  const source = 'http://127.0.0.1:8080/live/in.flv';
  const target = 'http://127.0.0.1:8080/ingest/out.flv';
  const classify = classifierFor(source, target);
  const exited: RunEnding = { kind: 'exited', code: 1, signal: null };

  it('attributes a connect line naming the shared endpoint to the URL on the next line', () => {
    const lines = [
      '[tcp @ 0x55e24014aa00] [error] Connection to tcp://127.0.0.1:8080 failed: Connection refused',
      `[error] ${target}: Connection refused`,
    ];

    const result = classify({
      lines,
      progressed: false,
      ending: exited,
    });

    expect(result).toMatchObject({
      status: 'error',
      cause: 'target_connection_refused',
    });
  });

  it('attributes the same connect line to the source when the next line names the source', () => {
    const lines = [
      '[tcp @ 0x55e24014aa00] [error] Connection to tcp://127.0.0.1:8080 failed: Connection refused',
      `[error] ${source}: Connection refused`,
    ];

    const result = classify({
      lines,
      progressed: false,
      ending: exited,
    });

    expect(result).toMatchObject({
      status: 'origin_error',
      cause: 'connection_refused',
    });
  });
});

describe('classifying a running or stopped-by-the-agent ffmpeg', () => {
  const source = 'http://origin.example:8080/live.flv';
  const target = 'rtmp://ingest.example/live/secret-key';
  const classify = classifierFor(source, target);

  it('calls a run whose progress advances ok, with the progress in the detail', () => {
    const result = classify({
      lines: [],
      progressed: true,
      ending: {
        kind: 'streaming',
        frame: 250,
        outTimeUs: 25_000_000,
        speed: '1x',
      },
    });

    expect(result).toEqual({
      status: 'ok',
      cause: 'streaming',
      detail: 'streaming: frame=250 out_time=25.0s speed=1x',
    });
  });

  it('calls a stalled run an error and says how long it was silent', () => {
    const result = classify({
      lines: [],
      progressed: true,
      ending: { kind: 'stalled', silentMs: 15_200 },
    });

    expect(result).toMatchObject({ status: 'error', cause: 'stalled' });
    expect(result.detail).toContain('no progress for 15.2 s');
  });

  // HLS whose segments all 404 hangs in probing (research catalogue, ffmpeg 5.1).
  it('calls a run that never started an origin error when the origin already answered 404', () => {
    const lines = [
      '[http @ 0x5600] [warning] HTTP error 404 Not Found',
      '[hls @ 0x5601] [warning] Failed to open segment 0 of playlist 0',
    ];

    const result = classify({
      lines,
      progressed: false,
      ending: { kind: 'no_start', waitedMs: 30_000 },
    });

    expect(result).toMatchObject({
      status: 'origin_error',
      cause: 'http_status',
    });
  });

  it('calls a run that never started, with nothing said, an error', () => {
    const result = classify({
      lines: [],
      progressed: false,
      ending: { kind: 'no_start', waitedMs: 30_000 },
    });

    expect(result).toMatchObject({ status: 'error', cause: 'no_start' });
  });

  it('calls a missing ffmpeg an error naming the spawn failure', () => {
    const result = classify({
      lines: [],
      progressed: false,
      ending: { kind: 'spawn_failed', message: 'spawn ffmpeg ENOENT' },
    });

    expect(result).toMatchObject({ status: 'error', cause: 'spawn_failed' });
    expect(result.detail).toContain('ENOENT');
  });

  it('calls an ffmpeg killed by someone else an error with its exit', () => {
    const lines = ['[info] Exiting normally, received signal 15.'];

    const result = classify({
      lines,
      progressed: true,
      ending: { kind: 'exited', code: 255, signal: null },
    });

    expect(result).toMatchObject({ status: 'error', cause: 'exited' });
    expect(result.detail).toContain('code 255');
  });

  it('cuts the detail to the heartbeat limit', () => {
    const lines = [
      `[http @ 0x5600] [warning] HTTP error 404 ${'x'.repeat(2_000)}`,
      `[error] ${source}: Server returned 404 Not Found`,
    ];

    const result = classify({
      lines,
      progressed: false,
      ending: { kind: 'exited', code: 1, signal: null },
    });

    expect(result.detail.length).toBeLessThanOrEqual(
      HEARTBEAT_LIMITS.maxDetailLength,
    );
  });
});

// Wording of newer ffmpeg wrappers as documented in the research catalogue
// (fftools/ffmpeg_demux.c, ffmpeg_opt.c in 6.x/7.x); the protocol lines are unchanged.
describe('reading the ffmpeg 6.x/7.x wrapper lines', () => {
  const source = 'rtmp://origin.example/live/stream';
  const target = 'rtmp://ingest.example/live/key';
  const classify = classifierFor(source, target);
  const exited: RunEnding = { kind: 'exited', code: 1, signal: null };

  it('takes "[in#0] Error opening input" as a source line', () => {
    const lines = [
      '[in#0 @ 0x5600] Error opening input: Connection refused',
      `Error opening input file ${source}.`,
    ];

    const result = classify({
      lines,
      progressed: false,
      ending: exited,
    });

    expect(result).toMatchObject({
      status: 'origin_error',
      cause: 'connection_refused',
    });
  });

  it('takes "[out#0] Error opening output" as a target line', () => {
    const lines = [
      '[out#0/flv @ 0x5600] Error opening output rtmp://ingest.example/live/key: Connection refused',
    ];

    const result = classify({
      lines,
      progressed: true,
      ending: exited,
    });

    expect(result).toMatchObject({
      status: 'error',
      cause: 'target_connection_refused',
    });
  });

  it('takes "Error during demuxing" after frames as a mid-stream loss', () => {
    const lines = [
      '[in#0/flv @ 0x5600] Error during demuxing: Input/output error',
    ];

    const result = classify({
      lines,
      progressed: true,
      ending: { kind: 'exited', code: 0, signal: null },
    });

    expect(result).toMatchObject({ status: 'error', cause: 'midstream_eof' });
  });
});

describe('parsing one ffmpeg log line', () => {
  it('separates the component, the level tag and the message', () => {
    expect(
      parseLine(
        '[tcp @ 0x561d4d372a00] [error] Connection to tcp://h:1 failed: Connection timed out',
      ),
    ).toEqual({
      component: 'tcp',
      level: 'error',
      message: 'Connection to tcp://h:1 failed: Connection timed out',
    });
    expect(parseLine('[error] http://h/x: Input/output error')).toEqual({
      component: '',
      level: 'error',
      message: 'http://h/x: Input/output error',
    });
  });
});

describe('classifying a TCP probe', () => {
  it.each([
    ['PROBE_TIMEOUT', 'connect_failed'],
    ['ETIMEDOUT', 'connect_failed'],
    ['EHOSTUNREACH', 'connect_failed'],
    ['ENETUNREACH', 'connect_failed'],
    ['EAI_AGAIN', 'connect_failed'],
    ['ECONNREFUSED', 'origin_error'],
    ['ENOTFOUND', 'origin_error'],
    ['EMFILE', 'error'],
  ] as const)('maps %s to %s', (code, status) => {
    expect(classifyProbeError(code).status).toBe(status);
  });
});

describe("what a TCP check of the origin adds to ffmpeg's verdict", () => {
  const origin = { host: '198.18.7.1', port: 1935 };

  it("cannot tell an RTMP path cut from a killed publisher by ffmpeg's output alone", () => {
    const cut = classifyRelay(capturedRun('rtmp-midstream-path-cut'));
    const killed = classifyRelay(
      capturedRun('rtmp-midstream-publisher-killed'),
    );

    expect([cut.status, cut.cause]).toEqual([killed.status, killed.cause]);
    expect(mayBeTheOrigin(cut)).toBe(true);
  });

  it('turns a mid-stream loss into connect_failed when the origin does not answer the connect', () => {
    const said = classifyRelay(capturedRun('rtmp-midstream-path-cut'));

    const verdict = originCheckVerdict(
      { ...origin, ...classifyProbeError('PROBE_TIMEOUT') },
      said,
    );

    expect(verdict).toMatchObject({
      status: 'connect_failed',
      cause: 'connect_timeout',
    });
    expect(verdict?.detail).toMatch(
      /^origin check: connect to 198\.18\.7\.1:1935 failed: Connection timed out \(ffmpeg: .*Input\/output error\)$/,
    );
  });

  it('turns a mid-stream loss into origin_error when the origin refuses the connect', () => {
    const said = classifyRelay(capturedRun('http-midstream-cut'));

    const verdict = originCheckVerdict(
      { ...origin, ...classifyProbeError('ECONNREFUSED') },
      said,
    );

    expect(verdict).toMatchObject({
      status: 'origin_error',
      cause: 'connection_refused',
    });
  });

  it("leaves ffmpeg's verdict when the origin accepts the connect, or the check failed for a local reason", () => {
    expect(
      originCheckVerdict({ ...origin, status: 'ok', cause: 'connected' }),
    ).toBeUndefined();
    expect(
      originCheckVerdict({ ...origin, ...classifyProbeError('EMFILE') }),
    ).toBeUndefined();
  });

  it('names the check alone when ffmpeg has not said anything yet, with brackets around an IPv6 host', () => {
    const verdict = originCheckVerdict({
      host: '2001:db8::1',
      port: 80,
      ...classifyProbeError('EHOSTUNREACH'),
    });

    expect(verdict).toEqual({
      status: 'connect_failed',
      cause: 'no_route_to_host',
      detail:
        'origin check: connect to [2001:db8::1]:80 failed: No route to host',
    });
  });

  it('never checks the origin for a push-target failure or an ffmpeg that did not start', () => {
    expect(
      mayBeTheOrigin(classifyRelay(capturedRun('target-refused-rtmp'))),
    ).toBe(false);
    expect(
      mayBeTheOrigin({
        status: 'error',
        cause: 'spawn_failed',
        detail: 'ffmpeg did not start',
      }),
    ).toBe(false);
    expect(mayBeTheOrigin(classifyRelay(capturedRun('http-404')))).toBe(false);
  });
});
