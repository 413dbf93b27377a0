/**
 * relaywatch: the operator CLI of the status center. Kept apart from bin.ts
 * so tests can run it in process too; the bin only wires the process.
 */
import { parseArgs } from 'node:util';
import { MANUAL_BAN_LIMITS } from '#contract/blocklist';
import { canonicalIp } from '#contract/ip';
import packageJson from '../../package.json' with { type: 'json' };
import type { Setting } from '../settings.js';
import {
  columnHelp,
  parseArgsOptions,
  parseDurationMs,
  STATUS_URL,
  settingName,
  UsageError,
} from '../settings.js';
import type { Api, FetchLike } from './api.js';
import { CliError, createApi, EXIT } from './api.js';
import type { AuditEvent, BanView, FleetView, IpView } from './format.js';
import {
  bansTable,
  eventsTable,
  fleetTable,
  statusText,
  untilText,
  whyText,
} from './format.js';
import { banTargets, MAX_CIDR_ADDRESSES } from './targets.js';

export { EXIT } from './api.js';

export const VERSION: string = packageJson.version;

/** The API's bounds on a manual ban: checked here so nothing is sent when they are broken. */
const MAX_BAN_SECONDS = MANUAL_BAN_LIMITS.maxDurationSeconds;
const MAX_REASON_CHARS = MANUAL_BAN_LIMITS.maxReasonLength;
const WHY_EVENTS = 20;

/**
 * Every option, named once: parseArgs' options, the help's Options section
 * (the common ones), the environment and the README table derive from it.
 * Declared before HELP, which lists them.
 */
export const OPTIONS = {
  url: {
    common: true,
    flag: STATUS_URL.flag,
    env: STATUS_URL.env,
    value: '<url>',
    help: 'status center base URL',
  },
  token: {
    common: true,
    flag: 'token',
    env: 'RELAYWATCH_TOKEN',
    value: '<token>',
    secret: true,
    help: 'bearer token: reader to look, admin to change',
  },
  json: {
    common: true,
    flag: 'json',
    boolean: true,
    help: "print the API's JSON instead of tables (for scripts)",
  },
  timeout: {
    common: true,
    flag: 'timeout',
    value: '<duration>',
    fallback: '10s',
    help: 'limit on each request (default {default})',
  },
  help: {
    common: true,
    flag: 'help',
    short: 'h',
    boolean: true,
    help: 'this text',
  },
  version: {
    common: true,
    flag: 'version',
    boolean: true,
    help: 'print the version',
  },
  for: {
    flag: 'for',
    value: '<duration>',
    help: 'ban: how long the ban lasts',
  },
  reason: {
    flag: 'reason',
    value: '<text>',
    help: 'ban: why, shown with the ban',
  },
  ip: {
    flag: 'ip',
    value: '<ip>',
    help: 'events: only this IP; token: the machine',
  },
  since: {
    flag: 'since',
    value: '<duration|time>',
    help: 'events: from this long ago, or this ISO time',
  },
  limit: {
    flag: 'limit',
    value: '<n>',
    help: 'events: at most this many',
  },
} as const satisfies Record<string, Setting & { common?: true }>;

export const HELP = `relaywatch: operate the relaywatch status center.

Usage:
  relaywatch <command> [arguments] [options]

Commands:
  status                           aggregation lag, counts, outages and flags at a glance
  fleet                            every IP with its verdict, failure ratio, samples, ban and why
  bans                             bans in force with their ends and reasons
  ban <ip|cidr> --for <duration> [--reason <text>]
                                   ban an IP by hand (admin); a CIDR block of at most ${MAX_CIDR_ADDRESSES} addresses
                                   (IPv4 /24, IPv6 /120 or smaller) is banned address by address
  unban <ip>                       lift the ban in force (admin); exit ${EXIT.notFound} when there is none
  why <ip>                         its ban, its evidence, its recent minutes and events, in words
  events [--ip <ip>] [--since <duration|time>] [--limit <n>]
                                   the audit trail, newest first (default: the last 24 h, 100 events)
  token issue --ip <ip>            issue a reporter token that reports for that one machine only (admin);
                                   the token goes to stdout
  token revoke --ip <ip>           every reporter token issued to that IP until now stops working (admin)

Options:
${columnHelp(
  Object.values(OPTIONS).filter((option) => 'common' in option),
  { flagWidth: 23, envColumn: 67 },
).join('\n')}

Durations take a unit: 90s, 15m, 2h, 1d (or combined, 1h30m). A manual ban lasts 1s to 30d.
--since takes a duration back from now (2h) or an ISO time (2026-12-01T06:00:00Z).
Flags win over the environment; prefer the environment for the token (command lines are visible
to other users of the machine).

Exit codes:
  ${EXIT.ok}  done
  ${EXIT.internal}  unexpected internal error
  ${EXIT.usage}  usage error (command, flag, argument, setting); nothing was sent
  ${EXIT.notFound}  not found: no ban in force to lift, or a route this status center does not have
  ${EXIT.auth}  the token was refused: 401 (missing or unknown) or 403 (its role may not do this)
  ${EXIT.unavailable}  the status center could not be reached, did not answer in time, or failed (5xx)
  ${EXIT.refused}  the status center refused the request as invalid (400 and other 4xx)
`;

