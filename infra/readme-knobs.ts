/**
 * `npm run docs:knobs`: rewrites the knob tables of README.md from the
 * programs' settings tables (see knob-tables.ts). `--check` writes nothing and
 * exits 1 when the README is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { withKnobTables } from './knob-tables.js';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const text = withKnobTables(readme);
if (process.argv.includes('--check')) {
  if (text !== readme) {
    process.stderr.write(
      'README.md knob tables are out of date: run npm run docs:knobs\n',
    );
    process.exitCode = 1;
  }
} else {
  writeFileSync(file, text);
  process.stdout.write('wrote the knob tables of README.md\n');
}
