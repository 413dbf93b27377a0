import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEARTBEAT_LIMITS } from '../../../../functions/core/heartbeat.js';
import { readResponse } from '../../../helpers/http.js';
import type { TestStatusCenter } from '../../../helpers/status-center.js';
import { startStatusCenter } from '../../../helpers/status-center.js';

/**
 * Any body and header combination sent to the two write routes of the real
 * local status center (gateway → middy chain → DynamoDB Local) must be
 * answered without a 5xx, and every 4xx must be {"error", "issues"?}. Runs are
 * bounded so the file stays well under a minute.
 */

const NUM_RUNS = {
  heartbeats: 1000,
  bans: 600,
  reporterTokens: 200,
  machineHeartbeats: 300,
};

/** Strings that have broken parsers and stores before. */
const nastyString = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '\ud800',
  'a\udfffb',
  '🦀',
  '%',
  '%zz',
  '%E0%A4%A',
  '../../etc',
  '#',
  'HB#202611241403#0',
  '__proto__',
  'constructor',
  'x'.repeat(2000),
  '1e309',
  '-0',
);
const anyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  nastyString,
);

const ipLike = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.ipV4Extended(),
  fc.ipV4().map((ip) => `::ffff:${ip}`),
  fc.ipV6().map((ip) => ip.toUpperCase()),
  anyString,
  fc.integer(),
);
const tsLike = (now: number) =>
  fc.oneof(
    fc.integer({ min: now - 3 * 3_600_000, max: now + 2 * 60_000 }),
    fc.constant(now),
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -1, 2 ** 53, Number.MAX_VALUE),
    anyString,
  );
const originLike = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.webUrl().map((url) => url.replace(/^https?/, 'rtmp')),
  anyString,
  fc.constant('o'.repeat(HEARTBEAT_LIMITS.maxOriginLength)),
  fc.constant(`rtmp://${'h'.repeat(60)}.example/${'p'.repeat(900)}`),
);

const heartbeatLike = (now: number) =>
  fc.record(
    {
      ip: ipLike,
      process: fc.oneof(
        fc.string({ minLength: 1, maxLength: 20 }),
        anyString,
        fc.constant('p'.repeat(129)),
      ),
      status: fc.oneof(
        fc.constantFrom('ok', 'connect_failed', 'origin_error', 'error'),
        anyString,
      ),
      kind: fc.oneof(fc.constantFrom('relay', 'probe'), anyString),
      origin: originLike,
      ts: tsLike(now),
      detail: fc.oneof(
        fc.string({ maxLength: 60 }),
        fc.constant('d'.repeat(513)),
      ),
      extra: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  );

/** A heartbeat that is valid apart from chance: most bodies should reach the store. */
const validHeartbeat = (now: number) =>
  fc.record(
    {
      ip: fc.oneof(fc.ipV4(), fc.ipV6()),
      process: fc.string({ minLength: 1, maxLength: 20 }),
      status: fc.constantFrom('ok', 'connect_failed', 'origin_error', 'error'),
      kind: fc.constantFrom('relay', 'probe'),
      origin: fc.oneof(
        fc.webUrl({ withQueryParameters: true }),
        fc.webUrl().map((url) => url.replace(/^https?/, 'srt')),
        fc.constant('o'.repeat(HEARTBEAT_LIMITS.maxOriginLength)),
      ),
      ts: fc.integer({ min: now - 120_000, max: now + 30_000 }),
    },
    { requiredKeys: ['ip', 'process', 'status'] },
  );

const heartbeatBody = (now: number) =>
  fc.oneof(
    heartbeatLike(now),
    { weight: 2, arbitrary: validHeartbeat(now) },
    fc.record(
      {
        heartbeats: fc.oneof(
          fc.array(fc.oneof(heartbeatLike(now), validHeartbeat(now)), {
            maxLength: 30,
          }),
          {
            weight: 3,
            arbitrary: fc.array(validHeartbeat(now), {
              minLength: 1,
              maxLength: 60,
            }),
          },
          fc.jsonValue({ maxDepth: 2 }),
        ),
        batchId: fc.oneof(
          { weight: 3, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) },
          anyString,
          fc.integer(),
        ),
      },
      { requiredKeys: ['heartbeats'] },
    ),
    fc.jsonValue({ maxDepth: 3 }),
  );

