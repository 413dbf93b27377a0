import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { listTables } from './list-tables.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

/**
 * One DynamoDB Local for the whole run; each test file creates its own tables
 * and the setup file deletes them when it ends (local-tables.ts). A table
 * still there at the end was made past that registry: the run fails, naming it.
 */
export async function setup(
  project: TestProject,
): Promise<() => Promise<void>> {
  const dynamodb = await startDynamoDbLocal({
    port: 0,
    startTimeoutMs: 60_000,
  });
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
  return async () => {
    try {
      const left = await listTables(dynamodb.endpoint);
      if (left.length)
        throw new Error(
          `${left.length} table(s) left on the ${project.name} project's DynamoDB Local: ${left.join(', ')}. Make a test file's tables with localTable or recordLocalTable (test/helpers/local-tables.ts) or startStatusCenter, which delete them when the file ends.`,
        );
    } finally {
      await dynamodb.stop();
    }
  };
}
