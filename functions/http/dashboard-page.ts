/**
 * The dashboard: one self-contained HTML page (inline CSS and JS, no build
 * step, no third-party code). It asks for a reader token, keeps it in the
 * tab's sessionStorage only, and reads the JSON API with it. Every value
 * from the API reaches the page through textContent, never as HTML.
 */
import { createHash } from 'node:crypto';

/** Seconds between two refreshes of the page's data. */
export const DASHBOARD_REFRESH_SECONDS = 10;

// Plain browser JavaScript kept as text: it is served as is, so it must not
// depend on anything a bundler or tsx would inject.
const SCRIPT = String.raw`
'use strict';
const REFRESH_MS = ${DASHBOARD_REFRESH_SECONDS * 1000};
const TOKEN_KEY = 'relaywatch-token';
const $ = (id) => document.getElementById(id);
let timer;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}
const pct = (r) => (r === null || r === undefined ? '-' : Math.round(r * 100) + '%');
const iso = (t) => String(t).replace(/\.\d{3}Z$/, 'Z').replace('T', ' ');
function span(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return d + 'd' + (h ? ' ' + h + 'h' : '');
  if (h) return h + 'h' + (m ? ' ' + m + 'm' : '');
  if (m) return m + 'm' + (s ? ' ' + s + 's' : '');
  return s + 's';
}
const untilText = (until) => iso(until) + ' (in ' + span(Date.parse(until) - Date.now()) + ')';

function fillTable(id, headers, rows, empty) {
  const table = $(id);
  table.replaceChildren();
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', empty, 'empty');
    td.colSpan = headers.length;
    tr.append(td);
    table.append(tr);
    return;
  }
  const head = el('tr');
  for (const h of headers) head.append(el('th', h));
  table.append(head);
  for (const row of rows) {
    const tr = el('tr');
    for (const cell of row) tr.append(cell instanceof Node ? wrap(cell) : el('td', cell));
    table.append(tr);
  }
}
function wrap(node) { const td = el('td'); td.append(node); return td; }
const badge = (text, kind) => el('span', text, 'badge ' + kind);

function verdict(ip, fleet) {
  if (fleet.banned.some((b) => b.ip === ip)) return 'banned';
  if (fleet.capped.includes(ip)) return 'capped';
  if (fleet.silent.some((s) => s.ip === ip)) return 'silent';
  const e = fleet.reporting.find((r) => r.ip === ip);
  return e && e.connectFailed > 0 ? 'failing' : 'ok';
}

function describe(ev) {
  const e = ev.evidence || {};
  const fails = () => (e.silence
    ? 'silent for ' + e.silence.silentSeconds + ' s'
    : e.connectFailed + ' of ' + e.samples + ' samples failed to connect (' + pct(e.failRatio) + ')');
  const end = (b) => (b && b.until ? iso(new Date(b.until).toISOString()) : '?');
  let text;
  switch (ev.type) {
    case 'ban': text = 'banned until ' + end(e.ban) + ': ' + fails(); break;
    case 'escalation': text = 'banned again (offense ' + (e.ban ? e.ban.offense : '?') + ') until ' + end(e.ban) + ': ' + fails(); break;
    case 'capped': text = 'not banned, cap in force: ' + fails(); break;
    case 'allowlisted': text = 'not banned, allowlisted: ' + fails(); break;
    case 'release': text = 'released early: probes healthy'; break;
    case 'expiry': text = 'ban ended'; break;
    case 'manual_ban': text = 'banned by an operator until ' + end(e.ban) + ': ' + (e.ban ? e.ban.reason : ''); break;
    case 'manual_unban': text = 'ban lifted by an operator'; break;
    case 'origin_outage': text = 'origin in outage: failing from ' + e.failingIps + ' of ' + e.relayingIps + ' IPs'; break;
    case 'origin_recovered': text = 'origin recovered'; break;
    case 'fleet_failure': text = 'fleet-wide failure: ' + e.failingIps + ' of ' + e.reportingIps + ' IPs failing, nobody banned'; break;
    case 'fleet_recovered': text = 'fleet-wide failure over'; break;
    case 'fleet_silence': text = 'fleet silence: ' + e.quietIps + ' of ' + e.recentIps + ' IPs quiet at once, nobody banned for silence'; break;
    case 'fleet_silence_recovered': text = 'fleet silence over'; break;
    case 'reporter_token_issued': text = 'reporter token issued'; break;
    case 'reporter_token_revoked': text = 'reporter tokens revoked'; break;
    default: text = ev.type;
  }
  return ev.enforced ? text : text + ' (dry run)';
}

function render(fleet, blocklist, events) {
  const lag = fleet.aggregationLagMinutes;
  const m = fleet.aggregatedMinute;
  $('minute').textContent = m ? m.slice(8, 10) + ':' + m.slice(10, 12) + ' UTC' : 'none yet';
  $('minute').title = m ? m.slice(0, 4) + '-' + m.slice(4, 6) + '-' + m.slice(6, 8) : '';
  $('lag').textContent = lag === null ? 'unknown' : lag + ' min';
  $('lag-card').classList.toggle('warn', lag === null || lag > 2);
  $('reporting').textContent = fleet.reporting.length;
  $('banned-count').textContent = blocklist.entries.length;
  $('banned-card').classList.toggle('alert', blocklist.entries.length > 0);
  $('silent-count').textContent = fleet.silent.length;
  $('silent-card').classList.toggle('warn', fleet.silent.length > 0);
  $('outage-count').textContent = fleet.originOutages.length;
  $('outage-card').classList.toggle('warn', fleet.originOutages.length > 0);

  const flags = $('flags');
  flags.replaceChildren();
  if (fleet.dryRun) flags.append(badge('DRY RUN: decisions recorded, no ban changes', 'warn'));
  if (fleet.fleetWideFailure) flags.append(badge('FLEET-WIDE FAILURE: nobody is banned while it lasts', 'alert'));
  if (fleet.fleetSilence) flags.append(badge('FLEET SILENCE: nobody is banned for silence while it lasts', 'alert'));
  if (fleet.capInForce) flags.append(badge('CAP IN FORCE: not banned ' + (fleet.capped.join(', ') || ''), 'alert'));
  if (lag !== null && lag > 2) flags.append(badge('AGGREGATION BEHIND by ' + lag + ' min', 'alert'));
  if (!flags.childElementCount) flags.append(badge('no flags', 'ok'));

  fillTable('bans', ['IP', 'Until', 'Kind', 'Ratio', 'Samples', 'Reason'],
    blocklist.entries.map((b) => [b.ip, untilText(b.until), b.manual ? 'manual' : 'automatic', pct(b.failRatio),
      b.samples === null ? '-' : b.samples, b.reason]),
    'No ban in force.');

  const ips = [...new Set([...fleet.reporting.map((e) => e.ip), ...fleet.banned.map((b) => b.ip), ...fleet.silent.map((s) => s.ip)])].sort();
  fillTable('fleet', ['IP', 'Verdict', 'Ratio', 'Samples', 'Connect failed', 'Ban until', 'Why'],
    ips.map((ip) => {
      const e = fleet.reporting.find((r) => r.ip === ip);
      const b = fleet.banned.find((x) => x.ip === ip);
      const s = fleet.silent.find((x) => x.ip === ip);
      const v = verdict(ip, fleet);
      const why = b ? b.reason : s ? 'silent since ' + iso(s.lastSeen) : v === 'capped' ? 'cap on automatic bans in force' : '';
      return [ip, badge(v, v === 'ok' ? 'ok' : v === 'banned' ? 'alert' : 'warn'), e ? pct(e.failRatio) : '-',
        e ? e.samples : '-', e ? e.connectFailed : '-', b ? untilText(b.until) : '-', why];
    }),
    'No IP has reported yet.');

  fillTable('outages', ['Origin'], fleet.originOutages.map((o) => [o]), 'No origin outage.');
  fillTable('events', ['At', 'Type', 'Subject', 'What'],
    events.events.map((ev) => [iso(ev.at), ev.type, ev.ip || ev.origin || '(fleet)', describe(ev)]),
    'No events in the last 24 h.');
}

async function api(path, token) {
  const response = await fetch(new URL(path, location.href), { headers: { authorization: 'Bearer ' + token }, cache: 'no-store' });
  if (response.status === 401 || response.status === 403) throw Object.assign(new Error('refused'), { refused: response.status });
  if (!response.ok) throw new Error('HTTP ' + response.status);
  return response.json();
}

function showLogin(message) {
  clearTimeout(timer);
  $('app').hidden = true;
  $('signout').hidden = true;
  $('updated').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  clearTimeout(timer);
  try {
    const [fleet, blocklist, events] = await Promise.all([
      api('./v1/fleet', token), api('./v1/blocklist', token), api('./v1/events?limit=50', token),
    ]);
    render(fleet, blocklist, events);
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    $('problem').hidden = true;
    $('updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + 'Z, every ' + REFRESH_MS / 1000 + ' s';
    document.body.dataset.state = 'loaded';
  } catch (error) {
    if (error.refused) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin('The status center refused that token (' + error.refused + '): use a reader or admin token.');
    }
    $('problem').hidden = false;
    $('problem').textContent = 'Cannot read the status center (' + error.message + '); showing the last data, retrying.';
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) return showLogin('Enter a token.');
  sessionStorage.setItem(TOKEN_KEY, token);
  refresh();
});
$('signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin('Signed out.');
});
refresh();
`;

