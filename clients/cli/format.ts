/**
 * What `relaywatch` prints for people: aligned tables and explanations in
 * words. Pure: the answers of the API in, text out, time as a parameter.
 */
import type {
  AuditEvent,
  BanView,
  Counts,
  FleetView,
  IpView,
} from '#contract/views';
import { formatDuration } from './duration.js';

/** The answers this module formats are the contract's views. */
export type {
  AuditEvent,
  BanView,
  Counts,
  FleetView,
  IpEvidence,
  IpView,
} from '#contract/views';

/** Columns padded to their widest cell; the last column is not padded. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

const percent = (ratio: number | null | undefined) =>
  ratio === null || ratio === undefined ? '-' : `${Math.round(ratio * 100)}%`;
const time = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');

/** "until 2026-12-01T07:31:15Z (in 59m 40s)". */
export function untilText(until: string, now: number): string {
  const left = Date.parse(until) - now;
  return `${time(until)} (${left > 0 ? `in ${formatDuration(left)}` : 'ended'})`;
}

/** The one word that sums up an IP in the fleet view. */
export function verdictOf(ip: string, fleet: FleetView): string {
  if (fleet.banned.some((ban) => ban.ip === ip)) return 'banned';
  if (fleet.capped.includes(ip)) return 'capped';
  if (fleet.silent.some((entry) => entry.ip === ip)) return 'silent';
  const evidence = fleet.reporting.find((entry) => entry.ip === ip);
  if (evidence && evidence.connectFailed > 0) return 'failing';
  return 'ok';
}

