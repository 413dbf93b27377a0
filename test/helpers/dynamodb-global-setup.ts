import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';
import type { DynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

let dynamodb: DynamoDbLocal | undefined;

/** One DynamoDB Local for the whole run; each test file creates its own table. */
export async function setup(project: TestProject): Promise<void> {
  dynamodb = await startDynamoDbLocal({ port: await freePort(), startTimeoutMs: 60_000 });
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
}

export async function teardown(): Promise<void> {
  await dynamodb?.stop();
}
