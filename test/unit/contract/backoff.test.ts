import { describe, expect, it } from 'vitest';
import { backoffDelay } from '#contract/backoff';

describe('backoff with jitter', () => {
  it('doubles the planned delay per attempt', () => {
    const delays = [0, 1, 2, 3].map((attempt) =>
      backoffDelay({ attempt, minMs: 1_000, maxMs: 60_000, random: () => 1 }),
    );

    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000]);
  });

  it('never exceeds the maximum, however many attempts failed', () => {
    expect(
      backoffDelay({
        attempt: 5_000,
        minMs: 1_000,
        maxMs: 60_000,
        random: () => 1,
      }),
    ).toBe(60_000);
  });

  it('never goes below half the planned delay', () => {
    expect(
      backoffDelay({
        attempt: 3,
        minMs: 1_000,
        maxMs: 60_000,
        random: () => 0,
      }),
    ).toBe(4_000);
  });

  it('with full jitter, may retry at once and never waits past the plan', () => {
    const at = (random: number) =>
      backoffDelay({
        attempt: 2,
        minMs: 100,
        maxMs: 1_600,
        random: () => random,
        jitter: 'full',
      });

    expect([at(0), at(0.5), at(1)]).toEqual([0, 200, 400]);
  });

  it('waits what the other side asked for, up to the maximum', () => {
    const delay = (notBeforeMs: number) =>
      backoffDelay({
        attempt: 0,
        minMs: 1_000,
        maxMs: 60_000,
        random: () => 0,
        notBeforeMs,
      });

    expect([delay(0), delay(30_000), delay(120_000)]).toEqual([
      500, 30_000, 60_000,
    ]);
  });
});
