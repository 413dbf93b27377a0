import type { Logger } from '../../functions/log.js';

/**
 * Fires `run` at the start of every period (aligned to the wall clock, like an
 * EventBridge rate(1 minute) rule) with the scheduled time; the run is the
 * aggregate Lambda's own handler, which makes its passes through the minute.
 * A failing run is logged and the schedule goes on, as EventBridge would retry
 * and move on.
 */
export function startScheduler(options: {
  everyMs: number;
  run: (time: string) => Promise<unknown>;
  log: Logger;
}): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    const next =
      Math.ceil((Date.now() + 1) / options.everyMs) * options.everyMs;
    timer = setTimeout(() => {
      if (stopped) return;
      schedule();
      options.run(new Date(next).toISOString()).catch((error) => {
        // A run cut short by stop() is not a failure.
        if (!stopped)
          options.log.error('scheduled aggregation failed', {
            error: String(error),
          });
      });
    }, next - Date.now());
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
