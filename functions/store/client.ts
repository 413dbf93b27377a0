import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export type DocumentClientOptions = { region: string; endpoint?: string | undefined };

/**
 * The document client every store uses; create it once per process (cold start)
 * and pass it in. With `endpoint` it talks to DynamoDB Local, which accepts any
 * credentials, so fixed dummy ones are supplied when none are configured.
 */
export function createDocumentClient(options: DocumentClientOptions): DynamoDBDocumentClient {
  const local = options.endpoint !== undefined;
  const client = new DynamoDBClient({
    region: options.region,
    ...(local
      ? {
          endpoint: options.endpoint,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
}
