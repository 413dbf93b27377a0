/**
 * What every relaywatch client program reads the same way: durations with
 * units, settings that were renamed (the old name still works, with a warning
 * naming the new one), and the machinery that turns a program's one table of
 * settings into its flag parsing, environment reading, --help and README rows.
 */

import { parseArgs } from 'node:util';

const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
} as const;
const WITH_UNITS = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const WHOLE_UNITS = /^(?:\d+[smhd])+$/;
const PLAIN = /^\d+(?:\.\d+)?$/;

/**
 * Milliseconds in a duration: `500ms`, `10s`, `1.5s`, `2m`, `1h30m`, `1d`; a
 * plain number counts as seconds (as every relaywatch duration setting took
 * before units). Undefined when the text is neither.
 *
 * With `wholeUnits`, only whole numbers each with a unit of s, m, h or d
 * (`90s`, `15m`, `1h30m`, `2d`), as the operator CLI reads them: there a bare
 * number is refused rather than guessed, and the result is whole seconds.
 * @example parseDurationMs('500ms') // 500
 * @example parseDurationMs('60') // 60000
 * @example parseDurationMs('60', { wholeUnits: true }) // undefined
 */
export function parseDurationMs(
  text: string,
  options: { wholeUnits?: boolean } = {},
): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (options.wholeUnits) {
    if (!WHOLE_UNITS.test(trimmed)) return undefined;
  } else {
    if (PLAIN.test(trimmed)) return Math.round(Number(trimmed) * 1000);
    if (!WITH_UNITS.test(trimmed)) return undefined;
  }
  let ms = 0;
  for (const [, amount, unit] of trimmed.matchAll(
    /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g,
  )) {
    ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? rounded : undefined;
}

/** How a duration may be written, for help texts and error messages. */
export const DURATION_FORMS =
  'a duration such as 500ms, 10s, 2m or 1h (a plain number is seconds)';

/** How a port may be written, for help texts and error messages. */
const PORT_FORMS = 'a port number from 0 to 65535';

/**
 * A TCP port to listen on: a whole number from 0 (any free port) to 65535.
 * Undefined when the text is not one.
 * @example parsePort('8080') // 8080
 * @example parsePort('http') // undefined
 */
export function parsePort(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,5}$/.test(trimmed)) return undefined;
  const port = Number(trimmed);
  return port <= 65_535 ? port : undefined;
}

/**
 * The status center's base URL: one setting under one name in every program
 * (the agent, the dispatcher, the operator CLI). Only the agent ever had the
 * old name, so only its table spreads `formerly`.
 */
export const STATUS_URL = {
  flag: 'url',
  env: 'RELAYWATCH_URL',
  formerly: { env: 'RELAYWATCH_STATUS_URL', flag: 'status-url' },
} as const;

/**
 * One setting of a client program, named once. Each program keeps one table of
 * these; its flag parsing, environment reading, renamed names, --help text and
 * README table are all derived from that table.
 */
export type Setting = {
  /** The flag, without its dashes. */
  flag: string;
  /** The environment variable read when the flag is not given. */
  env?: string;
  /** One-letter alias of the flag. */
  short?: string;
  /** The default as text, read like a given value; absent: required, detected or none. */
  fallback?: string;
  /**
   * What it means, for --help and the README. A line break is where --help
   * wraps (the README joins the lines); `{default}` stands for the default.
   */
  help: string;
  /** How its value is shown in --help and the README, e.g. `<url>`; absent for a switch. */
  value?: string;
  /** A switch: takes no value, true when given. */
  boolean?: true;
  /** May be given more than once. */
  multiple?: true;
  /** Never echoed back in an error message. */
  secret?: true;
  /** The names it had before: still read, with a warning naming the new one. */
  formerly?: {
    env?: string;
    flag?: string;
    /**
     * The old names took a plain number of this unit where the setting now
     * takes a duration: their value is read in it (durationMs).
     */
    unit?: 'ms';
  };
};

