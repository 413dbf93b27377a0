/**
 * Headless Chromium (Debian's package) driven over the DevTools protocol with
 * Node's own WebSocket: no browser download, no extra dependency. Loopback
 * only; background networking, updates and telemetry are switched off.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Safety nets only; every wait below ends on an event or a condition. */
const START_BOUND_MS = 60_000;
const CALL_BOUND_MS = 60_000;
const POLL_MS = 100;

type Pending = {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
};

export type Page = {
  goto(url: string): Promise<void>;
  evaluate<T>(expression: string): Promise<T>;
  /** Resolves once `expression` is truthy in the page; rejects after `boundMs`. */
  waitFor(expression: string, boundMs?: number): Promise<void>;
  /** Types text into the focused element, as a keyboard would. */
  type(text: string): Promise<void>;
  pressEnter(): Promise<void>;
  screenshot(): Promise<Buffer>;
};

export type Browser = {
  page(options?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
};

export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'relaywatch-chromium-'));
  const child: ChildProcess = spawn(
    CHROMIUM_PATH,
    [
      '--headless=new',
      '--remote-debugging-port=0',
      '--remote-debugging-address=127.0.0.1',
      `--user-data-dir=${profile}`,
      // Root in a container: Chromium's sandbox needs user namespaces it may not have.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-domain-reliability',
      '--disable-breakpad',
      '--no-pings',
      '--metrics-recording-only',
      '--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions',
      'about:blank',
    ],
    // Its own process group, so close() can end the renderer and utility
    // processes too: they outlive the browser process for a moment and keep
    // writing to the profile (rmdir then failed with ENOTEMPTY under load).
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The group is gone already.
    }
  };
  const cleanUp = () => {
    killGroup();
    // A killed child may still be closing a file: rm retries ENOTEMPTY/EBUSY.
    rmSync(profile, {
      recursive: true,
      force: true,
      maxRetries: 20,
      retryDelay: 100,
    });
  };

  const endpoint = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    const bound = setTimeout(
      () => reject(new Error(`chromium did not start: ${stderr.slice(-2000)}`)),
      START_BOUND_MS,
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = stderr.match(/DevTools listening on (ws:\/\/\S+)/);
      if (match?.[1]) {
        clearTimeout(bound);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(bound);
      reject(new Error(`chromium exited with ${code}: ${stderr.slice(-2000)}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    cleanUp();
    throw error;
  });

  const socket = new WebSocket(endpoint);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener(
      'error',
      () => reject(new Error(`cannot connect to ${endpoint}`)),
      { once: true },
    );
  });

  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Set<
    (message: { method: string; sessionId?: string; params: any }) => void
  >();
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data));
    if (message.id !== undefined) {
      const call = pending.get(message.id);
      if (!call) return;
      pending.delete(message.id);
      clearTimeout(call.timer);
      if (message.error)
        call.reject(
          new Error(`${message.error.message} ${message.error.data ?? ''}`),
        );
      else call.resolve(message.result);
    } else {
      for (const listener of listeners) listener(message);
    }
  });

  const send = (
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${method}: no answer within ${CALL_BOUND_MS} ms`));
      }, CALL_BOUND_MS);
      pending.set(id, { resolve, reject, timer });
      socket.send(
        JSON.stringify({
          id,
          method,
          params,
          ...(sessionId ? { sessionId } : {}),
        }),
      );
    });

  const nextEvent = (method: string, sessionId: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`no ${method} within ${CALL_BOUND_MS} ms`));
      }, CALL_BOUND_MS);
      const listener = (message: { method: string; sessionId?: string }) => {
        if (message.method === method && message.sessionId === sessionId) {
          clearTimeout(timer);
          listeners.delete(listener);
          resolve();
        }
      };
      listeners.add(listener);
    });

  return {
    async page(options = { width: 1280, height: 900 }) {
      const { targetId } = await send('Target.createTarget', {
        url: 'about:blank',
      });
      const { sessionId } = await send('Target.attachToTarget', {
        targetId,
        flatten: true,
      });
      await send('Page.enable', {}, sessionId);
      await send('Runtime.enable', {}, sessionId);
      await send(
        'Emulation.setDeviceMetricsOverride',
        { ...options, deviceScaleFactor: 1, mobile: false },
        sessionId,
      );
      const evaluate = async <T>(expression: string): Promise<T> => {
        const answer = await send(
          'Runtime.evaluate',
          { expression, awaitPromise: true, returnByValue: true },
          sessionId,
        );
        if (answer.exceptionDetails)
          throw new Error(
            `page threw: ${JSON.stringify(answer.exceptionDetails)}`,
          );
        return answer.result.value as T;
      };
      return {
        async goto(url) {
          const loaded = nextEvent('Page.loadEventFired', sessionId);
          const result = await send('Page.navigate', { url }, sessionId);
          if (result.errorText)
            throw new Error(`navigation to ${url} failed: ${result.errorText}`);
          await loaded;
        },
        evaluate,
        async waitFor(expression, boundMs = CALL_BOUND_MS) {
          const deadline = Date.now() + boundMs;
          while (!(await evaluate<boolean>(`Boolean(${expression})`))) {
            if (Date.now() > deadline)
              throw new Error(
                `page never showed ${expression} within ${boundMs} ms`,
              );
            await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          }
        },
        async type(text) {
          await send('Input.insertText', { text }, sessionId);
        },
        async pressEnter() {
          const key = {
            key: 'Enter',
            code: 'Enter',
            windowsVirtualKeyCode: 13,
            nativeVirtualKeyCode: 13,
          };
          await send(
            'Input.dispatchKeyEvent',
            { type: 'keyDown', ...key, text: '\r' },
            sessionId,
          );
          await send(
            'Input.dispatchKeyEvent',
            { type: 'keyUp', ...key },
            sessionId,
          );
        },
        async screenshot() {
          const { data } = await send(
            'Page.captureScreenshot',
            { format: 'png', captureBeyondViewport: true },
            sessionId,
          );
          return Buffer.from(data as string, 'base64');
        },
      };
    },
    async close() {
      try {
        await send('Browser.close');
      } catch {
        // Already gone: the kill below makes sure.
      }
      socket.close();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      cleanUp();
    },
  };
}
