import type { Config } from '../../functions/core/config.js';
import { parseConfig } from '../../functions/core/config.js';
import { localTable } from './local-tables.js';

/**
 * A table of its own on the suite's DynamoDB Local (deleted when the file
 * ends), and the configuration an aggregator test runs with: one pass a run,
 * no waiting for the pass times.
 */
export async function aggregatorTable(tableName: string): Promise<Config> {
  await localTable(tableName);
  return parseConfig({
    TABLE_NAME: tableName,
    RELAYWATCH_AGGREGATE_WAITS: 'false',
  });
}
