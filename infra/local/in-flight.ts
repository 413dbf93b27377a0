/**
 * How long stopping waits for work in flight (a request's handler, an
 * aggregation run) before it goes on without it. The handlers' own bounds
 * (DynamoDB calls time out after 5 s, tried 3 times) end them well before.
 */
export const STOP_WAIT_MS = 30_000;

export type InFlight = {
  /** Tracks `work` until it settles; answers it. */
  track<T>(work: Promise<T>): Promise<T>;
  /**
   * Settles once no tracked work is left, work tracked meanwhile included,
   * or after `waitMs`; answers how many were still running then.
   */
  settled(waitMs?: number): Promise<number>;
};

/** Work a local server started and must let end before what it uses stops. */
export function createInFlight(): InFlight {
  const running = new Set<Promise<unknown>>();
  return {
    track(work) {
      running.add(work);
      const done = () => running.delete(work);
      work.then(done, done);
      return work;
    },
    async settled(waitMs = STOP_WAIT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), waitMs);
        timer.unref();
      });
      try {
        while (running.size) {
          const outcome = await Promise.race([
            Promise.allSettled([...running]),
            timedOut,
          ]);
          if (outcome === 'timeout') break;
        }
      } finally {
        clearTimeout(timer);
      }
      return running.size;
    },
  };
}
