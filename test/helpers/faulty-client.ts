import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Fault injection on a real client: `fault` sees every command first and
 * may throw in its place; anything it lets through goes to DynamoDB (Local)
 * as usual.
 */
export function withFault(
  client: DynamoDBDocumentClient,
  fault: (command: { input?: Record<string, unknown> }) => void,
): DynamoDBDocumentClient {
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property !== 'send') return Reflect.get(target, property, receiver);
      return async (command: { input?: Record<string, unknown> }) => {
        fault(command);
        return (target.send as (c: unknown) => Promise<unknown>)(command);
      };
    },
  });
}

/** A writer of ban changes that dies after its transactions, before it closes its change window. */
export const diesBeforeClosingWindow = (client: DynamoDBDocumentClient) =>
  withFault(client, (command) => {
    if (String(command.input?.UpdateExpression ?? '').includes('REMOVE'))
      throw new Error('writer killed');
  });

/** A client that notes the aggregator-state piece kinds (R, S, L, O, C) its queries read. */
export function watchingPieceQueries(client: DynamoDBDocumentClient) {
  const queried: string[] = [];
  const watched = withFault(client, (command) => {
    const values = command.input?.ExpressionAttributeValues as
      | Record<string, unknown>
      | undefined;
    const prefix = values?.[':prefix'];
    if (typeof prefix === 'string') queried.push(prefix.slice(0, 1));
  });
  return { client: watched, queried };
}
