import type { Config } from '../../functions/core/config.js';
import { parseConfig } from '../../functions/core/config.js';
import { ensureTable } from '../../infra/local/table.js';
import { localEndpoint } from './status-center.js';

/**
 * A table of its own on the suite's DynamoDB Local, and the configuration an
 * aggregator test runs with: one pass a run, no waiting for the pass times.
 */
export async function aggregatorTable(tableName: string): Promise<Config> {
  await ensureTable({
    endpoint: localEndpoint(),
    region: 'us-east-1',
    tableName,
  });
  return parseConfig({
    TABLE_NAME: tableName,
    RELAYWATCH_AGGREGATE_WAITS: 'false',
  });
}
