import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KNOBS } from '../../functions/core/config.js';

describe('the README knob table', () => {
  const readme = readFileSync(
    new URL('../../README.md', import.meta.url),
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
});