/** A program's settings by key. */
export type SettingsTable = Readonly<Record<string, Setting>>;

/** `--flag` and the variable, as error messages name a setting. */
export function settingName(setting: Setting): string {
  return setting.env === undefined
    ? `--${setting.flag}`
    : `${setting.env} (--${setting.flag})`;
}

/** The default as --help and the README show it. */
export function defaultText(setting: Setting): string | undefined {
  if (setting.fallback === undefined) return undefined;
  return setting.fallback === '' ? 'none' : setting.fallback;
}

/** The help text with `{default}` filled in; `lines` false joins the wrapped lines. */
function helpOf(setting: Setting, lines = true): string {
  const text = setting.help.replaceAll(
    '{default}',
    defaultText(setting) ?? 'none',
  );
  return lines ? text : text.replace(/\s*\n\s*/g, ' ');
}

type ParseArgsOption = {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
};

/** The options node:util parseArgs takes for a table, old flag names included. */
export function parseArgsOptions(
  table: SettingsTable,
): Record<string, ParseArgsOption> {
  const options: Record<string, ParseArgsOption> = {};
  for (const setting of Object.values(table)) {
    const option: ParseArgsOption = {
      type: setting.boolean ? 'boolean' : 'string',
      ...(setting.multiple ? { multiple: true } : {}),
    };
    options[setting.flag] = {
      ...option,
      ...(setting.short === undefined ? {} : { short: setting.short }),
    };
    if (setting.formerly?.flag !== undefined)
      options[setting.formerly.flag] = option;
  }
  return options;
}

/** The flag or variable a setting's text was given under, as the user wrote it. */
export type Given = {
  /** `--flag` or the variable; the old name when the text came under one. */
  name: string;
  /** The name is an old one. */
  former: boolean;
  /** What a plain number under that old name counts (its `formerly.unit`). */
  unit?: 'ms';
};

/** What the command line and the environment say, before validation. */
export type SettingTexts<T extends SettingsTable> = {
  /**
   * The flag's text, else the variable's, else the default (a new name over
   * its old one), settled with given() when the settings are read.
   */
  text(key: keyof T): string | undefined;
  /** Where the text came from; undefined when it is the default, or none. */
  given(key: keyof T): Given | undefined;
  /**
   * How an error names the setting: the old flag or variable when its text
   * came under one (the name the user wrote), else `name(setting)`
   * (settingName unless told).
   */
  nameOf(key: keyof T, name?: (setting: Setting) => string): string;
  /**
   * A duration setting in milliseconds: its text read as a duration, or, under
   * an old name that took milliseconds, as a plain number of them, kept exact
   * so that the caller can refuse a fraction. Undefined when there is no text;
   * a UsageError naming the flag or variable given when the text is neither.
   */
  durationMs(key: keyof T): number | undefined;
  /** The flags as given (old names read under the new ones). */
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** One per old name in use. */
  warnings: string[];
};

/**
 * One name a setting may be given under: where it is looked up, how it is
 * reported, and, for an old name, the name that replaced it.
 */
type Spelling = {
  /** Looked up among the flags, else among the variables. */
  flag: boolean;
  /** The flag without its dashes, or the variable. */
  key: string;
  given: Given;
  /** For an old name: the new name of the same kind. */
  now?: Spelling;
};

/**
 * The names a setting may be given under, in the order they win: its flag, its
 * old flag, its variable, its old variable. readSettings takes a setting's
 * text, the name it came under and the warnings from this one list.
 */
function spellingsOf(setting: Setting): Spelling[] {
  const { flag, env, formerly } = setting;
  const unit = formerly?.unit === undefined ? {} : { unit: formerly.unit };
  const spellings: Spelling[] = [];
  const add = (isFlag: boolean, now: string, old: string | undefined) => {
    const name = (key: string) => (isFlag ? `--${key}` : key);
    const current: Spelling = {
      flag: isFlag,
      key: now,
      given: { name: name(now), former: false },
    };
    spellings.push(current);
    if (old !== undefined)
      spellings.push({
        flag: isFlag,
        key: old,
        given: { name: name(old), former: true, ...unit },
        now: current,
      });
  };
  add(true, flag, formerly?.flag);
  if (env !== undefined) add(false, env, formerly?.env);
  return spellings;
}