export type CliIo = {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  fetch?: FetchLike;
  now?: () => number;
};

type OptionName = keyof typeof OPTIONS;
type Values = {
  [K in OptionName]?: (typeof OPTIONS)[K] extends { boolean: true }
    ? boolean
    : string;
};

const COMMANDS = {
  status: { args: 0, options: [] },
  fleet: { args: 0, options: [] },
  bans: { args: 0, options: [] },
  ban: { args: 1, options: ['for', 'reason'] },
  unban: { args: 1, options: [] },
  why: { args: 1, options: [] },
  events: { args: 0, options: ['ip', 'since', 'limit'] },
  'token issue': { args: 0, options: ['ip'] },
  'token revoke': { args: 0, options: ['ip'] },
} as const satisfies Record<
  string,
  { args: number; options: readonly OptionName[] }
>;
type Command = keyof typeof COMMANDS;
const COMMON = (Object.keys(OPTIONS) as OptionName[]).filter(
  (name) => 'common' in OPTIONS[name],
);
type Parsed = { command: Command; args: string[]; values: Values };

function parse(argv: readonly string[]): Parsed | 'help' | 'version' {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: parseArgsOptions(OPTIONS),
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (error) {
    throw new UsageError(
      (error as Error).message.replace(
        /\. To specify a positional argument.*$/s,
        '',
      ),
    );
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (values.version) return 'version';
  const [first, ...rest] = positionals;
  if (first === undefined)
    throw new UsageError(
      'a command is required: status, fleet, bans, ban, unban, why, events, token issue, token revoke',
    );
  let command: string = first;
  let args = rest;
  if (first === 'token') {
    if (rest[0] !== 'issue' && rest[0] !== 'revoke')
      throw new UsageError(
        '"token" takes a subcommand: token issue --ip <ip>, token revoke --ip <ip>',
      );
    command = `token ${rest[0]}`;
    args = rest.slice(1);
  }
  if (!(command in COMMANDS))
    throw new UsageError(`unknown command "${command}"`);
  const spec = COMMANDS[command as Command];
  if (args.length !== spec.args) {
    throw new UsageError(
      spec.args === 0
        ? `"${command}" takes no argument, got "${args.join(' ')}"`
        : `"${command}" takes one argument`,
    );
  }
  const allowed: readonly OptionName[] = [...COMMON, ...spec.options];
  for (const name of Object.keys(values) as OptionName[]) {
    if (!allowed.includes(name))
      throw new UsageError(`--${name} does not apply to "${command}"`);
  }
  return { command: command as Command, args, values };
}

function ipArgument(text: string | undefined, what: string): string {
  const ip = text === undefined ? undefined : canonicalIp(text);
  if (!ip)
    throw new UsageError(
      `${what} must be an IPv4 or IPv6 address${text === undefined ? '' : `, not "${text}"`}`,
    );
  return ip;
}

/** Whole seconds in an operator's duration, which needs its units: 90s, 15m, 2h, 1d, 1h30m. */
function durationSeconds(text: string): number | undefined {
  const ms = parseDurationMs(text, { wholeUnits: true });
  return ms === undefined ? undefined : ms / 1000;
}

function durationOption(text: string, flag: string): number {
  const seconds = durationSeconds(text);
  if (seconds === undefined)
    throw new UsageError(
      `${flag} must be a duration with a unit, like 90s, 15m, 2h or 1d; got "${text}"`,
    );
  return seconds;
}

function connection(values: Values, env: CliIo['env']) {
  const url = values.url ?? env[OPTIONS.url.env];
  const token = values.token ?? env[OPTIONS.token.env];
  if (!url)
    throw new UsageError(
      `the status center URL is required: ${settingName(OPTIONS.url)}`,
    );
  if (!/^https?:\/\/[^\s/]+/.test(url) || !URL.canParse(url))
    throw new UsageError(
      `${settingName(OPTIONS.url)} must be an http(s) URL, not "${url}"`,
    );
  if (!token)
    throw new UsageError(
      `a token is required: ${settingName(OPTIONS.token)} (reader to look, admin to change)`,
    );
  const timeoutSeconds = durationOption(
    values.timeout ?? OPTIONS.timeout.fallback,
    '--timeout',
  );
  if (timeoutSeconds < 1) throw new UsageError('--timeout must be at least 1s');
  return { url, token, timeoutMs: timeoutSeconds * 1000 };
}

const printJson = (io: CliIo, value: unknown) =>
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);

