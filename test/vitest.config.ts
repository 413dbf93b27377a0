import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Test layers follow what a test touches (see STYLE): unit (pure), integration
 * (DynamoDB Local, started once per run by the global setup; a file's tables
 * go when it ends), infra (CDK synth), fuzz (fast-check, never a 5xx), faults
 * (SDK mocks that inject throttling only).
 */
export default defineConfig({
  root,
  test: {
    // `npm run coverage`: the pure core and the DynamoDB adapter, the code every layer's tests exercise in process.
    coverage: {
      provider: 'v8',
      include: ['functions/core/**/*.ts', 'functions/store/**/*.ts'],
      reporter: ['text', 'text-summary', 'html'],
      reportsDirectory: 'coverage',
    },
    projects: [
      {
        extends: true,
        // A timeout here only catches a hang: property tests are CPU-bound and
        // take several times longer on a loaded machine or under coverage.
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/helpers/dynamodb-global-setup.ts'],
          // Deletes each file's tables on that Local when the file ends.
          setupFiles: ['test/helpers/local-tables-cleanup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'fuzz',
          include: ['test/fuzz/**/*.test.ts'],
          globalSetup: ['test/helpers/dynamodb-global-setup.ts'],
          // Deletes each file's tables on that Local when the file ends.
          setupFiles: ['test/helpers/local-tables-cleanup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
