import { DynamoDBClient, paginateListTables } from '@aws-sdk/client-dynamodb';

/**
 * Every table on a DynamoDB Local. No vitest import: the global setup, which
 * runs outside the test files, reads it too.
 */
export async function listTables(endpoint: string): Promise<string[]> {
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    const names: string[] = [];
    for await (const page of paginateListTables({ client }, {}))
      names.push(...(page.TableNames ?? []));
    return names;
  } finally {
    client.destroy();
  }
}
