import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BatchGetCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { Leases } from '../core/leases.js';
import type { IpEvidence } from '../core/policy.js';
import { keys, TABLE } from './table.js';

export type StateStoreOptions = { client: DynamoDBDocumentClient; tableName: string };

/**
 * What the aggregator knows after its last minute: its progress, what it
 * found (so conditions are reported when they begin and end), and the fleet as
 * of that minute, which GET /v1/fleet serves. One item, written once a minute.
 */
export type AggregatorState = {
  /** The last minute fully aggregated (epoch minute). */
  lastMinute: number;
  /** When the last live pass decided (epoch ms). */
  lastPassAt?: number;
  reporting: IpEvidence[];
  /** Last minute each IP reported in, kept for a day, to tell "silent" IPs. */
  lastSeen: Record<string, number>;
  /** Per leased IP: last report time, declared interval, relaying or probing (core/leases.ts). Kept next to lastSeen. */
  leases?: Leases;
  /** A large share of the leased IPs is silent together (rule silent). */
  fleetSilent?: boolean;
  outages: string[];
  fleetWide: boolean;
  capInForce: boolean;
  capped: string[];
};

const OFFENSE_MEMORY_SECONDS = 86_400;

/** The aggregator's own items: its state and the IPs' ban history. */
export function createStateStore(options: StateStoreOptions) {
  const { client, tableName } = options;
  const stateKey = (sk: string) => ({ [TABLE.partitionKey]: keys.statePartition(), [TABLE.sortKey]: sk });
  const offensesKey = (ip: string) => ({ [TABLE.partitionKey]: keys.offensesPartition(ip), [TABLE.sortKey]: keys.offenses() });

  return {
    /** `consistent` for the aggregator itself, which must see its own last write. */
    async getAggregatorState(options: { consistent: boolean }): Promise<AggregatorState | undefined> {
      const result = await client.send(
        new GetCommand({ TableName: tableName, Key: stateKey(keys.aggregatorState()), ConsistentRead: options.consistent }),
      );
      return result.Item?.state as AggregatorState | undefined;
    },

    /**
     * Records that `state.lastMinute` is done, or a live pass at
     * `state.lastPassAt`, only moving forward (minute first, then pass time):
     * of two overlapping runs, the one behind does not undo the other's
     * progress. Answers whether this write won.
     */
    async advanceAggregatorState(state: AggregatorState): Promise<{ applied: boolean }> {
      const passAt = state.lastPassAt ?? 0;
      try {
        await client.send(
          new PutCommand({
            TableName: tableName,
            Item: { ...stateKey(keys.aggregatorState()), lastMinute: state.lastMinute, lastPassAt: passAt, state },
            ConditionExpression:
              'attribute_not_exists(lastMinute) OR lastMinute < :minute OR (lastMinute = :minute AND (attribute_not_exists(lastPassAt) OR lastPassAt < :at))',
            ExpressionAttributeValues: { ':minute': state.lastMinute, ':at': passAt },
          }),
        );
        return { applied: true };
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return { applied: false };
        throw error;
      }
    },

    /** Start times of each IP's automatic bans in the last 24 h. */
    async getOffenses(ips: readonly string[]): Promise<Record<string, number[]>> {
      const offenses: Record<string, number[]> = {};
      for (let start = 0; start < ips.length; start += 100) {
        let request: Record<string, { Keys: Record<string, unknown>[] }> | undefined = {
          [tableName]: { Keys: ips.slice(start, start + 100).map(offensesKey) },
        };
        for (let attempt = 0; request && Object.keys(request).length && attempt < 6; attempt++) {
          const result = await client.send(new BatchGetCommand({ RequestItems: request }));
          for (const item of result.Responses?.[tableName] ?? []) {
            offenses[item.ip as string] = [...((item.starts as Set<number> | undefined) ?? [])].sort((a, b) => a - b);
          }
          request = result.UnprocessedKeys as typeof request;
        }
      }
      return offenses;
    },

    /** Adds a ban start to the IP's history; a set, so a repeated run adds nothing. */
    async addOffense(ip: string, start: number): Promise<void> {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: offensesKey(ip),
          UpdateExpression: 'ADD starts :start SET ip = :ip, #ttl = :ttl',
          ExpressionAttributeNames: { '#ttl': TABLE.ttlAttribute },
          ExpressionAttributeValues: {
            ':start': new Set([start]),
            ':ip': ip,
            ':ttl': Math.floor(start / 1000) + OFFENSE_MEMORY_SECONDS,
          },
        }),
      );
    },
  };
}

export type StateStore = ReturnType<typeof createStateStore>;
