import { describe, expect, it } from 'vitest';
import type { ProgressBlock } from '../../../../clients/agent/progress.js';
import {
  createLineSplitter,
  createLineTail,
  createProgressParser,
} from '../../../../clients/agent/progress.js';

// A block as ffmpeg 5.1 writes it with -progress (out_time_ms is microseconds too).
const BLOCK = [
  'frame=27',
  'fps=26.75',
  'stream_0_0_q=-1.0',
  'bitrate=N/A',
  'total_size=N/A',
  'out_time_us=1044000',
  'out_time_ms=1044000',
  'out_time=00:00:01.044000',
  'dup_frames=0',
  'drop_frames=0',
  'speed=1.03x',
  'progress=continue',
  '',
].join('\n');

describe('reading ffmpeg progress blocks', () => {
  it('yields one block per progress= line with frame, out_time_us and speed', () => {
    const blocks: ProgressBlock[] = [];
    const parser = createProgressParser((block) => blocks.push(block));

    parser.push(BLOCK);

    expect(blocks).toEqual([
      { frame: 27, outTimeUs: 1_044_000, speed: '1.03x', end: false },
    ]);
  });

  it('assembles a block split across chunks at any byte', () => {
    const blocks: ProgressBlock[] = [];
    const parser = createProgressParser((block) => blocks.push(block));

    for (const chunk of BLOCK.match(/.{1,7}/gs) ?? []) parser.push(chunk);

    expect(blocks).toHaveLength(1);
    expect(blocks[0]?.outTimeUs).toBe(1_044_000);
  });

  it('marks the last block of a run as the end', () => {
    const blocks: ProgressBlock[] = [];
    const parser = createProgressParser((block) => blocks.push(block));

    parser.push(BLOCK.replace('progress=continue', 'progress=end'));

    expect(blocks[0]?.end).toBe(true);
  });

  it('reads out_time_us N/A (before the first packet) as zero', () => {
    const blocks: ProgressBlock[] = [];
    const parser = createProgressParser((block) => blocks.push(block));

    parser.push('frame=0\nout_time_us=N/A\nspeed=N/A\nprogress=continue\n');

    expect(blocks).toEqual([
      { frame: 0, outTimeUs: 0, speed: 'N/A', end: false },
    ]);
  });
});

describe('splitting stderr into lines', () => {
  it('ends lines at \\n, \\r\\n and the \\r of stats lines, holding partial lines between chunks', () => {
    const lines: string[] = [];
    const splitter = createLineSplitter((line) => lines.push(line));

    splitter.push('[info] frame=1\r[info] fra');
    splitter.push('me=2\r\n[error] http://h/x: Input/out');
    splitter.push('put error\n');
    splitter.push('tail without newline');
    splitter.end();

    expect(lines).toEqual([
      '[info] frame=1',
      '[info] frame=2',
      '[error] http://h/x: Input/output error',
      'tail without newline',
    ]);
  });

  it('keeps only the newest lines in a tail', () => {
    const tail = createLineTail(2);

    for (const line of ['a', 'b', 'c']) tail.add(line);

    expect(tail.lines()).toEqual(['b', 'c']);
  });
});
