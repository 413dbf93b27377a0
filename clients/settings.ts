/**
 * What every relaywatch program reads the same way: durations with units, and
 * settings that were renamed (the old name still works, with a warning naming
 * the new one).
 */

const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
} as const;
const WITH_UNITS = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PLAIN = /^\d+(?:\.\d+)?$/;

/**
 * Milliseconds in a duration: `500ms`, `10s`, `1.5s`, `2m`, `1h30m`, `1d`; a
 * plain number counts as seconds (as every relaywatch duration setting took
 * before units). Undefined when the text is neither.
 * @example parseDurationMs('500ms') // 500
 * @example parseDurationMs('60') // 60000
 */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (PLAIN.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  if (!WITH_UNITS.test(trimmed)) return undefined;
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

/** An old name of a setting and the name that replaced it. */
export type Rename = { old: string; now: string };

/** The environment variables that were renamed: the old names still work, with a warning. */
export const RENAMED_ENV: readonly Rename[] = [
  { old: 'RELAYWATCH_STATUS_URL', now: 'RELAYWATCH_URL' },
];

/**
 * The environment with renamed variables read under their new names (the new
 * name wins when both are set), and one warning per old name in use.
 */
export function withRenamedEnv(
  env: Readonly<Record<string, string | undefined>>,
  renames: readonly Rename[] = RENAMED_ENV,
): { env: Record<string, string | undefined>; warnings: string[] } {
  const result: Record<string, string | undefined> = { ...env };
  const warnings: string[] = [];
  for (const { old, now } of renames) {
    if (env[old] === undefined) continue;
    warnings.push(
      env[now] === undefined
        ? `${old} is deprecated; set ${now} instead`
        : `${old} is deprecated and ignored: ${now} is set`,
    );
    result[now] ??= env[old];
  }
  return { env: result, warnings };
}
