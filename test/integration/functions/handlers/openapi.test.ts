import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import { startStatusCenter } from '../../../helpers/status-center.js';

describe('GET /v1/openapi.json on the local status center', () => {
  let center: TestStatusCenter;
  beforeAll(async () => {
    center = await startStatusCenter();
  });
  afterAll(() => center?.stop());

  it('serves the committed document without a token', async () => {
    const response = await fetch(`${center.url}/v1/openapi.json`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual(
      JSON.parse(
        readFileSync(
          new URL('../../../../docs/openapi.json', import.meta.url),
          'utf8',
        ),
      ),
    );
  });
});
