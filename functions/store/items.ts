import type * as z from 'zod/mini';
import { parseWith } from '#contract/validation';
import type { Logger } from '../log.js';
import { createLogger } from '../log.js';
import { StoredItemError } from './errors.js';
import { TABLE } from './table.js';

/**
 * The version field of a stored shape: items written before it existed carry
 * none and read as version 1.
 */
export const ITEM_VERSION_1 = 1;

/** The item's key, as far as it has one, for error messages. */
function keyOf(item: Record<string, unknown>) {
  return {
    pk: String(item[TABLE.partitionKey] ?? '?'),
    sk: String(item[TABLE.sortKey] ?? '?'),
  };
}

/**
 * Parses a stored item with the schema of its stored shape; throws
 * StoredItemError naming the key and the first wrong field.
 * @example parseItem(banItemSchema, result.Item) // Ban fields, or StoredItemError 'BAN / IP#192.0.2.7 … until: …'
 */
export function parseItem<S extends z.ZodMiniType>(
  schema: S,
  item: Record<string, unknown>,
): z.output<S> {
  const parsed = parseWith(schema as z.ZodMiniType<z.output<S>>, item);
  if (parsed.ok) return parsed.value;
  const issue = parsed.issues[0];
  throw new StoredItemError(
    keyOf(item),
    // parseWith names a problem with the whole input '(body)'.
    issue && issue.path !== '(body)' ? issue.path : '(item)',
    issue?.message ?? 'does not match its stored shape',
  );
}

/**
 * Parses every item, leaving out (with a warning naming the key and the
 * field) the ones that do not match: for lists where one damaged item must
 * not hide all the others.
 */
export function parseItemsSkippingBad<S extends z.ZodMiniType>(
  schema: S,
  items: readonly Record<string, unknown>[],
  log: Pick<Logger, 'warn'>,
): z.output<S>[] {
  const parsed: z.output<S>[] = [];
  for (const item of items) {
    try {
      parsed.push(parseItem(schema, item));
    } catch (error) {
      if (!(error instanceof StoredItemError)) throw error;
      log.warn('unreadable stored item left out', {
        pk: error.key.pk,
        sk: error.key.sk,
        field: error.field,
        error: error.message,
      });
    }
  }
  return parsed;
}

/** Where stores report the items they leave out, when not told otherwise. */
export const defaultStoreLog: Pick<Logger, 'warn'> = createLogger({
  level: 'warn',
  metrics: false,
});
