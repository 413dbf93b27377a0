import { paginateListTables } from '@aws-sdk/client-dynamodb';
import { localDynamoDbClient } from '../../infra/local/table.js';

/**
 * Every table on a DynamoDB Local. No vitest import: the global setup, which
 * runs outside the test files, reads it too.
 */
export async function listTables(endpoint: string): Promise<string[]> {
  const client = localDynamoDbClient(endpoint);
  try {
    const names: string[] = [];
    for await (const page of paginateListTables({ client }, {}))
      names.push(...(page.TableNames ?? []));
    return names;
  } finally {
    client.destroy();
  }
}
