/** The issue shape and zod's messages are part of the wire contract. */
export type { InputIssue, Parsed } from '#contract/validation';
export { parseWith, toInputIssues } from '#contract/validation';
