import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { minuteOf, minuteStart } from '../../../../functions/core/minutes.js';
import type { Browser, Page } from '../../../helpers/chromium.js';
import { launchChromium } from '../../../helpers/chromium.js';
import { ROOT } from '../../../helpers/run-bin.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import {
  apiClient,
  startStatusCenter,
} from '../../../helpers/status-center.js';

const ARTIFACTS = join(ROOT, 'test/artifacts');
const HEALTHY = [
  '198.51.100.1',
  '198.51.100.2',
  '198.51.100.3',
  '198.51.100.4',
];
const BROKEN = '198.51.100.5';

function heartbeats(ip: string, status: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    ip,
    process: `ffmpeg-${i}`,
    status,
    origin: `rtmp://origin-a.example.net/live/s${i}`,
  }));
}

/** The text of every row of a table on the page, cells joined by " | ". */
const rowsOf = (page: Page, id: string) =>
  page.evaluate<string[]>(
    `[...document.querySelectorAll('#${id} tr')].map((tr) => [...tr.children].map((td) => td.textContent.trim()).join(' | '))`,
  );

describe('the dashboard in headless Chromium', () => {
  const minute = minuteOf(Date.now());
  let now = minuteStart(minute) + 20_000;
  let center: TestStatusCenter;
  let api: ReturnType<typeof apiClient>;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    center = await startStatusCenter({ overrides: { now: () => now } });
    api = apiClient(center);
    for (const ip of HEALTHY)
      await api('POST', '/v1/heartbeats', {
        role: 'reporter',
        body: { heartbeats: heartbeats(ip, 'ok', 12) },
      });
    await api('POST', '/v1/heartbeats', {
      role: 'reporter',
      body: { heartbeats: heartbeats(BROKEN, 'connect_failed', 12) },
    });
    now = minuteStart(minute + 1) + 15_000;
    await center.aggregate(new Date(now).toISOString());
    browser = await launchChromium();
    page = await browser.page();
  });
  afterAll(async () => {
    await browser?.close();
    await center?.stop();
  });

  it('is served without a token as one HTML page whose policy admits only its own script', async () => {
    const response = await fetch(`${center.url}/dashboard`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(
      'text/html; charset=utf-8',
    );
    expect(response.headers.get('content-security-policy')).toMatch(
      /default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; /,
    );
    const html = await response.text();
    expect(html).not.toMatch(/<script src|<link rel="stylesheet"/);
  });

  it('refuses a wrong token and asks again', async () => {
    await page.goto(`${center.url}/dashboard`);
    await page.waitFor(`!document.getElementById('login').hidden`);
    await page.evaluate(`document.getElementById('token').focus()`);
    await page.type('not-a-token');
    await page.pressEnter();
    await page.waitFor(
      `document.getElementById('login-error').textContent.includes('refused')`,
    );
    expect(
      await page.evaluate(`sessionStorage.getItem('relaywatch-token')`),
    ).toBeNull();
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(
      join(ARTIFACTS, 'dashboard-login.png'),
      await page.screenshot(),
    );
  });

  it('shows the banned IP with its reason and end after the reader token is entered, keeping the token in the tab only', async () => {
    await page.evaluate(`document.getElementById('token').focus()`);
    await page.type(center.tokens.reader);
    await page.pressEnter();
    await page.waitFor(`document.body.dataset.state === 'loaded'`);

    const until = (await api('GET', `/v1/ips/${BROKEN}`, { role: 'reader' }))
      .json.ban.until as string;
    const shownUntil = until.replace(/\.\d{3}Z$/, 'Z').replace('T', ' ');
    const bans = await rowsOf(page, 'bans');
    expect(bans[0]).toBe('IP | Until | Kind | Ratio | Samples | Reason');
    expect(bans).toHaveLength(2);
    expect(bans[1]).toMatch(
      new RegExp(
        `^${BROKEN.replaceAll('.', '\\.')} \\| ${shownUntil} \\(in [^)]+\\) \\| automatic \\| 100% \\| 12 \\| connect failures 12/12 \\(100%\\) >= 50%$`,
      ),
    );
    const fleet = await rowsOf(page, 'fleet');
    expect(fleet.find((row) => row.startsWith(BROKEN))).toMatch(
      /\| banned \| 100% \| 12 \| 12 \|/,
    );
    expect(
      fleet.filter((row) => / \| ok \| 0% \| 12 \| 0 \| - \| $/.test(row)),
    ).toHaveLength(HEALTHY.length);
    expect(
      await page.evaluate(
        `document.getElementById('banned-count').textContent`,
      ),
    ).toBe('1');
    expect(
      await page.evaluate(`document.getElementById('lag').textContent`),
    ).toBe('0 min');
    const events = await rowsOf(page, 'events');
    expect(
      events.some((row) => row.includes(`| ban | ${BROKEN} | banned until`)),
    ).toBe(true);

    expect(
      await page.evaluate(`sessionStorage.getItem('relaywatch-token')`),
    ).toBe(center.tokens.reader);
    expect(
      await page.evaluate(`localStorage.length + document.cookie.length`),
    ).toBe(0);

    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(join(ARTIFACTS, 'dashboard.png'), await page.screenshot());
  });

  it('refreshes by itself: a ban placed meanwhile appears without a reload', async () => {
    await page.evaluate(`window.loadedOnce = true`);
    expect(
      (
        await api('PUT', '/v1/bans/203.0.113.9', {
          body: { durationSeconds: 900, reason: 'rack maintenance' },
        })
      ).status,
    ).toBe(201);
    await page.waitFor(
      `[...document.querySelectorAll('#bans td')].some((td) => td.textContent === 'rack maintenance')`,
    );
    // Still the same document: it was not reloaded.
    expect(await page.evaluate('window.loadedOnce')).toBe(true);
    expect(
      await page.evaluate(
        `document.getElementById('banned-count').textContent`,
      ),
    ).toBe('2');
    writeFileSync(
      join(ARTIFACTS, 'dashboard-refreshed.png'),
      await page.screenshot(),
    );
  });
});
