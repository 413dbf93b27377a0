/**
 * `npm run openapi`: writes docs/openapi.json from the route table and the zod
 * schemas. `--check` writes nothing and exits 1 when the file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { buildOpenApi } from '../functions/openapi.js';

const file = new URL('../docs/openapi.json', import.meta.url);
const text = `${JSON.stringify(buildOpenApi(), null, 2)}\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(file, 'utf8') !== text) {
    process.stderr.write(
      'docs/openapi.json is out of date: run npm run openapi\n',
    );
    process.exitCode = 1;
  }
} else {
  writeFileSync(file, text);
  process.stdout.write('wrote docs/openapi.json\n');
}
