/**
 * Decides what a relay's ffmpeg says about the path from this machine to its
 * origin. Pure: it reads stderr lines and facts the supervisor observed, and
 * never touches a process. The rules follow what ffmpeg 5.1 really prints
 * (fixtures in test/fixtures/ffmpeg) and accept the 6.x/7.x wrapper lines.
 *
 *   connect_failed  the path from here is broken: connect timed out, no route
 *                   to host, network unreachable, resolver unreachable
 *   origin_error    the path works, the origin refuses: connection refused,
 *                   HTTP 4xx/5xx, RTMP "Server error", unknown host name …
 *   error           anything else: mid-stream loss, a stall, the push target
 *                   failing, ffmpeg exiting for a local reason
 */

import type { HeartbeatStatus } from '#contract/heartbeat';
import { HEARTBEAT_LIMITS } from '#contract/heartbeat';
import { endpointOf, parseUrl, redactUrl } from './job.js';

export type RunEnding =
  /** ffmpeg is running and its progress advanced recently. */
  | { kind: 'streaming'; frame: number; outTimeUs: number; speed: string }
  | { kind: 'exited'; code: number | null; signal: string | null }
  /** The agent stopped a run whose progress stopped advancing. */
  | { kind: 'stalled'; silentMs: number }
  /** The agent stopped a run that never showed a frame. */
  | { kind: 'no_start'; waitedMs: number }
  | { kind: 'spawn_failed'; message: string };

export type RelayObservation = {
  source: string;
  target: string;
  /** stderr of the current run, oldest first (a bounded tail is enough). */
  lines: readonly string[];
  /** Whether this run's progress ever showed frames advancing. */
  progressed: boolean;
  ending: RunEnding;
};

export type Classification = {
  status: HeartbeatStatus;
  /** Short machine-readable reason, for logs and tests. */
  cause: string;
  /** The ffmpeg line (or agent fact) that decided, redacted, ≤ maxDetailLength. */
  detail: string;
};

type Side = 'source' | 'target';

/**
 * How much a line tells: a protocol-layer line ("Connection to tcp://… failed",
 * "HTTP error 404") says more than the final `<url>: <error>` line, which in
 * turn says more than a generic wrap-up line.
 */
const RANK = { protocol: 3, stream: 2, final: 1 } as const;

type Rule = {
  pattern: RegExp;
  rank: number;
  /** Status when the line is about the source; target lines are always `error`. */
  decide: (context: { progressed: boolean; sourceScheme: string }) => {
    status: HeartbeatStatus;
    cause: string;
  };
};

const fixed = (status: HeartbeatStatus, cause: string) => () => ({
  status,
  cause,
});

