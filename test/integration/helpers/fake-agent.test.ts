import { describe, expect, it } from 'vitest';
import { AGENT_TOKEN } from '../../helpers/dispatcher-fakes.js';
import { startFakeAgent } from '../../helpers/dispatcher-servers.js';

describe('the fake relay agent', () => {
  it('records the relay API requests it gets, and not a signed AWS request that lands on its port', async () => {
    const agent = await startFakeAgent();
    try {
      // What an SDK client retrying against a stopped DynamoDB Local sends when the port is reused.
      const stray = await fetch(`${agent.url}/`, {
        method: 'POST',
        headers: {
          authorization:
            'AWS4-HMAC-SHA256 Credential=local/20261202/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
          'x-amz-target': 'DynamoDB_20120810.Query',
        },
        body: '{}',
      });
      const relay = await fetch(`${agent.url}/relays`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${AGENT_TOKEN}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ id: 'job-1' }),
      });

      expect(stray.status).toBe(404);
      expect(relay.status).toBe(202);
      expect(agent.posts.map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /relays',
      ]);
    } finally {
      await agent.stop();
    }
  });
});
