import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod/mini';
import type { AuditEvent } from '../core/events.js';
import { EVENT_TYPES } from '../core/events.js';
import type { Logger } from '../log.js';
import { putAll } from './batch.js';
import {
  defaultStoreLog,
  ITEM_VERSION_1,
  parseItemsSkippingBad,
} from './items.js';
import type { EventQuery, EventStore, TransactionItem } from './ports.js';
import { queryItems } from './query.js';
import { keys, TABLE } from './table.js';

export type EventStoreOptions = {
  client: DynamoDBDocumentClient;
  tableName: string;
  eventTtlDays: number;
  /** Where an event item left out of a list is reported (default: warn lines on stdout). */
  log?: Pick<Logger, 'warn'>;
};

/**
 * An event item as stored (beside its key and TTL): the event under `event`.
 * `v` came with this schema: items written before it read as version 1.
 */
const eventItemSchema = z.object({
  v: z._default(z.literal(ITEM_VERSION_1), ITEM_VERSION_1),
  event: z.object({
    type: z.enum(EVENT_TYPES),
    at: z.string(),
    ip: z.optional(z.string()),
    origin: z.optional(z.string()),
    minute: z.optional(z.string()),
    enforced: z.boolean(),
    rule: z.optional(z.string()),
    actor: z.optional(z.string()),
    evidence: z.record(z.string(), z.unknown()),
  }),
});

const DAY_MS = 86_400_000;
/**
 * BatchWriteItem calls of 25 items in flight while writing events: the first
 * minute of a large fleet records hundreds of bans, each event written twice
 * (by day and by IP). Well under the SDK's 50 sockets; a day partition that
 * throttles hands items back and putAll retries them with backoff.
 */
const WRITE_CONCURRENCY = 16;
const dayOf = (iso: string) => iso.slice(0, 10).replace(/-/g, '');

/**
 * Events by day (EVT#yyyyMMdd, sorted by time) and by IP (EVTIP#<ip>). The sort key is deterministic (time, subject, type), so an aggregation
 * run repeated for the same minute rewrites its events instead of adding more.
 */
export function createEventStore(options: EventStoreOptions): EventStore {
  const { client, tableName } = options;
  const log = options.log ?? defaultStoreLog;

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
      v: ITEM_VERSION_1,
      event,
    };
    return event.ip
      ? [
          byDay,
          {
            [TABLE.partitionKey]: keys.eventsOfIp(event.ip),
            [TABLE.sortKey]: sk,
            ...ttl,
            v: ITEM_VERSION_1,
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
    // The trail is read, never decided on: a damaged event is left out
    // (reported), not allowed to hide every other one.
    return parseItemsSkippingBad(eventItemSchema, items, log).map(
      (item): AuditEvent => item.event,
    );
  }

  return {
    eventItems(event: AuditEvent): TransactionItem[] {
      return toItems(event).map((Item) => ({
        Put: { TableName: tableName, Item },
      }));
    },

    async putEvents(events: readonly AuditEvent[]): Promise<void> {
      await putAll(client, tableName, events.flatMap(toItems), {
        concurrency: WRITE_CONCURRENCY,
      });
    },

    /** Events since `since` (epoch ms), newest first, at most `limit`. */
    async listEvents(query: EventQuery): Promise<AuditEvent[]> {
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
