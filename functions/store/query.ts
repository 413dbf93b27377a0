import type {
  DynamoDBDocumentClient,
  QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { paginateQuery } from '@aws-sdk/lib-dynamodb';

/**
 * Runs a Query to the end (pages are at most 1 MB each), or until `limit`
 * items were read. Every store reads through this one call of the SDK's
 * paginator. `onPage` sees each page's items as it arrives, so a reader can
 * work on them while later pages are still on their way.
 */
export async function queryItems(
  client: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey' | 'Limit'>,
  options: {
    limit?: number;
    onPage?: (items: Record<string, unknown>[]) => void;
  } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const pages = paginateQuery(
    {
      client,
      // Each page asks for what is still missing, so no more than `limit`
      // items are ever read (and paid for).
      ...(Number.isFinite(limit)
        ? {
            withCommand: (command) => {
              command.input.Limit = limit - items.length;
              return command;
            },
          }
        : {}),
    },
    // The paginator writes its page token into the input: give it a copy.
    { ...input },
  );
  for await (const page of pages) {
    const got = page.Items ?? [];
    options.onPage?.(got);
    items.push(...got);
    if (items.length >= limit) break;
  }
  return items;
}
