import { TABLE } from '../../functions/store/table.js';

/** The writes the aggregator makes per ban: the ban, its offense, two event items. */
export const WRITES_PER_BAN = 4;

/**
 * `count` made-up ban writes shaped like the aggregator's (banChangeOf, as
 * the ban store sends them): per ban a conditional put of the ban, an ADD
 * update of its offenses and two event puts, into BENCH# partitions of the
 * table that nothing reads. Bans are named `${tag}#${n}`; a count that is
 * not a multiple of WRITES_PER_BAN ends with a ban cut short. The fleet bench
 * warms DynamoDB Local's transactions up with them, and the write floor
 * replays the aggregation's transactions with them (floor-entry.ts).
 */
export function benchBanWrites(
  tableName: string,
  tag: string,
  count: number,
  /** About this many bytes of items put in all (DynamoDB's item size): the event items are padded to reach it. */
  putBytes = 0,
): Record<string, unknown>[] {
  const { partitionKey: pk, sortKey: sk } = TABLE;
  const bans = Math.ceil(count / WRITES_PER_BAN);
  // Two event items per ban; a made-up ban or event item is ~50 bytes unpadded.
  const pad = 'x'.repeat(
    Math.max(0, Math.round((putBytes - bans * 50) / (2 * bans)) - 50),
  );
  return Array.from({ length: bans }, (_, b) => {
    const id = `${tag}#${b}`;
    return [
      {
        Put: {
          TableName: tableName,
          Item: { [pk]: 'BENCH#BAN', [sk]: id, until: 1 },
          ConditionExpression: 'attribute_not_exists(#pk) OR #until <= :now',
          ExpressionAttributeNames: { '#pk': pk, '#until': 'until' },
          ExpressionAttributeValues: { ':now': 2 },
        },
      },
      {
        Update: {
          TableName: tableName,
          Key: { [pk]: `BENCH#OFFENSES#${id}`, [sk]: 'OFFENSES' },
          UpdateExpression: 'ADD starts :start',
          ExpressionAttributeValues: { ':start': new Set([1]) },
        },
      },
      ...['BENCH#EVT', `BENCH#EVTIP#${id}`].map((partition) => ({
        Put: {
          TableName: tableName,
          Item: {
            [pk]: partition,
            [sk]: id,
            event: { type: 'ban' },
            ...(pad ? { pad } : {}),
          },
        },
      })),
    ];
  })
    .flat()
    .slice(0, count);
}
