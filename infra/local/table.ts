import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '../../functions/store/table.js';

/** CreateTable input built from the same TABLE definition the CDK stack uses. */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const indexes = Object.values(TABLE.indexes);
  const keyAttributes = new Set([
    TABLE.partitionKey,
    TABLE.sortKey,
    ...indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ]);
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...keyAttributes].map((AttributeName) => ({
      AttributeName,
      AttributeType: 'S',
    })),
    KeySchema: [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
    ],
    ...(indexes.length
      ? {
          GlobalSecondaryIndexes: indexes.map((index) => ({
            IndexName: index.name,
            KeySchema: [
              { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
              { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
            ],
            Projection: { ProjectionType: 'ALL' as const },
          })),
        }
      : {}),
    StreamSpecification: {
      StreamEnabled: true,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

/** A client of a DynamoDB Local (which takes any credentials); destroy() it when done. */
export function localDynamoDbClient(
  endpoint: string,
  region = 'us-east-1',
): DynamoDBClient {
  return new DynamoDBClient({
    region,
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** Creates the table with TTL on, unless it exists (a persistent data directory). */
export async function ensureTable(options: {
  endpoint: string;
  region: string;
  tableName: string;
}): Promise<{ created: boolean; streamArn?: string }> {
  const client = localDynamoDbClient(options.endpoint, options.region);
  try {
    const existing = await client
      .send(new DescribeTableCommand({ TableName: options.tableName }))
      .catch((error: unknown) => {
        if (error instanceof ResourceNotFoundException) return undefined;
        throw error;
      });
    if (existing)
      return { created: false, streamArn: existing.Table?.LatestStreamArn };
    const created = await client.send(
      new CreateTableCommand(createTableInput(options.tableName)),
    );
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: options.tableName,
        TimeToLiveSpecification: {
          Enabled: true,
          AttributeName: TABLE.ttlAttribute,
        },
      }),
    );
    return {
      created: true,
      streamArn: created.TableDescription?.LatestStreamArn,
    };
  } finally {
    // Its sockets would otherwise stay open (keep-alive) until the process ends.
    client.destroy();
  }
}
