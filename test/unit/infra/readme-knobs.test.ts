import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KNOBS } from '../../../functions/core/config.js';
import { withKnobTables } from '../../../infra/knob-tables.js';

describe('the README knob table', () => {
  const readme = readFileSync(
    new URL('../../../README.md', import.meta.url),
    'utf8',
  );

  it.each(Object.values(KNOBS).map((knob) => [knob.env, knob] as const))(
    'documents %s with its default',
    (env, knob) => {
      const row = readme
        .split('\n')
        .find((line) => line.startsWith(`| \`${env}\` |`));
      expect(row, `README.md has no row for ${env}`).toBeDefined();
      if (knob.fallback) expect(row).toContain(`\`${knob.fallback}\``);
    },
  );

  it('holds every knob table exactly as the settings tables write it (run npm run docs:knobs after changing a setting)', () => {
    expect(readme).toBe(withKnobTables(readme));
  });

  it('refuses to write a table whose markers are gone', () => {
    expect(() =>
      withKnobTables(readme.replace('<!-- knobs:agent:start -->\n', '')),
    ).toThrow(/knobs:agent:start/);
  });

  it('notices a row that drifted', () => {
    const drifted = readme.replace(
      '| `RELAYWATCH_FAIL_RATIO` | `0.5` |',
      '| `RELAYWATCH_FAIL_RATIO` | `0.6` |',
    );

    expect(drifted).not.toBe(readme);
    expect(withKnobTables(drifted)).toBe(readme);
  });
});
