import type { _Record as StreamRecord } from '@aws-sdk/client-dynamodb-streams';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { Logger } from '../../functions/log.js';

/** Lambda receives epoch seconds where the SDK hands back a Date. */
function toLambdaRecord(record: StreamRecord): DynamoDBRecord {
  const dynamodb = record.dynamodb;
  return {
    eventID: record.eventID,
    eventName: record.eventName as DynamoDBRecord['eventName'],
    eventSource: 'aws:dynamodb',
    ...(record.userIdentity ? { userIdentity: record.userIdentity } : {}),
    dynamodb: {
      ...(dynamodb?.Keys ? { Keys: dynamodb.Keys as never } : {}),
      ...(dynamodb?.OldImage ? { OldImage: dynamodb.OldImage as never } : {}),
      ...(dynamodb?.NewImage ? { NewImage: dynamodb.NewImage as never } : {}),
      ...(dynamodb?.ApproximateCreationDateTime
        ? {
            ApproximateCreationDateTime:
              dynamodb.ApproximateCreationDateTime.getTime() / 1000,
          }
        : {}),
      SequenceNumber: dynamodb?.SequenceNumber,
      StreamViewType: dynamodb?.StreamViewType,
    },
  };
}

/**
 * Reads the table's stream from DynamoDB Local and hands batches to the same
 * stream handler Lambda would run (the local stand-in for an event source
 * mapping). Starts at the stream's end: what happened before start-up is not replayed.
 */
export function startStreamPoller(options: {
  endpoint: string;
  region: string;
  streamArn: string;
  handler: (event: DynamoDBStreamEvent) => Promise<unknown>;
  log: Logger;
  everyMs?: number;
}): { stop(): Promise<void> } {
  const client = new DynamoDBStreamsClient({
    region: options.region,
    endpoint: options.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const iterators = new Map<string, string | undefined>();
  let stopped = false;
  let first = true;
  let timer: NodeJS.Timeout | undefined;

  async function discoverShards() {
    const description = await client.send(
      new DescribeStreamCommand({ StreamArn: options.streamArn }),
    );
    for (const shard of description.StreamDescription?.Shards ?? []) {
      if (!shard.ShardId || iterators.has(shard.ShardId)) continue;
      const iterator = await client.send(
        new GetShardIteratorCommand({
          StreamArn: options.streamArn,
          ShardId: shard.ShardId,
          // Shards found later are new: read them whole.
          ShardIteratorType: first ? 'LATEST' : 'TRIM_HORIZON',
        }),
      );
      iterators.set(shard.ShardId, iterator.ShardIterator);
    }
    first = false;
  }

  async function poll() {
    await discoverShards();
    for (const [shardId, iterator] of iterators) {
      if (!iterator) continue;
      const page = await client.send(
        new GetRecordsCommand({ ShardIterator: iterator }),
      );
      iterators.set(shardId, page.NextShardIterator);
      if (page.Records?.length)
        await options.handler({ Records: page.Records.map(toLambdaRecord) });
    }
  }

  let polling: Promise<void> = Promise.resolve();
  const loop = async () => {
    if (stopped) return;
    polling = poll().catch((error) => {
      if (!stopped)
        options.log.warn('stream poll failed; will retry', {
          error: String(error),
        });
    });
    await polling;
    if (!stopped) {
      timer = setTimeout(loop, options.everyMs ?? 1000);
      timer.unref();
    }
  };
  void loop();
  return {
    // Waits for a poll under way, so nothing reads the stream (or runs the
    // handler on the table) once stop() is done: the table may go next.
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await polling;
      client.destroy();
    },
  };
}
