/**
 * npm run bench -- --ban-writes N: how long a minute's N bans take to write on
 * DynamoDB Local, by the path the aggregation takes and by the cheaper path
 * it could take if a ban and its audit trail did not have to be written
 * together. Answers the question the first minute's figures raise (its ban
 * writes take longer than its read): would dropping the transactions bring
 * it under 2× the read? Prints figures, asserts nothing.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mapBounded } from '../../functions/core/maps.js';
import { TRANSACTION_MAX_ITEMS } from '../../functions/store/ban-store.js';
import {
  BATCH_WRITE_LIMIT,
  chunksOf,
  putAll,
} from '../../functions/store/batch.js';
import { benchBanWrites, WRITES_PER_BAN } from './ban-writes.js';

/** Requests in flight at once where a path sends several (the ban store's figure against DynamoDB). */
const IN_FLIGHT = 4;

type Item = Record<string, unknown>;
type Write = { Put?: Item; Update?: Item };

/** One way of writing a minute's bans: its name and how it sends them. */
type BanWritePath = {
  label: string;
  write(
    client: DynamoDBDocumentClient,
    writes: readonly Write[],
  ): Promise<number>;
};

/** The aggregation's writes as transactions of TRANSACTION_MAX_ITEMS, `inFlight` at a time; answers the requests sent. */
async function transactions(
  client: DynamoDBDocumentClient,
  writes: readonly Write[],
  inFlight: number,
): Promise<number> {
  const batches = chunksOf(writes, TRANSACTION_MAX_ITEMS);
  await mapBounded(batches, inFlight, (TransactItems) =>
    client.send(
      new TransactWriteCommand({
        TransactItems: TransactItems as never,
      }),
    ),
  );
  return batches.length;
}

/**
 * The same writes without a transaction, each made safe to repeat: the
 * offense written as an item that names the minute it counted (a put, so a
 * run that repeats the minute counts it once) and the events (deterministic
 * keys) go in BatchWriteItem requests first; then each ban, a put that keeps
 * its condition (no ban in force), alone. A run that dies between them leaves
 * events and offenses of bans not yet written, which the next run, deciding
 * the same minute again, completes. What it gives up: a ban refused by its
 * condition (an operator's ban written meanwhile) leaves its event and
 * offense behind.
 */
async function batchesThenBans(
  client: DynamoDBDocumentClient,
  writes: readonly Write[],
): Promise<number> {
  const bans: Item[] = [];
  const puts: Item[] = [];
  for (const write of writes) {
    if (write.Update) {
      const { TableName: _table, Key, ...update } = write.Update;
      // benchBanWrites' update adds the ban's start to the offense's starts.
      const values = update.ExpressionAttributeValues as Item;
      puts.push({
        ...(Key as Item),
        starts: values[':start'],
        countedMinute: 1,
      });
    } else if (write.Put?.ConditionExpression) bans.push(write.Put);
    else if (write.Put) puts.push(write.Put.Item as Item);
  }
  const tableName = writes[0]?.Put?.TableName as string;
  await putAll(client, tableName, puts, { concurrency: IN_FLIGHT });
  await mapBounded(bans, IN_FLIGHT, (ban) =>
    client.send(new PutCommand(ban as never)),
  );
  return Math.ceil(puts.length / BATCH_WRITE_LIMIT) + bans.length;
}

export const BAN_WRITE_PATHS: readonly BanWritePath[] = [
  {
    label: 'transactions, one at a time (the store against DynamoDB Local)',
    write: (client, writes) => transactions(client, writes, 1),
  },
  {
    label: `transactions, ${IN_FLIGHT} in flight (the store against DynamoDB)`,
    write: (client, writes) => transactions(client, writes, IN_FLIGHT),
  },
  {
    label: `no transaction: batches, then each ban alone (${IN_FLIGHT} in flight)`,
    write: batchesThenBans,
  },
];

export const BAN_WRITE_HEADERS = [
  'bans',
  'path',
  'writes',
  'requests',
  'ms',
  'ms per ban',
];

/**
 * Writes `bans` made-up bans (benchBanWrites: the aggregation's four writes
 * per ban, into partitions nothing reads) by every path, `rounds` times going
 * round the paths, each time under fresh keys; answers a row per path and
 * round. The caller leaves out the first round: DynamoDB Local's first
 * transactions on a table run slowly.
 */
export async function benchBanWritePaths(
  client: DynamoDBDocumentClient,
  tableName: string,
  bans: number,
  rounds: number,
  progress: (text: string) => void,
): Promise<{ round: number; row: (string | number)[] }[]> {
  const rows: { round: number; row: (string | number)[] }[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const [p, path] of BAN_WRITE_PATHS.entries()) {
      const writes = benchBanWrites(
        tableName,
        `paths#${round}#${p}`,
        bans * WRITES_PER_BAN,
      ) as Write[];
      progress(`ban writes, round ${round + 1} of ${rounds}: ${path.label}`);
      const started = performance.now();
      const requests = await path.write(client, writes);
      const ms = performance.now() - started;
      rows.push({
        round,
        row: [bans, path.label, writes.length, requests, ms, ms / bans],
      });
    }
  }
  return rows;
}
