import type { TestProject } from 'vitest/node';
import type { DynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { startDynamoDbLocal } from '../../infra/local/dynamodb-local.js';
import { freePort } from './ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}

let dynamodb: DynamoDbLocal | undefined;

/** One DynamoDB Local for the whole run; each test file creates its own table. */
export async function setup(project: TestProject): Promise<void> {
  dynamodb = await startDynamoDbLocal({
    port: await freePort(),
    startTimeoutMs: 60_000,
  });
  project.provide('dynamodbEndpoint', dynamodb.endpoint);
}

export async function teardown(): Promise<void> {
  await dynamodb?.stop();
}
