/**
 * A saved blocklist: what a one-shot dispatcher keeps between runs so that
 * fail-static and If-None-Match work without a long-lived process.
 */

import * as z from 'zod/mini';
import { blocklistResponseSchema } from '#contract/blocklist';
import { parseWith } from '#contract/validation';

export const blocklistSnapshotSchema = z.object({
  /** When the status center last confirmed this list (200 or 304), ISO. */
  fetchedAt: z.iso.datetime({ offset: true }),
  etag: z.nullable(z.string()),
  blocklist: blocklistResponseSchema,
});
export type BlocklistSnapshot = z.infer<typeof blocklistSnapshotSchema>;

export type ParsedSnapshot =
  | { ok: true; value: BlocklistSnapshot }
  | { ok: false; message: string };

export function parseSnapshot(input: unknown): ParsedSnapshot {
  const parsed = parseWith(blocklistSnapshotSchema, input);
  if (parsed.ok) return parsed;
  const issue = parsed.issues[0];
  const path = issue?.path === '(body)' ? '(root)' : (issue?.path ?? '(root)');
  return { ok: false, message: `${path} ${issue?.message ?? 'is invalid'}` };
}
