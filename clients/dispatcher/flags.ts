/**
 * Every flag of relaywatch-dispatch, named once: its variable, its value, its
 * default, its old name and its help line. The flag parsing (readSettings),
 * the help text's option sections (each old name noted under its flag) and
 * the README table are derived from this table.
 */
import type { Setting } from '../settings.js';
import { columnHelp, formerNote, STATUS_URL } from '../settings.js';
import { DISPATCH_DEFAULTS } from './dispatch.js';
import { BLOCKLIST_CLIENT_DEFAULTS } from './options.js';

/** A dispatcher flag: where its help line goes, and the library option it sets. */
type DispatchFlag = Setting & {
  section: keyof typeof SECTIONS;
  /** The createBlocklistClient option it sets (its errors name the flag). */
  option?: string;
};

/** The help text's option sections, in order. */
const SECTIONS = {
  job: 'Job:',
  agents: 'Agents (at least one; both forms can be combined):',
  statusCenter: 'Status center:',
  agent: 'Agent:',
  other: 'Other:',
} as const;

const seconds = (ms: number) => `${ms / 1000}s`;

export const FLAGS = {
  id: {
    section: 'job',
    flag: 'id',
    value: '<id>',
    help: "job id; the agent reports it as the heartbeat's process",
  },
  source: {
    section: 'job',
    flag: 'source',
    value: '<url>',
    help: 'stream the agent pulls',
  },
  target: {
    section: 'job',
    flag: 'target',
    value: '<url>',
    help: 'where the agent pushes it',
  },
  agent: {
    section: 'agents',
    flag: 'agent',
    value: '<url>=<ip>',
    multiple: true,
    help: 'agent base URL and the machine IP it reports heartbeats as, e.g.\n--agent http://127.0.0.1:7001=203.0.113.7; repeatable',
  },
  agentsFile: {
    section: 'agents',
    flag: 'agents-file',
    value: '<path>',
    help: 'JSON array of {"url": "<agent base URL>", "ip": "<machine IP>"}',
  },
  url: {
    section: 'statusCenter',
    flag: STATUS_URL.flag,
    env: STATUS_URL.env,
    value: '<url>',
    option: 'url',
    help: 'base URL of the status center',
  },
  readerToken: {
    section: 'statusCenter',
    flag: 'reader-token',
    env: 'RELAYWATCH_READER_TOKEN',
    value: '<token>',
    secret: true,
    option: 'token',
    help: 'token of the reader role',
  },
  timeout: {
    section: 'statusCenter',
    flag: 'timeout',
    value: '<duration>',
    formerly: { flag: 'timeout-ms', unit: 'ms' },
    fallback: seconds(BLOCKLIST_CLIENT_DEFAULTS.timeoutMs),
    option: 'timeoutMs',
    help: 'limit on the blocklist request (default {default})',
  },
  cacheFile: {
    section: 'statusCenter',
    flag: 'cache-file',
    value: '<path>',
    help: 'save the last good blocklist here and start from it next run: enables\nIf-None-Match and fail-static across runs (default: no cache, so an\nunreachable status center means fail-open)',
  },
  maxStale: {
    section: 'statusCenter',
    flag: 'max-stale',
    value: '<duration>',
    formerly: { flag: 'max-stale-ms', unit: 'ms' },
    fallback: seconds(BLOCKLIST_CLIENT_DEFAULTS.maxStaleMs),
    option: 'maxStaleMs',
    help: 'how old a cached list may be and still block (default {default})',
  },
  minHealthyShare: {
    section: 'statusCenter',
    flag: 'min-healthy-share',
    value: '<0-1>',
    fallback: String(BLOCKLIST_CLIENT_DEFAULTS.minHealthyShare),
    option: 'minHealthyShare',
    help: 'panic threshold: below this share of healthy agents, use all of them\n(default {default}; 0 turns panic off)',
  },
  agentToken: {
    section: 'agent',
    flag: 'agent-token',
    env: 'RELAYWATCH_AGENT_TOKEN',
    value: '<token>',
    secret: true,
    help: 'bearer token the agents accept',
  },
  postTimeout: {
    section: 'agent',
    flag: 'post-timeout',
    value: '<duration>',
    formerly: { flag: 'post-timeout-ms', unit: 'ms' },
    fallback: seconds(DISPATCH_DEFAULTS.attemptTimeoutMs),
    help: "limit on each agent's answer (default {default}, a little above the\nagent's confirm timeout)",
  },
  totalTimeout: {
    section: 'agent',
    flag: 'total-timeout',
    value: '<duration>',
    formerly: { flag: 'total-timeout-ms', unit: 'ms' },
    fallback: seconds(DISPATCH_DEFAULTS.totalTimeoutMs),
    help: 'limit on all attempts together (default {default}); a cancelling\nDELETE after a timeout may add up to 2s',
  },
  maxAttempts: {
    section: 'agent',
    flag: 'max-attempts',
    value: '<n>',
    fallback: String(DISPATCH_DEFAULTS.maxAttempts),
    help: 'most agents tried (default {default})',
  },
  dryRun: {
    section: 'other',
    flag: 'dry-run',
    boolean: true,
    help: 'choose and print, send nothing (no agent token needed)',
  },
  help: {
    section: 'other',
    flag: 'help',
    short: 'h',
    boolean: true,
    help: 'this text',
  },
  version: {
    section: 'other',
    flag: 'version',
    boolean: true,
    help: 'print the version',
  },
} as const satisfies Record<string, DispatchFlag>;

export type FlagKey = keyof typeof FLAGS;

/**
 * A flag and its variable, when it has one, as messages name a setting whose
 * value was not given under an old name.
 * @example flagAndVariable('url') // '--url (or RELAYWATCH_URL)'
 * @example flagAndVariable('timeout') // '--timeout'
 */
export function flagAndVariable(key: FlagKey): string {
  const flag: DispatchFlag = FLAGS[key];
  const name = `--${flag.flag}`;
  return flag.env === undefined ? name : `${name} (or ${flag.env})`;
}

/**
 * The help text's option sections, each with its flags' lines; a flag with an
 * old name gets the shared note on it (as in the agent's --help and the README)
 * on a line of its own.
 */
export function flagSections(): string {
  const flags: DispatchFlag[] = Object.values(FLAGS).map(
    (flag: DispatchFlag) => ({
      ...flag,
      help: [flag.help, ...formerNote(flag)].join('\n'),
    }),
  );
  return Object.entries(SECTIONS)
    .map(([section, title]) =>
      [
        title,
        ...columnHelp(
          flags.filter((flag) => flag.section === section),
          { flagWidth: 29, envColumn: 67 },
        ),
      ].join('\n'),
    )
    .join('\n\n');
}
