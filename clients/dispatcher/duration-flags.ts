/**
 * The dispatcher's duration flags, named like every other relaywatch duration
 * setting: `--timeout 5s`, `--post-timeout 15s` (units, or a plain number of
 * seconds). The old millisecond flags (`--timeout-ms 5000`) still work, with a
 * warning naming the new flag. Rewritten before parsing, so the rest of the
 * CLI sees milliseconds as before. Which flags these are comes from the
 * dispatcher's flag table (flags.ts).
 */
import type { Setting } from '../settings.js';
import { DURATION_FORMS, parseDurationMs } from '../settings.js';
import { FLAGS } from './flags.js';

/** New flag → the millisecond flag it replaces (the table's duration flags). */
const DURATION_FLAGS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.values(FLAGS as Record<string, Setting & { duration?: true }>)
    .filter((flag) => flag.duration && flag.formerly?.flag !== undefined)
    .map((flag) => [flag.flag, flag.formerly?.flag as string]),
);

type DurationFlagsResult =
  | { ok: true; argv: string[]; warnings: string[] }
  | { ok: false; message: string };

/** `--timeout 5s` → `--timeout-ms 5000`; `--timeout-ms 5000` kept, with a warning. */
export function rewriteDurationFlags(
  argv: readonly string[],
): DurationFlagsResult {
  const out: string[] = [];
  const warnings: string[] = [];
  const olds = new Map<string, string>(
    Object.entries(DURATION_FLAGS).map(([now, old]) => [old, now]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    // Everything after "--" is not a flag.
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const name = match?.[1] ?? '';
    if (name in DURATION_FLAGS) {
      const text = match?.[2] ?? argv[++i];
      if (text === undefined)
        return {
          ok: false,
          message: `--${name} needs a value: ${DURATION_FORMS}`,
        };
      const ms = parseDurationMs(text);
      if (ms === undefined)
        return {
          ok: false,
          message: `--${name} must be ${DURATION_FORMS} (got "${text}")`,
        };
      out.push(`--${DURATION_FLAGS[name]}`, String(ms));
      continue;
    }
    const now = olds.get(name);
    if (now !== undefined)
      warnings.push(
        `--${name} is deprecated; use --${now} (durations with units: 500ms, 10s, 2m)`,
      );
    out.push(arg);
  }
  return { ok: true, argv: out, warnings };
}
