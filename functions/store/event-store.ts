import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AuditEvent } from '../core/events.js';
import { putAll } from './batch.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type EventStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  eventTtlDays: number;
};

const DAY_MS = 86_400_000;
const dayOf = (iso: string) => iso.slice(0, 10).replace(/-/g, '');

/**
 * Events by day (EVT#yyyyMMdd, sorted by time) and by IP (EVTIP#<ip>). The sort key is deterministic (time, subject, type), so an aggregation
 * run repeated for the same minute rewrites its events instead of adding more.
 */
export function createEventStore(options: EventStoreOptions) {
  const { client, tableName } = options;

  /** An event is stored by day and, when it concerns an IP, once more under that IP. */
  function toItems(event: AuditEvent) {
    const subject = event.ip ?? event.origin ?? '-';
    const sk = keys.event(event.at, subject, event.type);
    const ttl = {
      [TABLE.ttlAttribute]:
        Math.floor(Date.parse(event.at) / 1000) + options.eventTtlDays * 86_400,
    };
    const byDay = {
      [TABLE.partitionKey]: keys.eventDay(dayOf(event.at)),
      [TABLE.sortKey]: sk,
      ...ttl,
      event,
    };
    return event.ip
      ? [
          byDay,
          {
            [TABLE.partitionKey]: keys.eventsOfIp(event.ip),
            [TABLE.sortKey]: sk,
            ...ttl,
            event,
          },
        ]
      : [byDay];
  }

  async function queryNewestFirst(params: {
    pk: string;
    fromSk: string;
    limit: number;
  }): Promise<AuditEvent[]> {
    const items = await queryItems(
      client,
      {
        TableName: tableName,
        KeyConditionExpression: '#pk = :pk AND #sk >= :from',
        ExpressionAttributeNames: {
          '#pk': TABLE.partitionKey,
          '#sk': TABLE.sortKey,
        },
        ExpressionAttributeValues: { ':pk': params.pk, ':from': params.fromSk },
        ScanIndexForward: false,
      },
      { limit: params.limit },
    );
    return items.map((item) => item.event as AuditEvent);
  }

  return {
    async putEvents(events: readonly AuditEvent[]): Promise<void> {
      await putAll(client, tableName, events.flatMap(toItems), {
        concurrency: 4,
      });
    },

    /** Events since `since` (epoch ms), newest first, at most `limit`. */
    async listEvents(query: {
      ip?: string;
      since: number;
      limit: number;
      now: number;
    }): Promise<AuditEvent[]> {
      const fromSk = new Date(query.since).toISOString();
      if (query.ip) {
        return queryNewestFirst({
          pk: keys.eventsOfIp(query.ip),
          fromSk,
          limit: query.limit,
        });
      }
      const events: AuditEvent[] = [];
      // Walk day partitions from today back to the day of `since`, comparing epoch
      // numbers; no walk is longer than the events' retention, whatever `since` says.
      const firstDay = Math.floor(query.since / DAY_MS) * DAY_MS;
      const maxDays = options.eventTtlDays + 1;
      for (
        let i = 0, day = Math.floor(query.now / DAY_MS) * DAY_MS;
        i < maxDays && day >= firstDay && events.length < query.limit;
        i++, day -= DAY_MS
      ) {
        events.push(
          ...(await queryNewestFirst({
            pk: keys.eventDay(dayOf(new Date(day).toISOString())),
            fromSk,
            limit: query.limit - events.length,
          })),
        );
      }
      return events;
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
