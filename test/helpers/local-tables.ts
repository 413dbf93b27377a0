import { inject } from 'vitest';

// The SDK and the table code are loaded when a file first makes or deletes a
// table: the setup file loads this module in every file of its projects, and
// many of those never touch DynamoDB.

/** Refuses anything but a loopback endpoint: tests never touch a real AWS table. */
export function localEndpoint(): string {
  const endpoint = inject('dynamodbEndpoint');
  const host = new URL(endpoint).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) {
    throw new Error(
      `refusing to run tests against a non-local DynamoDB endpoint: ${endpoint}`,
    );
  }
  return endpoint;
}

/** The tables made on one DynamoDB Local, and what still reads them. */
export type LocalTables = {
  /**
   * Notes a table that is about to be made on the Local: noted first, so a
   * start that fails after making it leaves no table behind.
   */
  record(tableName: string): void;
  /** Makes the table (unless it exists) and notes it. */
  ensure(tableName: string): Promise<void>;
  /**
   * Something that reads noted tables until it is stopped (a status center
   * polls its table's stream): stopped before the tables are deleted.
   */
  stopFirst(stop: () => Promise<void>): void;
  /** The tables noted and not deleted yet. */
  names(): string[];
  /**
   * Stops what stopFirst noted, then deletes every noted table (one already
   * gone is no error) and forgets them all.
   */
  deleteAll(): Promise<void>;
};

export function createLocalTables(endpoint: () => string): LocalTables {
  const tables = new Set<string>();
  const stops: Array<() => Promise<void>> = [];
  return {
    record(tableName) {
      tables.add(tableName);
    },
    async ensure(tableName) {
      tables.add(tableName);
      const { ensureTable } = await import('../../infra/local/table.js');
      await ensureTable({
        endpoint: endpoint(),
        region: 'us-east-1',
        tableName,
      });
    },
    stopFirst(stop) {
      stops.push(stop);
    },
    names: () => [...tables],
    async deleteAll() {
      await Promise.all(stops.splice(0).map((stop) => stop()));
      const names = [...tables];
      tables.clear();
      if (!names.length) return;
      const { DeleteTableCommand, ResourceNotFoundException } = await import(
        '@aws-sdk/client-dynamodb'
      );
      const { localDynamoDbClient } = await import(
        '../../infra/local/table.js'
      );
      const client = localDynamoDbClient(endpoint());
      try {
        await Promise.all(
          names.map((TableName) =>
            client
              .send(new DeleteTableCommand({ TableName }))
              .catch((error) => {
                if (!(error instanceof ResourceNotFoundException)) throw error;
              }),
          ),
        );
      } finally {
        client.destroy();
      }
    },
  };
}

/**
 * This test file's tables on the suite's DynamoDB Local. The integration and
 * fuzz projects' setup file deletes them when the file ends; Vitest runs each
 * test file in a module graph of its own (isolate, the default), so they are
 * this file's only.
 */
export const fileTables = createLocalTables(localEndpoint);

/** A table of the test file's own on the suite's DynamoDB Local, deleted when the file ends. */
export function localTable(tableName: string): Promise<void> {
  return fileTables.ensure(tableName);
}

/** Notes a table that something else makes on the suite's DynamoDB Local, so it is deleted when the file ends. */
export function recordLocalTable(tableName: string): void {
  fileTables.record(tableName);
}
