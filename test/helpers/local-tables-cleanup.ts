import { afterAll } from 'vitest';
import { fileTables } from './local-tables.js';

/**
 * Setup file of the projects that share one DynamoDB Local: a file's tables go
 * when the file ends, so the files after it do not work on a Local holding
 * every earlier file's rows. Status centers on them are stopped first, so this
 * may run before or after the file's own afterAll (sequence.hooks).
 */
afterAll(() => fileTables.deleteAll());
