import type {
  DynamoDBDocumentClient,
  QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { paginateQuery } from '@aws-sdk/lib-dynamodb';

/**
 * Runs a Query to the end (pages are at most 1 MB each), or until `limit`
 * items were read. Every store reads through this call of the SDK's
 * paginator, or through forEachQueryPage.
 */
export async function queryItems(
  client: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey' | 'Limit'>,
  options: { limit?: number } = {},
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
    items.push(...(page.Items ?? []));
    if (items.length >= limit) break;
  }
  return items;
}

/**
 * Runs a Query to the end, handing each page's items to `onPage` as it
 * arrives and keeping none: a reader works on a page while later ones are
 * on their way, and holds only what it makes of them.
 */
export async function forEachQueryPage(
  client: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey' | 'Limit'>,
  onPage: (items: Record<string, unknown>[]) => void,
): Promise<void> {
  // The paginator writes its page token into the input: give it a copy.
  for await (const page of paginateQuery({ client }, { ...input }))
    onPage(page.Items ?? []);
}