/** Ordered: the first rule whose pattern matches a line classifies that line. */
const RULES: readonly Rule[] = [
  // Connect phase, from libavformat/tcp.c and network.c.
  {
    pattern: /Connection to \S+ failed(?: \(| ?: )Connection timed out/,
    rank: RANK.protocol,
    decide: fixed('connect_failed', 'connect_timeout'),
  },
  {
    pattern: /No route to host/,
    rank: RANK.protocol,
    decide: fixed('connect_failed', 'no_route_to_host'),
  },
  {
    pattern: /Network is unreachable/,
    rank: RANK.protocol,
    decide: fixed('connect_failed', 'network_unreachable'),
  },
  {
    pattern: /Temporary failure in name resolution/,
    rank: RANK.protocol,
    decide: fixed('connect_failed', 'resolver_unreachable'),
  },
  {
    pattern:
      /Failed to resolve hostname \S+: (?:Name or service not known|No address associated with hostname)/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'unknown_host'),
  },
  {
    pattern: /Connection to \S+ failed(?: \(| ?: )Connection refused/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'connection_refused'),
  },
  // The origin answered, and said no.
  {
    pattern: /HTTP error [45]\d\d\b/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'http_status'),
  },
  {
    pattern: /Server returned (?:[45]\d\d\b|4XX|5XX)/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'http_status'),
  },
  {
    pattern: /method \w+ failed: [45]\d\d\b/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'rtsp_status'),
  },
  // rtmpproto.c logs the server's refusal, then returns -1, which prints as "Operation not permitted".
  {
    pattern: /Server error: /,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'rtmp_server_error'),
  },
  {
    pattern: /REJECT reported/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'srt_rejected'),
  },
  {
    pattern: /Failed to open segment/,
    rank: RANK.protocol,
    decide: fixed('origin_error', 'hls_segment'),
  },
  // Data stopped after the stream was open.
  {
    pattern: /Stream ends prematurely/,
    rank: RANK.stream,
    decide: fixed('error', 'midstream_eof'),
  },
  {
    pattern: /Cannot read RTMP handshake response/,
    rank: RANK.stream,
    decide: fixed('error', 'rtmp_handshake'),
  },
  // Final lines: `<url>: <error text>` or the 6.x/7.x wrappers around the same text.
  {
    pattern: /: Connection refused$/,
    rank: RANK.final,
    decide: fixed('origin_error', 'connection_refused'),
  },
  {
    // A timeout without a connect-phase line means TCP was up: the origin went
    // silent, or the path broke under a running stream. Neither proves the
    // path from here is broken, so it never counts as connect_failed.
    pattern: /: Connection timed out$/,
    rank: RANK.final,
    decide: ({ progressed }) =>
      progressed
        ? { status: 'error', cause: 'midstream_timeout' }
        : { status: 'error', cause: 'no_answer' },
  },
  {
    pattern: /: Connection reset by peer$/,
    rank: RANK.final,
    decide: ({ progressed }) =>
      progressed
        ? { status: 'error', cause: 'midstream_reset' }
        : { status: 'origin_error', cause: 'reset_by_origin' },
  },
  {
    // An HTTP origin that answers 200 with a web page instead of media.
    pattern: /: Invalid data found when processing input$/,
    rank: RANK.final,
    decide: ({ progressed, sourceScheme }) =>
      !progressed && (sourceScheme === 'http' || sourceScheme === 'https')
        ? { status: 'origin_error', cause: 'not_media' }
        : { status: 'error', cause: 'invalid_data' },
  },
  {
    // Before any frame an RTMP server that was reached closed the session (bad
    // application); after frames it is a lost stream.
    pattern: /: (?:Input\/output error|I\/O error|End of file)$/,
    rank: RANK.final,
    decide: ({ progressed, sourceScheme }) =>
      progressed
        ? { status: 'error', cause: 'midstream_eof' }
        : sourceScheme === 'rtmp' || sourceScheme === 'rtmps'
          ? { status: 'origin_error', cause: 'rtmp_closed' }
          : { status: 'error', cause: 'io_error' },
  },
  // Any other `<something>: <error>` line, so the detail names what failed.
  { pattern: /\S: \S.*$/, rank: 0, decide: fixed('error', 'ffmpeg_error') },
];

/** `[tcp @ 0x55…] [error] text` → component "tcp", level "error", message "text". */
export function parseLine(line: string): {
  component: string;
  level: string;
  message: string;
} {
  let rest = line.trim();
  let component = '';
  let level = '';
  const componentMatch = /^\[([^\]@]+?) @ 0x[0-9a-f]+\]\s*/i.exec(rest);
  if (componentMatch) {
    component = componentMatch[1] ?? '';
    rest = rest.slice(componentMatch[0].length);
  }
  const levelMatch =
    /^\[(panic|fatal|error|warning|info|verbose|debug|trace)\]\s*/.exec(rest);
  if (levelMatch) {
    level = levelMatch[1] ?? '';
    rest = rest.slice(levelMatch[0].length);
  }
  return { component, level, message: rest };
}

type SideMatcher = (
  message: string,
  component: string,
) => Side | 'both' | undefined;

/**
 * Which end a line is about. ffmpeg prints input-side and output-side errors
 * in the same shape, so only the URL (or the 6.x+ `in#`/`out#` component)
 * tells them apart.
 */
