import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import suite from '../../../vitest.config.js';

const root = fileURLToPath(new URL('../../../..', import.meta.url));

/** A project's setup files, as the suite's configuration gives them. */
export function setupFilesOf(name: string): string[] {
  const project = suite.test?.projects?.find(
    (p) => typeof p === 'object' && 'test' in p && p.test?.name === name,
  );
  const files =
    project && typeof project === 'object' && 'test' in project
      ? project.test?.setupFiles
      : undefined;
  return files === undefined ? [] : [files].flat();
}

/**
 * Runs leaves-tables.fixture.ts alone with the integration project's setup
 * files, on the DynamoDB Local the test that starts this run names.
 */
export default defineConfig({
  root,
  test: {
    include: [
      'test/integration/helpers/local-tables-fixture/leaves-tables.fixture.ts',
    ],
    setupFiles: setupFilesOf('integration'),
    provide: { dynamodbEndpoint: process.env.FIXTURE_DYNAMODB_ENDPOINT ?? '' },
    // The setup files' afterAll before the file's own: the order in which a
    // status center's stop() comes after its table is deleted.
    sequence: { hooks: 'list' },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
