import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

/**
 * Lints one file written at `path` in a scratch tree that has the project's
 * biome.json, so the rules are the ones CI applies and the source tree is
 * never touched.
 */
function lint(path: string, source: string) {
  const dir = mkdtempSync(join(tmpdir(), 'relaywatch-boundary-'));
  try {
    copyFileSync(join(ROOT, 'biome.json'), join(dir, 'biome.json'));
    mkdirSync(join(dir, dirname(path)), { recursive: true });
    writeFileSync(join(dir, path), source);
    const run = spawnSync(BIOME, ['lint', path], {
      cwd: dir,
      encoding: 'utf8',
    });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the wire contract is the only server code clients import (lint)', () => {
  it.each([
    ['../../functions/core/ip.js'],
    ['../../functions/log.js'],
    ['@aws-sdk/client-dynamodb'],
  ])('refuses a client file that imports %s', (specifier) => {
    const result = lint(
      'clients/agent/probe.ts',
      `import * as m from '${specifier}';\n\nexport const x = m;\n`,
    );
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('noRestrictedImports');
  });

  it('accepts a client file that imports the contract and its own modules', () => {
    const result = lint(
      'clients/agent/probe.ts',
      "import { parseIp } from '#contract/ip';\nimport { x as y } from './other.js';\n\nexport const x = [parseIp, y];\n",
    );
    expect(result.output).not.toContain('noRestrictedImports');
    expect(result.status).toBe(0);
  });

  it('keeps the pure core free of AWS imports', () => {
    const result = lint(
      'functions/core/probe.ts',
      "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';\n\nexport const x = DynamoDBClient;\n",
    );
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('noRestrictedImports');
  });
});