export function statusText(
  fleet: FleetView,
  blocklistSize: number,
  url: string,
): string {
  const lag = fleet.aggregationLagMinutes;
  const flags = [
    fleet.dryRun ? 'DRY RUN (decisions are recorded, no ban changes)' : '',
    fleet.fleetWideFailure
      ? 'FLEET-WIDE FAILURE (nobody is banned while it lasts)'
      : '',
    fleet.fleetSilence
      ? 'FLEET SILENCE (many IPs went quiet at once: nobody is banned for silence)'
      : '',
    fleet.capInForce
      ? `CAP IN FORCE (not banned: ${fleet.capped.join(', ') || 'none'})`
      : '',
  ].filter(Boolean);
  const rows: [string, string][] = [
    ['status center', url],
    ['last aggregated minute', fleet.aggregatedMinute ?? 'none yet'],
    [
      'aggregation lag',
      lag === null
        ? 'unknown (nothing aggregated yet)'
        : `${lag} min${lag > 2 ? '  (BEHIND: is the schedule running?)' : ''}`,
    ],
    ['reporting IPs', String(fleet.reporting.length)],
    ['bans in force', String(blocklistSize)],
    [
      'silent IPs',
      fleet.silent.length
        ? fleet.silent.map((entry) => entry.ip).join(', ')
        : 'none',
    ],
    [
      'origin outages',
      fleet.originOutages.length ? fleet.originOutages.join(', ') : 'none',
    ],
    ['flags', flags.length ? flags.join('; ') : 'none'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows
    .map(([label, value]) => `${`${label}:`.padEnd(width + 1)}  ${value}\n`)
    .join('');
}

export function fleetTable(fleet: FleetView, now: number): string {
  const ips = [
    ...new Set([
      ...fleet.reporting.map((e) => e.ip),
      ...fleet.banned.map((b) => b.ip),
      ...fleet.silent.map((s) => s.ip),
    ]),
  ].sort();
  if (ips.length === 0) return 'no IP has reported yet\n';
  const rows = ips.map((ip) => {
    const evidence = fleet.reporting.find((entry) => entry.ip === ip);
    const ban = fleet.banned.find((entry) => entry.ip === ip);
    const silent = fleet.silent.find((entry) => entry.ip === ip);
    const why = ban
      ? ban.reason
      : silent
        ? `silent since ${time(silent.lastSeen)}`
        : fleet.capped.includes(ip)
          ? 'cap on automatic bans in force'
          : '';
    return [
      ip,
      verdictOf(ip, fleet),
      evidence ? percent(evidence.failRatio) : '-',
      evidence ? String(evidence.samples) : '-',
      evidence ? String(evidence.connectFailed) : '-',
      ban ? untilText(ban.until, now) : '-',
      why,
    ];
  });
  return table(
    ['IP', 'VERDICT', 'RATIO', 'SAMPLES', 'CONN_FAIL', 'BANNED UNTIL', 'WHY'],
    rows,
  );
}

export function bansTable(entries: readonly BanView[], now: number): string {
  if (entries.length === 0) return 'no ban in force\n';
  return table(
    ['IP', 'UNTIL', 'KIND', 'RATIO', 'SAMPLES', 'REASON'],
    entries.map((ban) => [
      ban.ip,
      untilText(ban.until, now),
      ban.manual ? 'manual' : 'automatic',
      percent(ban.failRatio),
      ban.samples === null ? '-' : String(ban.samples),
      ban.reason,
    ]),
  );
}

function countsText(counts: Counts): string {
  const parts = [
    counts.ok ? `${counts.ok} ok` : '',
    counts.connect_failed ? `${counts.connect_failed} connect_failed` : '',
    counts.origin_error ? `${counts.origin_error} origin_error` : '',
    counts.error ? `${counts.error} error` : '',
  ].filter(Boolean);
  return parts.join(', ');
}

/** One event in words, e.g. "ban until …: 12 of 12 counted samples failed to connect (100%)". */
export function describeEvent(event: AuditEvent): string {
  const e = event.evidence ?? {};
  const failures = (evidence: Record<string, any>) =>
    evidence.silence
      ? `silent for ${evidence.silence.silentSeconds} s, last heard ${time(String(evidence.silence.lastSeen))} (limit ${evidence.silence.limitSeconds} s)`
      : `${evidence.connectFailed} of ${evidence.samples} counted samples failed to connect (${percent(evidence.failRatio)})`;
  let text: string;
  switch (event.type) {
    case 'ban':
    case 'escalation':
      text = `${event.type === 'ban' ? 'banned' : `banned again (offense ${e.ban?.offense ?? '?'} in 24 h)`} until ${time(String(e.ban?.until ? new Date(e.ban.until).toISOString() : '?'))}: ${failures(e)}`;
      break;
    case 'capped':
      text = `not banned although failing (${failures(e)}): the cap of ${e.cap?.cap} automatic bans for ${e.cap?.reportingIps} IPs was in force`;
      break;
    case 'allowlisted':
      text = `not banned although failing (${failures(e)}): on the allowlist`;
      break;
    case 'release':
      text = `released early: its probes were healthy for ${Array.isArray(e.healthyMinutes) ? e.healthyMinutes.length : '?'} minutes`;
      break;
    case 'expiry':
      text = 'ban ended at its end time';
      break;
    case 'manual_ban':
      text = `banned by an operator until ${e.ban?.until ? time(new Date(e.ban.until).toISOString()) : '?'}: ${e.ban?.reason ?? ''}`;
      break;
    case 'manual_unban':
      text = 'ban lifted by an operator';
      break;
    case 'origin_outage':
      text = `origin ${event.origin} in outage: failing from ${e.failingIps} of ${e.relayingIps} IPs; its failures count against no machine`;
      break;
    case 'origin_recovered':
      text = `origin ${event.origin} recovered`;
      break;
    case 'fleet_failure':
      text = `fleet-wide failure: ${e.failingIps} of ${e.reportingIps} reporting IPs failing; nobody is banned while it lasts`;
      break;
    case 'fleet_recovered':
      text = 'fleet-wide failure over';
      break;
    case 'fleet_silence':
      text = `fleet silence: ${e.quietIps} of ${e.recentIps} recently reporting IPs went quiet at once; nobody is banned for silence while it lasts`;
      break;
    case 'fleet_silence_recovered':
      text = 'fleet silence over';
      break;
    case 'reporter_token_issued':
      text = 'reporter token issued for this machine';
      break;
    case 'reporter_token_revoked':
      text = 'reporter tokens of this machine revoked';
      break;
    default:
      text = event.type;
  }
  return event.enforced ? text : `${text} (dry run: not enforced)`;
}

export function eventsTable(events: readonly AuditEvent[]): string {
  if (events.length === 0) return 'no events in that time\n';
  return table(
    ['AT', 'TYPE', 'SUBJECT', 'RULE', 'WHAT'],
    events.map((event) => [
      time(event.at),
      event.type,
      event.ip ?? event.origin ?? '(fleet)',
      event.rule ?? '-',
      describeEvent(event),
    ]),
  );
}

/** `relaywatch why <ip>`: its ban, the evidence, the recent minutes and events, in words. */
export function whyText(options: {
  ip: IpView;
  fleet: FleetView;
  events: readonly AuditEvent[];
  now: number;
}): string {
  const { ip: view, fleet, events, now } = options;
  const lines: string[] = [];
  const ban = view.ban;
  if (ban) {
    lines.push(
      `${view.ip} is BANNED until ${untilText(ban.until, now)}, since ${time(ban.since)}.`,
    );
    if (ban.manual) {
      lines.push(`  A manual ban by an operator: "${ban.reason}".`);
    } else {
      lines.push(
        `  An automatic ban (rule ${ban.rule ?? '?'}${ban.offense && ban.offense > 1 ? `, offense ${ban.offense} within 24 h, so it lasts longer` : ''}):`,
      );
      lines.push(`  ${ban.reason}.`);
      if (ban.samples !== null && ban.samples > 0 && ban.failRatio !== null) {
        lines.push(
          `  ${Math.round(ban.failRatio * ban.samples)} of its ${ban.samples} counted samples (ok + connect_failed on origins other machines reached) failed to connect.`,
        );
      }
      lines.push(
        ban.rule?.startsWith('silent')
          ? '  It is released as soon as the machine reports healthy again, or at its end.'
          : '  It is released early once every probe it reports over the release window (RELAYWATCH_RELEASE_MINUTES) is healthy, or at its end.',
      );
    }
  } else {
    lines.push(`${view.ip} is not banned.`);
  }
  const evidence = fleet.reporting.find((entry) => entry.ip === view.ip);
  if (evidence) {
    const excused = [
      evidence.excusedFailures
        ? `${evidence.excusedFailures} excused (origin in outage)`
        : '',
      evidence.uncorroboratedFailures
        ? `${evidence.uncorroboratedFailures} on origins no other IP reached (not counted)`
        : '',
    ].filter(Boolean);
    lines.push(
      `In the last aggregated minute (${fleet.aggregatedMinute}): ${evidence.connectFailed} of ${evidence.samples} counted samples failed to connect (${percent(evidence.failRatio)}) over ${evidence.origins} origin${evidence.origins === 1 ? '' : 's'}${excused.length ? `; ${excused.join('; ')}` : ''}.`,
    );
  } else {
    lines.push(
      `It did not report in the last aggregated minute (${fleet.aggregatedMinute ?? 'none yet'}).`,
    );
  }
  if (fleet.capped.includes(view.ip))
    lines.push(
      'It fails, but is not banned: the cap on automatic bans is in force.',
    );
  const silent = fleet.silent.find((entry) => entry.ip === view.ip);
  if (silent)
    lines.push(`It is silent: nothing heard since ${time(silent.lastSeen)}.`);
  if (fleet.fleetWideFailure)
    lines.push(
      'A fleet-wide failure is in force: nobody is banned automatically while it lasts.',
    );
  if (fleet.fleetSilence)
    lines.push(
      'A fleet silence is in force: nobody is banned for silence while it lasts.',
    );

  lines.push('', 'Recent minutes, newest first:');
  for (const minute of view.minutes) {
    const relay = countsText(minute.relay);
    const probe = countsText(minute.probe);
    const hhmm = minute.start.slice(11, 16);
    lines.push(
      relay || probe
        ? `  ${hhmm}  relays: ${relay || 'none'}; probes: ${probe || 'none'}; ${minute.origins} origin${minute.origins === 1 ? '' : 's'}`
        : `  ${hhmm}  nothing reported`,
    );
  }
  lines.push('', 'Events, newest first:');
  if (events.length === 0) lines.push('  none');
  for (const event of events)
    lines.push(`  ${time(event.at)}  ${describeEvent(event)}`);
  return `${lines.join('\n')}\n`;
}
