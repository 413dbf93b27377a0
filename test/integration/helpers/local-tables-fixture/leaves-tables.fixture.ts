import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregatorTable } from '../../../helpers/aggregator-table.js';
import { listTables } from '../../../helpers/list-tables.js';
import {
  fileTables,
  localEndpoint,
  localTable,
} from '../../../helpers/local-tables.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import { startStatusCenter } from '../../../helpers/status-center.js';

/**
 * A test file that makes tables with every helper and deletes none: run by
 * local-tables.test.ts, which names the tables and checks they are gone once
 * this file ends. It runs with sequence.hooks 'list', so the setup file's
 * afterAll (which deletes the tables) comes before this file's own.
 */
const names = JSON.parse(process.env.FIXTURE_TABLES ?? '{}') as Record<
  'table' | 'aggregator' | 'stoppedFirst' | 'stoppedLate' | 'neverStopped',
  string
>;

const center = (tableName: string) =>
  startStatusCenter({ env: { TABLE_NAME: tableName } });

let late: TestStatusCenter;
beforeAll(async () => {
  late = await center(names.stoppedLate);
  // Started and never stopped by the file: the setup file stops it.
  await center(names.neverStopped);
});
// A file-level afterAll, so after the setup file's ('list'): the center was
// stopped before its table was deleted, and its stop() still answers.
afterAll(async () => {
  await expect(fetch(`${late.url}/v1/openapi.json`)).rejects.toThrow();
  await late.stop();
});

// A describe's afterAll runs when the describe ends: this center is stopped
// before the file's tables are deleted.
describe('a status center the file stops before its tables go', () => {
  let first: TestStatusCenter;
  beforeAll(async () => {
    first = await center(names.stoppedFirst);
  });
  afterAll(() => first.stop());

  it('serves', async () => {
    expect((await fetch(`${first.url}/v1/openapi.json`)).status).toBe(200);
  });
});

it('has every table it made on the Local while it runs, and the registry knows each', async () => {
  await localTable(names.table);
  await aggregatorTable(names.aggregator);
  const all = Object.values(names);
  expect(await listTables(localEndpoint())).toEqual(
    expect.arrayContaining(all),
  );
  expect(fileTables.names().sort()).toEqual(all.sort());
});
