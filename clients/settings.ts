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
 * An old name of a setting and the name that replaced it; `unit` when a plain
 * number under the old name counted that unit where the new one takes a
 * duration.
 */
export type Rename = { old: string; now: string; unit?: 'ms' };

/** What a rename's warning adds when the old name's plain numbers counted another unit. */
function unitChange(rename: Rename): string {
  return rename.unit === 'ms'
    ? ', which takes a duration such as 500ms or 10s (a plain number there is seconds, not milliseconds)'
    : '';
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
 * The environment with renamed variables read under their new names (the new
 * name wins when both are set), and one warning per old name in use.
 */
export function withRenamedEnv(
  env: Readonly<Record<string, string | undefined>>,
  renames: readonly Rename[],
): { env: Record<string, string | undefined>; warnings: string[] } {
  const result: Record<string, string | undefined> = { ...env };
  const warnings: string[] = [];
  for (const rename of renames) {
    const { old, now } = rename;
    if (env[old] === undefined) continue;
    warnings.push(
      env[now] === undefined
        ? `${old} is deprecated; set ${now} instead${unitChange(rename)}`
        : `${old} is deprecated and ignored: ${now} is set`,
    );
    result[now] ??= env[old];
  }
  return { env: result, warnings };
}

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

/** A rename of one of a setting's names, with the unit its old names took. */
function renameOf(old: string, now: string, setting: Setting): Rename {
  const unit = setting.formerly?.unit;
  return { old, now, ...(unit === undefined ? {} : { unit }) };
}

/** The environment variables a table renamed. */
function envRenamesOf(table: SettingsTable): Rename[] {
  return Object.values(table).flatMap((setting) =>
    setting.formerly?.env !== undefined && setting.env !== undefined
      ? [renameOf(setting.formerly.env, setting.env, setting)]
      : [],
  );
}

/** The flags a table renamed. */
function flagRenamesOf(table: SettingsTable): Rename[] {
  return Object.values(table).flatMap((setting) =>
    setting.formerly?.flag !== undefined
      ? [renameOf(setting.formerly.flag, setting.flag, setting)]
      : [],
  );
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
  /** The flag's text, else the variable's, else the default. */
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
  },
): SettingTexts<T> {
  const renamed = withRenamedEnv(input.env, envRenamesOf(table));
  const parsed = parseArgs({
    args: [...input.argv],
    options: parseArgsOptions(table),
    strict: true,
    allowPositionals: input.positionals ?? false,
  });
  const flags = { ...parsed.values } as SettingTexts<T>['flags'];
  const warnings = [...renamed.warnings];
  for (const rename of flagRenamesOf(table)) {
    const { old, now } = rename;
    if (flags[old] === undefined) continue;
    warnings.push(
      `--${old} is deprecated; use --${now} instead${unitChange(rename)}`,
    );
    flags[now] ??= flags[old];
    delete flags[old];
  }
  const settingOf = (key: keyof T) => table[key as string] as Setting;
  const text = (key: keyof T): string | undefined => {
    const setting = settingOf(key);
    const value =
      flags[setting.flag] ??
      (setting.env === undefined ? undefined : renamed.env[setting.env]) ??
      setting.fallback;
    return typeof value === 'string' ? value : undefined;
  };
  const given = (key: keyof T): Given | undefined => {
    const { flag, env, formerly } = settingOf(key);
    const old = (name: string): Given => ({
      name,
      former: true,
      ...(formerly?.unit === undefined ? {} : { unit: formerly.unit }),
    });
    if (parsed.values[flag] !== undefined)
      return { name: `--${flag}`, former: false };
    if (
      formerly?.flag !== undefined &&
      parsed.values[formerly.flag] !== undefined
    )
      return old(`--${formerly.flag}`);
    if (env === undefined) return undefined;
    if (input.env[env] !== undefined) return { name: env, former: false };
    if (formerly?.env !== undefined && input.env[formerly.env] !== undefined)
      return old(formerly.env);
    return undefined;
  };
  return {
    text,
    given,
    nameOf(key, name = settingName) {
      const from = given(key);
      return from?.former ? from.name : name(settingOf(key));
    },
    durationMs(key) {
      const value = text(key);
      if (value === undefined) return undefined;
      const setting = settingOf(key);
      const from = given(key);
      const got = setting.secret ? '' : ` (got "${value}")`;
      const name = from?.name ?? settingName(setting);
      if (from?.unit === 'ms') {
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
    warnings,
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