function sideMatcher(source: string, target: string): SideMatcher {
  const ends = [
    { side: 'source' as const, text: source, url: parseUrl(source) },
    { side: 'target' as const, text: target, url: parseUrl(target) },
  ];
  return (message, component) => {
    if (/^in#\d/.test(component)) return 'source';
    if (/^out#\d/.test(component)) return 'target';
    const named = ends.filter((end) => message.includes(end.text));
    if (named.length === 1) return named[0]?.side;
    // Protocol-layer lines name only the host (and port) they connect to.
    const endpoint =
      /(?:Connection to|Cannot open connection) \w+:\/\/(\[[^\]]+\]|[^:/?\s]+):(\d+)/.exec(
        message,
      );
    const resolved = /Failed to resolve hostname (\S+?):/.exec(message)?.[1];
    const matching = ends.filter(({ url }) => {
      if (url === undefined) return false;
      const { host, port } = endpointOf(url);
      if (endpoint)
        return (
          host === endpoint[1]?.replace(/^\[|\]$/g, '').toLowerCase() &&
          port === Number(endpoint[2])
        );
      if (resolved) return host === resolved.toLowerCase();
      return false;
    });
    if (matching.length === 2) return 'both';
    return matching[0]?.side;
  };
}

type Finding = {
  index: number;
  line: string;
  side: Side | 'unknown';
  rule: Rule;
};

function findings(observation: RelayObservation): Finding[] {
  const sideOf = sideMatcher(observation.source, observation.target);
  const parsed = observation.lines.map((line) => {
    const { component, level, message } = parseLine(line);
    return {
      line,
      component,
      level,
      message,
      side: sideOf(message, component),
    };
  });
  const result: Finding[] = [];
  let inputOpened = false;
  parsed.forEach((entry, index) => {
    if (/^Input #\d+, /.test(entry.message)) inputOpened = true;
    if (
      entry.level !== '' &&
      !['panic', 'fatal', 'error', 'warning'].includes(entry.level)
    )
      return;
    const rule = RULES.find((candidate) =>
      candidate.pattern.test(entry.message),
    );
    if (rule === undefined || (rule.rank === 0 && entry.level === 'warning'))
      return;
    let side: Side | 'unknown' | undefined =
      entry.side === 'both' ? undefined : entry.side;
    // A line naming no end, or both, belongs to the next line that names one.
    if (side === undefined) {
      side = parsed
        .slice(index + 1)
        .find((later) => later.side === 'source' || later.side === 'target')
        ?.side as Side | undefined;
    }
    // Before the input is open, an unattributed line can only be about it.
    side ??= inputOpened ? 'unknown' : 'source';
    result.push({ index, line: entry.line, side, rule });
  });
  return result;
}

/** The most telling finding; among equals, the earliest, which is nearest the cause. */
function decisive(found: Finding[]): Finding | undefined {
  let best: Finding | undefined;
  for (const finding of found) {
    if (best === undefined || finding.rule.rank > best.rule.rank)
      best = finding;
  }
  return best;
}

export function truncateDetail(text: string): string {
  const max = HEARTBEAT_LIMITS.maxDetailLength;
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Replaces the job's URLs in a line by forms without credentials or stream keys. */
function redactLine(line: string, source: string, target: string): string {
  return line
    .trim()
    .split(target)
    .join(redactUrl(target))
    .split(source)
    .join(redactUrl(source))
    .replace(/\/\/[^/@\s:]+:[^/@\s]+@/g, '//');
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

export function classifyRelay(observation: RelayObservation): Classification {
  const { ending, source, target } = observation;
  const clean = (line: string) =>
    truncateDetail(redactLine(line, source, target));
  if (ending.kind === 'streaming') {
    const outTime = (ending.outTimeUs / 1e6).toFixed(1);
    return {
      status: 'ok',
      cause: 'streaming',
      detail: `streaming: frame=${ending.frame} out_time=${outTime}s speed=${ending.speed}`,
    };
  }
  if (ending.kind === 'spawn_failed') {
    return {
      status: 'error',
      cause: 'spawn_failed',
      detail: truncateDetail(`ffmpeg did not start: ${ending.message}`),
    };
  }
  const sourceScheme = (parseUrl(source)?.protocol ?? '').slice(0, -1);
  const found = findings(observation);
  const best = decisive(found);
  const context = { progressed: observation.progressed, sourceScheme };

  if (ending.kind === 'stalled' || ending.kind === 'no_start') {
    // ffmpeg is still waiting, so no final line exists; only what the origin
    // already said (e.g. HLS segments answering 404) can name a cause.
    const said =
      best && best.rule.rank >= RANK.stream && best.side === 'source'
        ? best
        : undefined;
    if (said) return { ...said.rule.decide(context), detail: clean(said.line) };
    const fact =
      ending.kind === 'stalled'
        ? `stalled: no progress for ${seconds(ending.silentMs)}; ffmpeg stopped by the agent`
        : `no frame within ${seconds(ending.waitedMs)}; ffmpeg stopped by the agent`;
    const lastLine = observation.lines.at(-1);
    return {
      status: 'error',
      cause: ending.kind === 'stalled' ? 'stalled' : 'no_start',
      detail: truncateDetail(
        lastLine
          ? `${fact} (last line: ${redactLine(lastLine, source, target)})`
          : fact,
      ),
    };
  }

  if (best !== undefined && best.side === 'source') {
    return { ...best.rule.decide(context), detail: clean(best.line) };
  }
  if (best !== undefined) {
    // Never blame the origin for the push side or for a line of unknown side.
    const prefix = best.side === 'target' ? 'target' : 'unattributed';
    return {
      status: 'error',
      cause: `${prefix}_${best.rule.decide(context).cause}`,
      detail: clean(
        `${prefix === 'target' ? 'push target: ' : ''}${best.line.trim()}`,
      ),
    };
  }
  if (ending.code === 0 && observation.progressed) {
    // A live input has no end: a clean EOF is a lost stream (e.g. a chunked
    // HTTP origin closing), even though ffmpeg reports success.
    return {
      status: 'error',
      cause: 'input_ended',
      detail: 'ffmpeg exited 0: the input ended',
    };
  }
  const how = ending.signal ? `signal ${ending.signal}` : `code ${ending.code}`;
  const lastError = [...observation.lines]
    .reverse()
    .find((line) => parseLine(line).level === 'error');
  return {
    status: 'error',
    cause: 'exited',
    detail: truncateDetail(
      `ffmpeg exited with ${how}${lastError ? `: ${redactLine(lastError, source, target)}` : ''}`,
    ),
  };
}

/** How ffmpeg words the connect-phase errno that a TCP check met, so a detail reads the same either way. */
const CHECK_WORDING: Record<string, string> = {
  connect_timeout: 'Connection timed out',
  no_route_to_host: 'No route to host',
  network_unreachable: 'Network is unreachable',
  resolver_unreachable: 'Temporary failure in name resolution',
  connection_refused: 'Connection refused',
  unknown_host: 'Name or service not known',
};

/**
 * What a TCP connect to the origin's host:port says about a relay that has
 * not flowed yet, stalled, or lost its input. No answer proves the path from
 * here broken (connect_failed) and a refusal proves the origin (origin_error);
 * either replaces ffmpeg's verdict, `after`, which cannot tell them apart once
 * the stream was open. A connect proves nothing new: undefined.
 * @example originCheckVerdict({ host: 'o.example', port: 1935, status: 'origin_error', cause: 'connection_refused' })
 * // { status: 'origin_error', cause: 'connection_refused', detail: 'origin check: connect to o.example:1935 failed: Connection refused' }
 */
export function originCheckVerdict(
  check: { host: string; port: number; status: HeartbeatStatus; cause: string },
  after?: Classification,
): Classification | undefined {
  if (check.status !== 'connect_failed' && check.status !== 'origin_error')
    return undefined;
  const host = check.host.includes(':') ? `[${check.host}]` : check.host;
  const said = `origin check: connect to ${host}:${check.port} failed: ${CHECK_WORDING[check.cause] ?? check.cause}`;
  return {
    status: check.status,
    cause: check.cause,
    detail: truncateDetail(
      after === undefined ? said : `${said} (ffmpeg: ${after.detail})`,
    ),
  };
}

/** A verdict of `error` that may be about the origin: neither the push target nor ffmpeg itself failing to start. */
export function mayBeTheOrigin(classification: Classification): boolean {
  return (
    classification.status === 'error' &&
    !classification.cause.startsWith('target_') &&
    classification.cause !== 'spawn_failed'
  );
}

export type ProbeClassification = { status: HeartbeatStatus; cause: string };

/**
 * A TCP probe's outcome from its errno code. The same split as for relays:
 * no answer at all is the path; an answer (a RST, NXDOMAIN) is the target.
 */
export function classifyProbeError(
  code: string | undefined,
): ProbeClassification {
  switch (code) {
    case 'ETIMEDOUT':
    case 'PROBE_TIMEOUT':
      return { status: 'connect_failed', cause: 'connect_timeout' };
    case 'EHOSTUNREACH':
      return { status: 'connect_failed', cause: 'no_route_to_host' };
    case 'ENETUNREACH':
      return { status: 'connect_failed', cause: 'network_unreachable' };
    case 'EAI_AGAIN':
      return { status: 'connect_failed', cause: 'resolver_unreachable' };
    case 'ECONNREFUSED':
      return { status: 'origin_error', cause: 'connection_refused' };
    case 'ENOTFOUND':
      return { status: 'origin_error', cause: 'unknown_host' };
    default:
      return { status: 'error', cause: code ? code.toLowerCase() : 'unknown' };
  }
}
