import { describe, expect, it } from 'vitest';
import { lambdaEntry } from '../../../functions/entry.js';

/** An init that counts its calls and fails the first `failures` of them. */
function countingInit(failures = 0) {
  const init = {
    calls: 0,
    run: async () => {
      init.calls += 1;
      if (init.calls <= failures)
        throw new Error(`init attempt ${init.calls} failed`);
      return { id: init.calls };
    },
  };
  return init;
}

describe('lambdaEntry', () => {
  it('builds nothing until the first invocation', () => {
    const init = countingInit();
    lambdaEntry(init.run, () => async () => 'served');
    expect(init.calls).toBe(0);
  });

  it('hands the invocation its arguments and returns what the handler returns', async () => {
    const handler = lambdaEntry(
      async () => ({ prefix: 'runtime' }),
      (runtime) => async (event: { n: number }, context: string) =>
        `${runtime.prefix}:${event.n}:${context}`,
    );
    expect(await handler({ n: 7 }, 'ctx')).toBe('runtime:7:ctx');
  });

  it('builds the runtime once for every later and concurrent invocation', async () => {
    const init = countingInit();
    const created: unknown[] = [];
    const handler = lambdaEntry(init.run, (runtime) => {
      created.push(runtime);
      return async () => runtime.id;
    });
    const first = await Promise.all([handler(), handler(), handler()]);
    expect([...first, await handler()]).toEqual([1, 1, 1, 1]);
    expect(init.calls).toBe(1);
    expect(created).toHaveLength(1);
  });

  it('fails the invocations of a failed init and tries again on the next one', async () => {
    const init = countingInit(1);
    const handler = lambdaEntry(init.run, (runtime) => async () => runtime.id);
    const concurrent = await Promise.allSettled([handler(), handler()]);
    expect(concurrent.map((result) => result.status)).toEqual([
      'rejected',
      'rejected',
    ]);
    expect(init.calls).toBe(1);
    expect(await handler()).toBe(2);
    expect(await handler()).toBe(2);
    expect(init.calls).toBe(2);
  });

  it('does not cache a createHandler that throws either', async () => {
    let attempts = 0;
    const handler = lambdaEntry(
      () => 'runtime',
      () => {
        attempts += 1;
        if (attempts === 1) throw new Error('wiring failed');
        return async () => 'served';
      },
    );
    await expect(handler()).rejects.toThrow('wiring failed');
    expect(await handler()).toBe('served');
  });
});
