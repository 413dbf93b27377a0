/**
 * Reading ffmpeg's two text streams. Pure: callers feed chunks.
 *   - stderr: log lines, which ffmpeg ends with "\n" or, for stats, "\r".
 *   - `-progress`: blocks of key=value lines, each ending with
 *     `progress=continue` or `progress=end`.
 */

/** Longest line kept; ffmpeg lines are short, a runaway one is cut. */
const MAX_LINE_LENGTH = 4_096;

/** Splits a byte stream into lines, holding a partial line between chunks. */
export function createLineSplitter(onLine: (line: string) => void) {
  let pending = '';
  return {
    push(chunk: string): void {
      const parts = (pending + chunk).split(/\r\n|\r|\n/);
      pending = (parts.pop() ?? '').slice(-MAX_LINE_LENGTH);
      for (const part of parts)
        if (part.trim() !== '') onLine(part.slice(0, MAX_LINE_LENGTH));
    },
    end(): void {
      if (pending.trim() !== '') onLine(pending);
      pending = '';
    },
  };
}

export type ProgressBlock = {
  frame: number;
  /** `out_time_us`; `out_time_ms` is microseconds too (ffmpeg trac #7345). */
  outTimeUs: number;
  speed: string;
  /** `progress=end`: ffmpeg is finishing. */
  end: boolean;
};

/** Collects key=value lines into blocks; calls onBlock at each `progress=` line. */
export function createProgressParser(onBlock: (block: ProgressBlock) => void) {
  let values = new Map<string, string>();
  const splitter = createLineSplitter((line) => {
    const equals = line.indexOf('=');
    if (equals <= 0) return;
    const key = line.slice(0, equals).trim();
    const value = line.slice(equals + 1).trim();
    if (key !== 'progress') {
      values.set(key, value);
      return;
    }
    const frame = Number(values.get('frame'));
    const outTimeUs = Number(values.get('out_time_us'));
    onBlock({
      frame: Number.isFinite(frame) ? frame : 0,
      // N/A before the first packet.
      outTimeUs: Number.isFinite(outTimeUs) ? outTimeUs : 0,
      speed: values.get('speed') ?? 'N/A',
      end: value === 'end',
    });
    values = new Map();
  });
  return { push: splitter.push, end: splitter.end };
}

/** A bounded tail of lines: the last `size` kept, oldest first. */
export function createLineTail(size: number) {
  const lines: string[] = [];
  return {
    add(line: string): void {
      lines.push(line);
      if (lines.length > size) lines.shift();
    },
    lines: (): readonly string[] => lines,
    clear(): void {
      lines.length = 0;
    },
  };
}
