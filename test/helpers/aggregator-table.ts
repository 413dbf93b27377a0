import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Ban } from '../../functions/core/blocklist.js';
import type { Config } from '../../functions/core/config.js';
import { parseConfig } from '../../functions/core/config.js';
import { createBanStore } from '../../functions/store/ban-store.js';
import { createEventStore } from '../../functions/store/event-store.js';
import { createHeartbeatStore } from '../../functions/store/heartbeat-store.js';
import type { StateStore } from '../../functions/store/ports.js';
import { createStateStore } from '../../functions/store/state-store.js';
import { localTable } from './local-tables.js';

/**
 * A table of its own on the suite's DynamoDB Local (deleted when the file
 * ends), and the configuration an aggregator test runs with: one pass a run,
 * no waiting for the pass times.
 */
export async function aggregatorTable(tableName: string): Promise<Config> {
  await localTable(tableName);
  return parseConfig({
    TABLE_NAME: tableName,
    RELAYWATCH_AGGREGATE_WAITS: 'false',
  });
}

/** The stores an aggregator runs on, on one table (the adapter's own, as the handler builds them). */
export function aggregatorStores(
  client: DynamoDBDocumentClient,
  tableName: string,
  config: Pick<Config, 'shards'>,
) {
  return {
    heartbeats: createHeartbeatStore({
      client,
      tableName,
      shards: config.shards,
      bucketTtlHours: 48,
    }),
    bans: createBanStore({ client, tableName }),
    events: createEventStore({ client, tableName, eventTtlDays: 30 }),
    state: createStateStore({ client, tableName }),
  };
}

/** The aggregator's progress as a run that decided every minute up to `lastMinute` leaves it, nothing else recorded. */
export function decidedThrough(
  state: Pick<StateStore, 'advanceAggregatorState'>,
  lastMinute: number,
): Promise<{ applied: boolean }> {
  return state.advanceAggregatorState({
    lastMinute,
    reporting: [],
    lastSeen: {},
    outages: [],
    fleetWide: false,
    capInForce: false,
    capped: [],
  });
}

/** An automatic ban of `ip` from `since`, for an hour, as the fail-ratio rule makes a first offender's. */
export function ruleBan(ip: string, since: number): Ban {
  return {
    ip,
    reason: 'connect failures',
    since,
    until: since + 3_600_000,
    manual: false,
    failRatio: 0.9,
    samples: 100,
    offense: 1,
    rule: 'fail-ratio',
  };
}
