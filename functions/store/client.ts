import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export type DocumentClientOptions = {
  region: string;
  endpoint?: string | undefined;
};

/**
 * Bounds on one DynamoDB round trip. Without them a hung connection holds a
 * request until the Lambda times out (an opaque 5xx); with them it fails as a
 * TimeoutError, retried by the SDK and then answered 503 with retry-after.
 */
const CONNECTION_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 5_000;

/**
 * The document client every store uses; create it once per process (cold start)
 * and pass it in. With `endpoint` it talks to DynamoDB Local, which accepts any
 * credentials, so fixed dummy ones are supplied when none are configured.
 */
export function createDocumentClient(
  options: DocumentClientOptions,
): DynamoDBDocumentClient {
  const local = options.endpoint !== undefined;
  const client = new DynamoDBClient({
    region: options.region,
    requestHandler: {
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
    },
    ...(local
      ? {
          endpoint: options.endpoint,
          credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        }
      : {}),
  });
  const documentClient = DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true },
  });
  // A document client's own destroy() leaves the client it wraps open (it
  // does not own it); this one owns its client, so destroying it closes the
  // connections.
  documentClient.destroy = () => client.destroy();
  return documentClient;
}
