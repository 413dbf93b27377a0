import type {
  DynamoDBDocumentClient,
  QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { paginateQuery } from '@aws-sdk/lib-dynamodb';

/** A Query as the stores write it: the pages' token and size are this file's. */
export type QueryInput = Omit<QueryCommandInput, 'ExclusiveStartKey' | 'Limit'>;

/**
 * Runs a Query to the end (pages are at most 1 MB each), or until `limit`
 * items were read, handing each page's items to `onPage` as it arrives and
 * keeping none: a reader works on a page while later ones are on their way,
 * and holds only what it makes of them. This is the one call of the SDK's
 * paginator: every store reads through it, directly or through queryItems.
 */
export async function forEachQueryPage(
  client: DynamoDBDocumentClient,
  input: QueryInput,
  onPage: (items: Record<string, unknown>[]) => void,
  options: { limit?: number } = {},
): Promise<void> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let read = 0;
  const pages = paginateQuery(
    {
      client,
      // Each page asks for what is still missing, so no more than `limit`
      // items are ever read (and paid for).
      ...(Number.isFinite(limit)
        ? {
            withCommand: (command) => {
              command.input.Limit = limit - read;
              return command;
            },
          }
        : {}),
    },
    // The paginator writes its page token into the input: give it a copy.
    { ...input },
  );
  for await (const page of pages) {
    const items = page.Items ?? [];
    read += items.length;
    onPage(items);
    if (read >= limit) break;
  }
}

/**
 * Runs a Query to the end, or until `limit` items were read, and answers
 * every item read (forEachQueryPage, keeping each page).
 */
export async function queryItems(
  client: DynamoDBDocumentClient,
  input: QueryInput,
  options: { limit?: number } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  await forEachQueryPage(
    client,
    input,
    (page) => {
      items.push(...page);
    },
    options,
  );
  return items;
}