const banBody = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record(
      {
        durationSeconds: fc.integer({ min: 1, max: 30 * 86_400 }),
        reason: fc.string({ minLength: 1, maxLength: 80 }),
      },
      { requiredKeys: ['durationSeconds'] },
    ),
  },
  fc.record(
    {
      durationSeconds: fc.oneof(
        fc.integer({ min: 1, max: 30 * 86_400 }),
        fc.integer(),
        fc.double(),
        fc.constantFrom(0, 30 * 86_400 + 1, 2 ** 53, Number.MAX_VALUE),
        anyString,
      ),
      reason: fc.oneof(
        fc.string({ minLength: 1, maxLength: 80 }),
        anyString,
        fc.constant('r'.repeat(257)),
      ),
      extra: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

/** How the body travels: as JSON, as raw text, or as bytes that are not UTF-8. */
const encodedBody = (body: fc.Arbitrary<unknown>) =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: body.map((value) => JSON.stringify(value) ?? 'null'),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    {
      weight: 1,
      arbitrary: fc
        .uint8Array({ maxLength: 200 })
        .map((bytes) => Buffer.from(bytes)),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

const contentType = fc.oneof(
  { weight: 16, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/problem+json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      'application/',
      '*/*',
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .string({ maxLength: 30 })
      .filter((s) => /^[\x20-\x7e]*$/.test(s) && s.trim() === s),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const reporterTokenBody = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      ip: fc.oneof(
        fc.ipV4(),
        fc.ipV6(),
        fc.ipV4().map((ip) => `::ffff:${ip}`),
      ),
    }),
  },
  fc.record(
    {
      ip: fc.oneof(
        anyString,
        fc.integer(),
        fc.constant(null),
        fc.constant('1'.repeat(60)),
      ),
      extra: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

type Role = keyof TestStatusCenter['tokens'];
const authorization = (center: () => TestStatusCenter, preferred: Role) =>
  fc.oneof(
    {
      weight: 16,
      arbitrary: fc.constant(() => `Bearer ${center().tokens[preferred]}`),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<Role>('reporter', 'reader', 'admin')
        .map((role) => () => `bearer  ${center().tokens[role]} `),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          'Bearer',
          'Bearer ',
          'Basic YTpi',
          'Bearer a b',
          'Token x',
        )
        .map((value) => () => value),
    },
    {
      weight: 1,
      arbitrary: fc
        .string({ maxLength: 40 })
        .filter((s) => /^[\x21-\x7e]+$/.test(s))
        .map((s) => () => `Bearer ${s}`),
    },
    { weight: 1, arbitrary: fc.constant(() => undefined) },
  );

/** Path segment for {ip}: encoded text, or raw text that is malformed on purpose. */
const ipSegment = fc.oneof(
  { weight: 3, arbitrary: fc.ipV4() },
  fc.ipV6(),
  fc.ipV6().map(encodeURIComponent),
  fc.ipV4().map((ip) => encodeURIComponent(`::ffff:${ip}`)),
  anyString.map((text) =>
    encodeURIComponent(text.replace(/[\ud800-\udfff]/g, 'x')),
  ),
  fc.constantFrom(
    '%',
    '%zz',
    '%E0%A4%A',
    '192.0.2.1%',
    '%C0%AF',
    '..',
    '.',
    '%2F',
    'a%00b',
  ),
);

function assertContract(
  response: { status: number; text: string; json: unknown },
  request: unknown,
): void {
  const context = `request ${JSON.stringify(request)?.slice(0, 600)} → ${response.status} ${response.text.slice(0, 300)}`;
  expect(response.status, context).toBeLessThan(500);
  if (response.status < 400) return;
  const body = response.json as Record<string, unknown>;
  expect(typeof body, context).toBe('object');
  expect(body, context).not.toBeNull();
  expect(typeof body.error, context).toBe('string');
  expect(body.code, context).toMatch(/^[a-z][a-z0-9_]*$/);
  expect(
    Object.keys(body).every((key) => ['code', 'error', 'issues'].includes(key)),
    context,
  ).toBe(true);
  if ('issues' in body) {
    expect(Array.isArray(body.issues), context).toBe(true);
    for (const issue of body.issues as Record<string, unknown>[]) {
      expect(Object.keys(issue).sort(), context).toEqual(['message', 'path']);
      expect(typeof issue.path, context).toBe('string');
      expect(typeof issue.message, context).toBe('string');
    }
  }
}

async function send(
  url: string,
  request: {
    method: string;
    body: string | Buffer | undefined;
    headers: Record<string, string | undefined>;
  },
) {
  const headers = Object.fromEntries(
    Object.entries(request.headers).filter(([, value]) => value !== undefined),
  ) as Record<string, string>;
  // fetch labels a string body text/plain; bytes go without a content type.
  const body =
    typeof request.body === 'string' && !headers['content-type']
      ? Buffer.from(request.body)
      : request.body;
  const response = await fetch(url, { method: request.method, headers, body });
  return readResponse(response);
}

type EnvelopeShape = {
  ip: string;
  size: number;
  distinctOrigins: number;
  hostLength: number;
  status: string;
};

/** A valid envelope for one IP: `size` heartbeats over `distinctOrigins` origins with hosts of `hostLength`. */
function envelopeOf(shape: EnvelopeShape) {
  const { ip, size, distinctOrigins, hostLength, status } = shape;
  return {
    ip,
    heartbeats: Array.from({ length: size }, (_, i) => ({
      ip,
      process: `ffmpeg-${i}`,
      status,
      origin: `rtmp://${String(i % distinctOrigins).padStart(3, '0')}${'h'.repeat(hostLength)}/live`,
    })),
  };
}

/** Shapes of valid envelopes up to the documented limits: 500 heartbeats, origins of up to 1 KB, up to 128 distinct. */
const envelopeShape: fc.Arbitrary<EnvelopeShape> = fc.record({
  ip: fc.oneof(fc.ipV4(), fc.ipV6()),
  size: fc.integer({ min: 1, max: HEARTBEAT_LIMITS.maxBatch }),
  distinctOrigins: fc.integer({
    min: 1,
    max: HEARTBEAT_LIMITS.maxOriginsPerIpMinute,
  }),
  hostLength: fc.integer({
    min: 1,
    max: HEARTBEAT_LIMITS.maxOriginLength - 20,
  }),
  status: fc.constantFrom('ok', 'connect_failed', 'origin_error', 'error'),
});

describe('the write routes under arbitrary input', () => {
  let center: TestStatusCenter;
  const current = () => center;

  beforeAll(async () => {
    center = await startStatusCenter();
  });
  afterAll(async () => center?.stop());

  it('answers POST /v1/heartbeats with no 5xx and a JSON error body on every 4xx', async () => {
    const now = Date.now();
    const statuses: number[] = [];
    await fc.assert(
      fc.asyncProperty(
        encodedBody(heartbeatBody(now)),
        contentType,
        authorization(current, 'reporter'),
        async (body, type, auth) => {
          const request = {
            method: 'POST',
            body,
            headers: { 'content-type': type, authorization: auth() },
          };
          const response = await send(`${center.url}/v1/heartbeats`, request);
          statuses.push(response.status);
          assertContract(response, request);
        },
      ),
      { numRuns: NUM_RUNS.heartbeats },
    );
    // Not vacuous: a share of the inputs got past auth and validation into the store.
    expect(statuses.filter((status) => status === 202).length).toBeGreaterThan(
      NUM_RUNS.heartbeats / 20,
    );
  });

  it('accepts and counts in full every valid envelope, however many long distinct origins it names', async () => {
    const counted = async (ip: string) => {
      const headers = { authorization: `Bearer ${center.tokens.reader}` };
      const state = await send(
        `${center.url}/v1/ips/${encodeURIComponent(ip)}`,
        { method: 'GET', body: undefined, headers },
      );
      const minutes = (
        state.json as { minutes: { relay: Record<string, number> }[] }
      ).minutes;
      return minutes
        .flatMap((m) => Object.values(m.relay))
        .reduce((a, b) => a + b, 0);
    };
    await fc.assert(
      fc.asyncProperty(envelopeShape, async (shape) => {
        // Prepare: the envelope, and what the IP already has (a generated IP may repeat).
        const { ip, heartbeats } = envelopeOf(shape);
        const before = await counted(ip);
        // Act
        const headers = {
          'content-type': 'application/json',
          authorization: `Bearer ${center.tokens.reporter}`,
        };
        const response = await send(`${center.url}/v1/heartbeats`, {
          method: 'POST',
          body: JSON.stringify({ heartbeats }),
          headers,
        });
        // Assess
        expect(response.status, response.text.slice(0, 300)).toBe(202);
        expect((await counted(ip)) - before).toBe(heartbeats.length);
      }),
      {
        numRuns: 12,
        // Always try the largest rows: 500 heartbeats over the most distinct origins allowed, each of ~1 KB.
        examples: [
          [
            {
              ip: '192.0.2.250',
              size: HEARTBEAT_LIMITS.maxBatch,
              distinctOrigins: HEARTBEAT_LIMITS.maxOriginsPerIpMinute,
              hostLength: HEARTBEAT_LIMITS.maxOriginLength - 20,
              status: 'ok',
            },
          ],
        ],
      },
    );
  });

  it('answers POST /v1/reporter-tokens with no 5xx and a JSON error body on every 4xx', async () => {
    const statuses: number[] = [];
    await fc.assert(
      fc.asyncProperty(
        encodedBody(reporterTokenBody),
        contentType,
        authorization(current, 'admin'),
        async (body, type, auth) => {
          const request = {
            method: 'POST',
            body,
            headers: { 'content-type': type, authorization: auth() },
          };
          const response = await send(
            `${center.url}/v1/reporter-tokens`,
            request,
          );
          statuses.push(response.status);
          assertContract(response, request);
        },
      ),
      { numRuns: NUM_RUNS.reporterTokens },
    );
    expect(statuses.filter((status) => status === 201).length).toBeGreaterThan(
      NUM_RUNS.reporterTokens / 20,
    );
  });

  it("answers POST /v1/heartbeats with a machine token with no 5xx, and stores only its own IP's heartbeats", async () => {
    const ip = '192.0.2.240';
    const issued = await send(`${center.url}/v1/reporter-tokens`, {
      method: 'POST',
      body: JSON.stringify({ ip }),
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${center.tokens.admin}`,
      },
    });
    const token = (issued.json as { token: string }).token;
    const statuses: number[] = [];
    await fc.assert(
      fc.asyncProperty(
        encodedBody(heartbeatBody(Date.now())),
        fc.boolean(),
        async (body, own) => {
          // Half the bodies are rewritten to name the token's own IP, so some get past the IP check.
          const text =
            own && typeof body === 'string'
              ? body.replace(/"ip":"[^"]*"/g, `"ip":"${ip}"`)
              : body;
          const request = {
            method: 'POST',
            body: text,
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${token}`,
            },
          };
          const response = await send(`${center.url}/v1/heartbeats`, request);
          statuses.push(response.status);
          assertContract(response, request);
          if (response.status === 202)
            expect(
              typeof text === 'string' &&
                !/"ip":"(?!192\.0\.2\.240")/.test(text),
              String(text).slice(0, 300),
            ).toBe(true);
        },
      ),
      { numRuns: NUM_RUNS.machineHeartbeats },
    );
    expect(statuses.filter((status) => status === 202).length).toBeGreaterThan(
      0,
    );
    expect(statuses.filter((status) => status === 403).length).toBeGreaterThan(
      0,
    );
  });

  it('answers PUT /v1/bans/{ip} with no 5xx and a JSON error body on every 4xx', async () => {
    const statuses: number[] = [];
    await fc.assert(
      fc.asyncProperty(
        ipSegment,
        encodedBody(banBody),
        contentType,
        authorization(current, 'admin'),
        async (ip, body, type, auth) => {
          const request = {
            method: 'PUT',
            body,
            headers: { 'content-type': type, authorization: auth() },
          };
          const response = await send(`${center.url}/v1/bans/${ip}`, request);
          statuses.push(response.status);
          assertContract(response, { ip, ...request });
        },
      ),
      { numRuns: NUM_RUNS.bans },
    );
    expect(
      statuses.filter((status) => status === 200 || status === 201).length,
    ).toBeGreaterThan(NUM_RUNS.bans / 20);
  });
});
