import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ensureTable } from '../../../../infra/local/table.js';
import {
  openConnections,
  settledConnections,
} from '../../../helpers/connections.js';
import {
  localEndpoint,
  recordLocalTable,
} from '../../../helpers/local-tables.js';

const localPort = () => Number(new URL(localEndpoint()).port);

describe('ensureTable (the local status center makes its table)', () => {
  it('makes the table once, then finds it, and leaves no connection open either way', async () => {
    const tableName = `relaywatch-ensure-${randomBytes(6).toString('hex')}`;
    recordLocalTable(tableName);
    const options = {
      endpoint: localEndpoint(),
      region: 'us-east-1',
      tableName,
    };
    const before = await openConnections(localPort());

    const made = await ensureTable(options);
    expect(made.created).toBe(true);
    expect(made.streamArn).toMatch(/:table\/relaywatch-ensure-/);
    expect(await settledConnections(localPort(), before)).toBe(before);

    const found = await ensureTable(options);
    expect(found).toEqual({ created: false, streamArn: made.streamArn });
    expect(await settledConnections(localPort(), before)).toBe(before);
  });
});