async function run(
  parsed: Parsed,
  io: CliIo,
  api: Api,
  now: () => number,
  url: string,
): Promise<number> {
  const { command, args, values } = parsed;
  switch (command) {
    case 'status': {
      const [fleet, blocklist] = await Promise.all([
        api('GET', '/v1/fleet'),
        api('GET', '/v1/blocklist'),
      ]);
      if (values.json)
        printJson(io, { fleet: fleet.body, blocklist: blocklist.body });
      else
        io.stdout(
          statusText(
            fleet.body as FleetView,
            blocklist.body.entries.length,
            url,
          ),
        );
      return EXIT.ok;
    }
    case 'fleet': {
      const fleet = await api('GET', '/v1/fleet');
      if (values.json) printJson(io, fleet.body);
      else io.stdout(fleetTable(fleet.body as FleetView, now()));
      return EXIT.ok;
    }
    case 'bans': {
      const blocklist = await api('GET', '/v1/blocklist');
      if (values.json) printJson(io, blocklist.body);
      else io.stdout(bansTable(blocklist.body.entries as BanView[], now()));
      return EXIT.ok;
    }
    case 'ban':
      return ban(args[0] ?? '', values, io, api, now);
    case 'unban': {
      const ip = ipArgument(args[0], 'unban <ip>');
      // Only the ban route's own not_found means "no ban"; a 404 without it is a missing route.
      const answer = await api('DELETE', `/v1/bans/${encodeURIComponent(ip)}`, {
        allow: ['not_found'],
      });
      if (answer.refusal) {
        io.stderr(`relaywatch: no ban in force for ${ip}\n`);
        return EXIT.notFound;
      }
      if (values.json) printJson(io, { ip, lifted: true });
      else io.stdout(`lifted the ban on ${ip}\n`);
      return EXIT.ok;
    }
    case 'why': {
      const ip = ipArgument(args[0], 'why <ip>');
      const [view, fleet, events] = await Promise.all([
        api('GET', `/v1/ips/${encodeURIComponent(ip)}`),
        api('GET', '/v1/fleet'),
        api(
          'GET',
          `/v1/events?ip=${encodeURIComponent(ip)}&limit=${WHY_EVENTS}`,
        ),
      ]);
      const evidence =
        (fleet.body as FleetView).reporting.find((entry) => entry.ip === ip) ??
        null;
      if (values.json)
        printJson(io, { ...view.body, evidence, events: events.body.events });
      else
        io.stdout(
          whyText({
            ip: view.body as IpView,
            fleet: fleet.body as FleetView,
            events: events.body.events as AuditEvent[],
            now: now(),
          }),
        );
      return EXIT.ok;
    }
    case 'events': {
      const query = new URLSearchParams();
      if (values.ip !== undefined)
        query.set('ip', ipArgument(values.ip, '--ip'));
      if (values.since !== undefined) {
        const back = durationSeconds(values.since);
        const at =
          back !== undefined ? now() - back * 1000 : Date.parse(values.since);
        if (Number.isNaN(at))
          throw new UsageError(
            `--since must be a duration back from now (2h) or an ISO time, not "${values.since}"`,
          );
        query.set('since', new Date(at).toISOString());
      }
      if (values.limit !== undefined) {
        if (
          !/^\d+$/.test(values.limit) ||
          Number(values.limit) < 1 ||
          Number(values.limit) > 1000
        ) {
          throw new UsageError(
            `--limit must be a whole number from 1 to 1000, not "${values.limit}"`,
          );
        }
        query.set('limit', values.limit);
      }
      const answer = await api(
        'GET',
        `/v1/events${query.size ? `?${query}` : ''}`,
      );
      if (values.json) printJson(io, answer.body);
      else io.stdout(eventsTable(answer.body.events as AuditEvent[]));
      return EXIT.ok;
    }
    case 'token issue': {
      const ip = ipArgument(values.ip, '--ip');
      let answer: Awaited<ReturnType<Api>>;
      try {
        answer = await api('POST', '/v1/reporter-tokens', { body: { ip } });
      } catch (error) {
        if (error instanceof CliError && error.exitCode === EXIT.notFound) {
          throw new CliError(
            EXIT.notFound,
            `this status center has no POST /v1/reporter-tokens (an older version?): ${error.message}`,
          );
        }
        throw error;
      }
      if (values.json) printJson(io, answer.body);
      else {
        io.stdout(`${answer.body.token}\n`);
        io.stderr(
          `reporter token for ${answer.body.ip}: set it as RELAYWATCH_REPORTER_TOKEN on that machine only\n`,
        );
      }
      return EXIT.ok;
    }
    case 'token revoke': {
      const ip = ipArgument(values.ip, '--ip');
      await api('DELETE', `/v1/reporter-tokens/${encodeURIComponent(ip)}`);
      if (values.json) printJson(io, { ip, revoked: true });
      else
        io.stdout(
          `revoked every reporter token issued to ${ip} until now (in force within the status center's credential cache age)\n`,
        );
      return EXIT.ok;
    }
  }
}

