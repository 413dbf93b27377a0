import { randomBytes } from 'node:crypto';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { startLocalStatusCenter } from '../../../infra/local/status-center.js';
import { localDynamoDbClient } from '../../../infra/local/table.js';
import { aggregatorTable } from '../../helpers/aggregator-table.js';
import { listTables } from '../../helpers/list-tables.js';
import {
  createLocalTables,
  fileTables,
  localEndpoint,
  localTable,
} from '../../helpers/local-tables.js';
import { startBin } from '../../helpers/run-bin.js';
import { startStatusCenter } from '../../helpers/status-center.js';
import { setupFilesOf } from './local-tables-fixture/vitest.config.js';

const nameOf = (what: string) =>
  `relaywatch-${what}-${randomBytes(6).toString('hex')}`;

/** The tables on the suite's DynamoDB Local, every file's. */
const tablesNow = () => listTables(localEndpoint());

describe("a test file's tables on the suite's DynamoDB Local", () => {
  it('are there while the file runs, and noted whichever helper made them', async () => {
    // Act
    const table = nameOf('table');
    await localTable(table);
    const aggregator = nameOf('aggregator');
    await aggregatorTable(aggregator);
    const center = await startStatusCenter();
    await center.stop();
    // Assess
    const made = [table, aggregator, center.tableName];
    expect(await tablesNow()).toEqual(expect.arrayContaining(made));
    expect(fileTables.names()).toEqual(expect.arrayContaining(made));
  });

  it('are deleted by deleteAll once what reads them is stopped; one already gone is no error', async () => {
    // Prepare: a registry of the test's own, so the file's stays as it is.
    const tables = createLocalTables(localEndpoint);
    const [kept, gone, polled] = ['kept', 'gone', 'polled'].map(nameOf) as [
      string,
      string,
      string,
    ];
    await tables.ensure(kept);
    await tables.ensure(gone);
    tables.record(polled);
    const center = await startLocalStatusCenter({
      port: 0,
      dynamodbEndpoint: localEndpoint(),
      env: { TABLE_NAME: polled, LOG_LEVEL: 'error' },
      schedule: false,
    });
    let polledAtStop: boolean | undefined;
    tables.stopFirst(async () => {
      polledAtStop = (await tablesNow()).includes(polled);
      await center.stop();
    });
    const client = localDynamoDbClient(localEndpoint());
    await client.send(new DeleteTableCommand({ TableName: gone }));
    client.destroy();
    // Act
    await tables.deleteAll();
    // Assess
    expect(polledAtStop).toBe(true);
    const listed = await tablesNow();
    expect([kept, gone, polled].filter((t) => listed.includes(t))).toEqual([]);
    expect(tables.names()).toEqual([]);
  });

  it('are deleted when the file ends, by the setup file the integration and fuzz projects run, with its status centers stopped first', async () => {
    // Prepare: a file that makes tables with every helper, run on its own
    // with the integration project's setup files and the setup file's
    // afterAll first (local-tables-fixture).
    expect(setupFilesOf('integration').length).toBeGreaterThan(0);
    expect(setupFilesOf('fuzz')).toEqual(setupFilesOf('integration'));
    const names = {
      table: nameOf('table'),
      aggregator: nameOf('aggregator'),
      stoppedFirst: nameOf('first'),
      stoppedLate: nameOf('late'),
      neverStopped: nameOf('never'),
    };
    // Act
    const run = await startBin(
      'node_modules/vitest/vitest.mjs',
      [
        'run',
        '--config',
        'test/integration/helpers/local-tables-fixture/vitest.config.ts',
      ],
      {
        FIXTURE_DYNAMODB_ENDPOINT: localEndpoint(),
        FIXTURE_TABLES: JSON.stringify(names),
      },
      110_000,
    ).exited;
    // Assess: the file passed (its tables were there while it ran), and
    // none of them is left.
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.code, output).toBe(0);
    expect(output).toContain('2 passed');
    expect(output).not.toContain('stream poll failed');
    const listed = await tablesNow();
    expect(Object.values(names).filter((t) => listed.includes(t))).toEqual([]);
  });
});