const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5f6b7a; --line: #e2e6ec; --bg: #f5f7fa; --card: #fff;
  --ok: #1f7a3f; --ok-bg: #e3f4e8; --warn: #8a5a00; --warn-bg: #fff3d6; --alert: #a8201a; --alert-bg: #fde7e5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; }
header .muted { color: #b8c1cc; }
header button { margin-left: auto; }
main { padding: 20px 24px; max-width: 1400px; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-bottom: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card.warn { border-color: #f0c36d; background: var(--warn-bg); }
.card.alert { border-color: #f0a29c; background: var(--alert-bg); }
#flags { display: flex; flex-wrap: wrap; gap: 8px; margin: 4px 0 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
section h2 { margin: 0 0 8px; font-size: 15px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12px; border-bottom: 1px solid var(--line); padding: 6px 10px 6px 0; }
td { padding: 5px 10px 5px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
tr:last-child td { border-bottom: 0; }
td.empty { color: var(--muted); }
#events td:first-child, #bans td:nth-child(2), #fleet td:nth-child(6) { white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.warn { color: var(--warn); background: var(--warn-bg); }
.badge.alert { color: var(--alert); background: var(--alert-bg); }
.two { display: grid; grid-template-columns: 1fr 2fr; gap: 16px; }
.two section { margin-bottom: 0; }
#problem { background: var(--alert-bg); color: var(--alert); border: 1px solid #f0a29c; border-radius: 8px; padding: 8px 12px; margin-bottom: 12px; }
#login { max-width: 420px; margin: 80px auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 24px; }
#login h2 { margin-top: 0; }
#login input { width: 100%; padding: 8px; font: inherit; border: 1px solid #c5ccd6; border-radius: 6px; margin: 8px 0 12px; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid #c5ccd6; background: #fff; cursor: pointer; }
#login-error { color: var(--alert); min-height: 1.4em; }
@media (max-width: 900px) { .two { grid-template-columns: 1fr; } }
`;

const BODY = `
<header><h1>relaywatch</h1><span class="muted">status center dashboard</span><span class="muted" id="updated"></span>
  <button id="signout" type="button" hidden>Sign out</button></header>
<div id="login" hidden>
  <h2>Sign in</h2>
  <p class="muted">Paste a reader token. It stays in this tab only (sessionStorage) and is sent to this status center's API.</p>
  <form id="login-form"><label for="token">Reader token</label>
    <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
    <button type="submit">Show the fleet</button></form>
  <p id="login-error" role="alert"></p>
</div>
<main id="app" hidden>
  <div id="problem" role="alert" hidden></div>
  <div class="cards">
    <div class="card"><div class="label">Aggregated up to</div><div class="value" id="minute"></div></div>
    <div class="card" id="lag-card"><div class="label">Aggregation lag</div><div class="value" id="lag"></div></div>
    <div class="card"><div class="label">Reporting IPs</div><div class="value" id="reporting"></div></div>
    <div class="card" id="banned-card"><div class="label">Bans in force</div><div class="value" id="banned-count"></div></div>
    <div class="card" id="silent-card"><div class="label">Silent IPs</div><div class="value" id="silent-count"></div></div>
    <div class="card" id="outage-card"><div class="label">Origin outages</div><div class="value" id="outage-count"></div></div>
  </div>
  <div id="flags"></div>
  <section><h2>Bans in force</h2><table id="bans"></table></section>
  <section><h2>Fleet</h2><table id="fleet"></table></section>
  <div class="two">
    <section><h2>Origin outages</h2><table id="outages"></table></section>
    <section><h2>Recent events</h2><table id="events"></table></section>
  </div>
</main>`;

/** The page, and the Content-Security-Policy that admits its one inline script and nothing else. */
export const DASHBOARD = {
  html: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>relaywatch dashboard</title><link rel="icon" href="data:,"><meta name="referrer" content="no-referrer"><style>${STYLE}</style></head>
<body>${BODY}
<script>${SCRIPT}</script></body></html>
`,
  contentSecurityPolicy: [
    "default-src 'none'",
    `script-src 'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`,
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
};