async function ban(
  target: string,
  values: Values,
  io: CliIo,
  api: Api,
  now: () => number,
): Promise<number> {
  const targets = banTargets(target);
  if (!targets.ok) throw new UsageError(targets.error);
  if (values.for === undefined)
    throw new UsageError('ban needs --for <duration>, like 15m or 2h');
  const durationSeconds = durationOption(values.for, '--for');
  if (durationSeconds < 1 || durationSeconds > MAX_BAN_SECONDS)
    throw new UsageError(`--for must be from 1s to 30d (${MAX_BAN_SECONDS}s)`);
  if (
    values.reason !== undefined &&
    (values.reason.length < 1 || values.reason.length > MAX_REASON_CHARS)
  ) {
    throw new UsageError(
      `--reason must be 1 to ${MAX_REASON_CHARS} characters`,
    );
  }
  const body = {
    durationSeconds,
    ...(values.reason !== undefined ? { reason: values.reason } : {}),
  };
  if (targets.cidr)
    io.stderr(
      `relaywatch: the API bans single IPs; banning the ${targets.ips.length} addresses of ${target} one by one\n`,
    );
  const placed: { ip: string; replaced: boolean; entry: BanView }[] = [];
  for (const ip of targets.ips) {
    try {
      const answer = await api('PUT', `/v1/bans/${encodeURIComponent(ip)}`, {
        body,
      });
      placed.push({
        ip,
        replaced: answer.status === 200,
        entry: answer.body as BanView,
      });
    } catch (error) {
      if (error instanceof CliError && placed.length > 0) {
        throw new CliError(
          error.exitCode,
          `${error.message}; ${placed.length} of ${targets.ips.length} bans were placed before it (up to ${placed.at(-1)?.ip})`,
        );
      }
      throw error;
    }
  }
  if (values.json)
    printJson(
      io,
      targets.cidr ? { bans: placed.map((p) => p.entry) } : placed[0]?.entry,
    );
  else {
    for (const { ip, replaced, entry } of placed) {
      io.stdout(
        `${replaced ? 'replaced the ban on' : 'banned'} ${ip} until ${untilText(entry.until, now())}: ${entry.reason}\n`,
      );
    }
  }
  return EXIT.ok;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(io: CliIo): Promise<number> {
  try {
    const parsed = parse(io.argv);
    if (parsed === 'help') {
      io.stdout(HELP);
      return EXIT.ok;
    }
    if (parsed === 'version') {
      io.stdout(`relaywatch ${VERSION}\n`);
      return EXIT.ok;
    }
    const settings = connection(parsed.values, io.env);
    const api = createApi({
      ...settings,
      ...(io.fetch ? { fetch: io.fetch } : {}),
    });
    return await run(
      parsed,
      io,
      api,
      io.now ?? Date.now,
      settings.url.replace(/\/+$/, ''),
    );
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(
        `relaywatch: ${error.message}\nRun relaywatch --help for usage.\n`,
      );
      return EXIT.usage;
    }
    if (error instanceof CliError) {
      io.stderr(`relaywatch: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(
      `relaywatch: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return EXIT.internal;
  }
}