/**
 * The warning for an old name in use, naming the one that replaced it;
 * `nowGiven` when that one is given too.
 */
function deprecation(old: Spelling, now: Spelling, nowGiven: boolean): string {
  const unit =
    old.given.unit === 'ms'
      ? ', which takes a duration such as 500ms or 10s (a plain number there is seconds, not milliseconds)'
      : '';
  if (old.flag)
    return `${old.given.name} is deprecated; use ${now.given.name} instead${unit}`;
  return nowGiven
    ? `${old.key} is deprecated and ignored: ${now.key} is set`
    : `${old.key} is deprecated; set ${now.key} instead${unit}`;
}

/** What readSettings settled for one setting: its text and where it came from, chosen together. */
type Source = { text: string | undefined; given: Given | undefined };

/**
 * Reads a table's settings: flags over environment over defaults, old names
 * read under the new ones with a warning. Throws parseArgs' own error on an
 * unknown flag or a missing value (each program words that in its own way).
 */
export function readSettings<T extends SettingsTable>(
  table: T,
  input: {
    argv: readonly string[];
    env: Readonly<Record<string, string | undefined>>;
    positionals?: boolean;
    /**
     * An empty flag or variable (`PORT=`, `--data-dir=`) stands for the
     * default: it is no value, and given() says nothing of it. A flag still
     * wins over its variable, so an empty flag unsets the variable too.
     */
    emptyIsDefault?: boolean;
  },
): SettingTexts<T> {
  const parsed = parseArgs({
    args: [...input.argv],
    options: parseArgsOptions(table),
    strict: true,
    allowPositionals: input.positionals ?? false,
  });
  const flags: SettingTexts<T>['flags'] = {};
  const onCommandLine = parsed.values as typeof flags;
  const valueUnder = (spelling: Spelling) =>
    spelling.flag ? onCommandLine[spelling.key] : input.env[spelling.key];
  const sources: Record<string, Source> = {};
  const envWarnings: string[] = [];
  const flagWarnings: string[] = [];
  for (const [key, setting] of Object.entries(table)) {
    const spellings = spellingsOf(setting);
    for (const spelling of spellings) {
      if (spelling.now === undefined || valueUnder(spelling) === undefined)
        continue;
      (spelling.flag ? flagWarnings : envWarnings).push(
        deprecation(
          spelling,
          spelling.now,
          valueUnder(spelling.now) !== undefined,
        ),
      );
    }
    const chosen = spellings.find(
      (spelling) => valueUnder(spelling) !== undefined,
    );
    const value = chosen === undefined ? undefined : valueUnder(chosen);
    if (chosen?.flag) flags[setting.flag] = value;
    sources[key] =
      chosen === undefined || (input.emptyIsDefault && value === '')
        ? { text: setting.fallback, given: undefined }
        : {
            text: typeof value === 'string' ? value : undefined,
            given: chosen.given,
          };
  }
  const settingOf = (key: keyof T) => table[key as string] as Setting;
  const text = (key: keyof T) => sources[key as string]?.text;
  const from = (key: keyof T) => sources[key as string]?.given;
  return {
    text,
    given: from,
    nameOf(key, name = settingName) {
      const given = from(key);
      return given?.former ? given.name : name(settingOf(key));
    },
    durationMs(key) {
      const value = text(key);
      if (value === undefined) return undefined;
      const setting = settingOf(key);
      const given = from(key);
      const got = setting.secret ? '' : ` (got "${value}")`;
      const name = given?.name ?? settingName(setting);
      if (given?.unit === 'ms') {
        const ms = Number(value);
        if (value.trim() !== '' && Number.isFinite(ms)) return ms;
        throw new UsageError(`${name} must be a number of milliseconds${got}`);
      }
      const ms = parseDurationMs(value);
      if (ms !== undefined) return ms;
      throw new UsageError(`${name} must be ${DURATION_FORMS}${got}`);
    },
    flags,
    positionals: parsed.positionals,
    warnings: [...envWarnings, ...flagWarnings],
  };
}

