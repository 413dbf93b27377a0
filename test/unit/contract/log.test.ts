import { describe, expect, it } from 'vitest';
import * as client from '#contract/log';
import * as server from '../../../functions/log.js';

function linesOf(create: typeof client.createLogger) {
  const lines: string[] = [];
  const log = create({
    level: 'info',
    fields: { component: 'agent' },
    write: (line) => void lines.push(line),
    now: () => Date.parse('2026-01-01T00:00:00Z'),
  });
  log.debug('dropped below the level');
  log.child({ relay: 'cam-1' }).warn('relay stalled', {
    seconds: 12,
    error: new TypeError('boom'),
  });
  return lines;
}

describe('the clients logger', () => {
  it('writes the same lines as the Lambdas logger, so one log pipeline reads both', () => {
    // Act
    const fromClient = linesOf(client.createLogger);
    const fromServer = linesOf(server.createLogger);
    // Assess
    expect(fromClient).toEqual(fromServer);
    expect(JSON.parse(fromClient[0] ?? '')).toEqual({
      timestamp: '2026-01-01T00:00:00.000Z',
      level: 'warn',
      message: 'relay stalled',
      component: 'agent',
      relay: 'cam-1',
      seconds: 12,
      error: 'TypeError: boom',
    });
  });

  it('has the levels of the Lambdas logger and no metric writer', () => {
    expect(client.LOG_LEVELS).toEqual(server.LOG_LEVELS);
    expect(
      'metrics' in client.createLogger({ level: 'info', write: () => {} }),
    ).toBe(false);
  });
});
