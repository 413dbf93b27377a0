import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { boundedAge } from '../../../../functions/http/api-runtime.js';
import { createLogger } from '../../../../functions/log.js';

/** Secrets and the revocation list are kept at most a bounded age, so a rotation or revocation takes effect. */
describe('a credential kept with a bounded age', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-11-24T14:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const source = (values: Array<string | Error>) => {
    let reads = 0;
    return {
      load: async () => {
        const value = values[Math.min(reads++, values.length - 1)]!;
        if (value instanceof Error) throw value;
        return value;
      },
      reads: () => reads,
    };
  };
  const log = createLogger({ level: 'error', write: () => undefined });

  it('serves the value it has until it is older than the age, then reads it again', async () => {
    const secret = source(['rotated']);
    const get = boundedAge({
      initial: 'original',
      load: secret.load,
      maxAgeMs: 300_000,
      log,
      what: 'secret',
    });
    vi.advanceTimersByTime(299_000);
    expect(await get()).toBe('original');
    vi.advanceTimersByTime(1_000);
    expect(await get()).toBe('rotated');
    expect(secret.reads()).toBe(1);
  });

  it('keeps the last value when a refresh fails, and tries again on the next call', async () => {
    const secret = source([new Error('secrets manager down'), 'rotated']);
    const get = boundedAge({
      initial: 'original',
      load: secret.load,
      maxAgeMs: 1_000,
      log,
      what: 'secret',
    });
    vi.advanceTimersByTime(1_000);
    expect(await get()).toBe('original');
    expect(await get()).toBe('rotated');
  });

  it('fails the call when there is no value yet and the first read fails', async () => {
    const list = source([new Error('dynamodb unreachable'), 'revocations']);
    const get = boundedAge<string>({
      load: list.load,
      maxAgeMs: 60_000,
      log,
      what: 'revocations',
    });
    await expect(get()).rejects.toThrow('dynamodb unreachable');
    expect(await get()).toBe('revocations');
  });
});