/**
 * Help rows in two columns: the flag with its value, then the meaning
 * (wrapped where the table says) and, on the first line, the variable.
 * @example columnHelp([{ flag: 'url', value: '<url>', env: 'RELAYWATCH_URL', help: 'base URL' }], { envColumn: 40 })
 */
export function columnHelp(
  settings: readonly Setting[],
  layout: { flagWidth: number; envColumn: number },
): string[] {
  const lines: string[] = [];
  for (const setting of settings) {
    const flag = [
      setting.short === undefined ? '' : `-${setting.short}, `,
      `--${setting.flag}`,
      setting.value === undefined ? '' : ` ${setting.value}`,
    ].join('');
    const [first = '', ...rest] = helpOf(setting).split('\n');
    const head = `  ${flag}`.padEnd(layout.flagWidth) + first;
    lines.push(
      setting.env === undefined
        ? head
        : `${head.padEnd(layout.envColumn - 2)}  env ${setting.env}`,
      ...rest.map((line) => `${' '.repeat(layout.flagWidth)}${line}`),
    );
  }
  return lines;
}

/**
 * A mistake in a program's flags, variables or arguments: each program prints
 * it with a pointer to its --help and exits 2, having sent nothing.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A port setting's number; a UsageError naming the setting (its variable and
 * flag) when its text is not a port.
 */
export function portSetting(
  setting: Setting,
  text: string | undefined,
): number {
  const port = text === undefined ? undefined : parsePort(text);
  if (port === undefined)
    throw new UsageError(
      `${settingName(setting)} must be ${PORT_FORMS}, not "${text ?? ''}"`,
    );
  return port;
}

/** A Markdown table cell: pipes escaped, code in backticks. */
const cell = (text: string) => text.replaceAll('|', '\\|');
const code = (text: string) => `\`${text}\``;

/**
 * "(formerly …, still read with a warning)" for the old names the help text
 * does not already mention; none when it mentions them all. `shown` writes
 * each name: as it is for --help, in backticks for the README.
 * @example formerNote({ flag: 'url', formerly: { flag: 'status-url' }, help: 'base URL' }) // ['(formerly --status-url, still read with a warning)']
 */
export function formerNote(
  setting: Setting,
  shown: (name: string) => string = (name) => name,
): string[] {
  const names = [
    setting.formerly?.flag === undefined ? [] : [`--${setting.formerly.flag}`],
    setting.formerly?.env === undefined ? [] : [setting.formerly.env],
  ]
    .flat()
    .filter((name) => !setting.help.includes(name));
  const unit = setting.formerly?.unit === 'ms' ? ', in milliseconds' : '';
  return names.length === 0
    ? []
    : [
        `(formerly ${names.map(shown).join(', ')}${unit}, still read with a warning)`,
      ];
}

/**
 * The README table of a program's settings: flag, variable, default and
 * meaning, one row per setting in table order.
 */
export function settingsMarkdown(settings: readonly Setting[]): string {
  const rows = settings.map((setting) => {
    const flag = [
      `--${setting.flag}`,
      setting.value === undefined ? '' : ` ${setting.value}`,
    ].join('');
    const fallback = defaultText(setting);
    const meaning = [helpOf(setting, false), ...formerNote(setting, code)].join(
      ' ',
    );
    return `| ${cell(code(flag))} | ${setting.env === undefined ? '' : code(setting.env)} | ${fallback === undefined ? '' : code(fallback)} | ${cell(meaning)} |`;
  });
  return [
    '| flag | variable | default | meaning |',
    '|---|---|---|---|',
    ...rows,
  ]
    .join('\n')
    .concat('\n');
}
