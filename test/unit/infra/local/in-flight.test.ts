import { describe, expect, it } from 'vitest';
import { createInFlight } from '../../../../infra/local/in-flight.js';
import { deferred } from '../../../helpers/deferred.js';

describe('work in flight (what a local server lets end before stopping)', () => {
  it('settles at once with nothing tracked', async () => {
    expect(await createInFlight().settled(10_000)).toBe(0);
  });

  it('waits for every tracked work, failed ones too, and for work tracked while it waits', async () => {
    const inFlight = createInFlight();
    const first = deferred<string>();
    const failing = deferred();
    expect(inFlight.track(first.promise)).toBe(first.promise);
    inFlight.track(failing.promise).catch(() => undefined);

    let settled = false;
    const settling = inFlight.settled(10_000).then((left) => {
      settled = true;
      return left;
    });
    const later = deferred();
    first.resolve('done');
    inFlight.track(later.promise);
    failing.reject(new Error('failed'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);

    later.resolve();
    expect(await settling).toBe(0);
  });

  it('gives up after the wait and answers how many were still running', async () => {
    const inFlight = createInFlight();
    inFlight.track(new Promise(() => undefined));
    inFlight.track(Promise.resolve());
    expect(await inFlight.settled(30)).toBe(1);
  });
});
