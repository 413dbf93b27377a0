import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpRequest } from 'node:http';
import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';

/**
 * A metering proxy in front of DynamoDB Local: DynamoDB Local does not check
 * signatures, so the proxy can ask for ConsumedCapacity on every call and add
 * up what comes back. Used by the bench and by tests that assert costs.
 */
export type Meter = {
  calls: Record<string, number>;
  /** Per operation, the wall time (ms) during which at least one call of it was in flight. */
  busyMs: Record<string, number>;
  readUnits: number;
  writeUnits: number;
  putRequests: number;
  /** Each TransactWriteItems call's number of writes, in the order the calls came. */
  transactionWrites: number[];
  /** Each TransactWriteItems call's bytes of the items it puts (DynamoDB's item size), in the same order. */
  transactionPutBytes: number[];
  /**
   * Each TransactWriteItems call's TransactItems as sent on the wire (DynamoDB
   * JSON), in the same order, so the bench can replay them item for item. The
   * SDK's type, whose only difference from the wire is binary values (bytes,
   * not base64), which no transaction here carries.
   */
  transactions: TransactWriteItem[][];
  largestItemBytes: number;
  /** Per partition key, the UpdateItem calls on it that succeeded (a failed condition changes nothing). */
  updatesOf: Record<string, number>;
  /** Each call (the first MAX_SPANS): its operation, its wall times (ms since the count started), and for a Query, GetItem or UpdateItem the partition it named. */
  spans: Array<{ op: string; start: number; end: number; partition?: string }>;
  /** performance.now() when the count started. */
  startedAt: number;
};
/** Calls whose times a count keeps: a 100,000-machine fleet write makes more than any timeline needs. */
const MAX_SPANS = 20_000;
const emptyMeter = (): Meter => ({
  spans: [],
  startedAt: performance.now(),
  calls: {},
  busyMs: {},
  readUnits: 0,
  writeUnits: 0,
  putRequests: 0,
  transactionWrites: [],
  transactionPutBytes: [],
  transactions: [],
  largestItemBytes: 0,
  updatesOf: {},
});

type WireValue = Record<string, unknown>;
const utf8 = (text: unknown) => Buffer.byteLength(String(text));
/** A number's stored size: about one byte per two significant digits, plus one. */
const numberBytes = (text: unknown) =>
  Math.ceil(
    String(text)
      .replace(/^-|\.|e.*$/gi, '')
      .replace(/^0+/, '').length / 2,
  ) + 1;

/** An attribute value's size as DynamoDB counts it (wire JSON: {"S": ...}, {"B": base64}, ...). */
function valueBytes(value: WireValue): number {
  if ('S' in value) return utf8(value.S);
  if ('N' in value) return numberBytes(value.N);
  if ('B' in value) return Buffer.from(String(value.B), 'base64').length;
  if ('BOOL' in value || 'NULL' in value) return 1;
  if ('SS' in value)
    return (value.SS as string[]).reduce((sum, v) => sum + utf8(v), 0);
  if ('NS' in value)
    return (value.NS as string[]).reduce((sum, v) => sum + numberBytes(v), 0);
  if ('BS' in value)
    return (value.BS as string[]).reduce(
      (sum, v) => sum + Buffer.from(v, 'base64').length,
      0,
    );
  if ('L' in value)
    return (
      3 +
      (value.L as WireValue[]).reduce((sum, v) => sum + 1 + valueBytes(v), 0)
    );
  if ('M' in value) return 3 + itemBytes(value.M as Record<string, WireValue>);
  return 0;
}

/** An item's size as DynamoDB counts it: attribute names plus values. */
export function itemBytes(item: Record<string, WireValue>): number {
  return Object.entries(item).reduce(
    (sum, [name, value]) => sum + utf8(name) + valueBytes(value),
    0,
  );
}

/** Every item a write request puts. */
function putItems(
  op: string,
  body: Record<string, unknown>,
): Array<Record<string, WireValue>> {
  if (op === 'PutItem') return [body.Item as Record<string, WireValue>];
  if (op === 'BatchWriteItem') {
    return Object.values(
      (body.RequestItems ?? {}) as Record<
        string,
        Array<{ PutRequest?: { Item: Record<string, WireValue> } }>
      >,
    )
      .flat()
      .flatMap((r) => (r.PutRequest ? [r.PutRequest.Item] : []));
  }
  if (op === 'TransactWriteItems') {
    return (
      (body.TransactItems ?? []) as Array<{
        Put?: { Item: Record<string, WireValue> };
      }>
    ).flatMap((t) => (t.Put ? [t.Put.Item] : []));
  }
  return [];
}
/** DynamoDB operations that write (their units are write units). */
export const WRITE_OPS: ReadonlySet<string> = new Set([
  'BatchWriteItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'TransactWriteItems',
]);
const METERED_OPS = new Set([
  ...WRITE_OPS,
  'GetItem',
  'BatchGetItem',
  'Query',
  'Scan',
  'TransactGetItems',
]);

/**
 * What DynamoDB charges for a transaction: 2 WRU per item per KB. DynamoDB
 * Local reports far less (4 for ten 1.5 KB puts), so the proxy counts it
 * from the request: a put by its item's size, any other write (an update or
 * delete of a small item here) as one KB.
 */
function transactionWriteUnits(body: Record<string, unknown>): number {
  return (
    (body.TransactItems ?? []) as Array<{
      Put?: { Item: Record<string, WireValue> };
    }>
  ).reduce(
    (sum, write) =>
      sum +
      2 *
        (write.Put
          ? Math.max(1, Math.ceil(itemBytes(write.Put.Item) / 1024))
          : 1),
    0,
  );
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function capacityOf(body: Record<string, unknown>): number {
  const consumed = body.ConsumedCapacity;
  const list = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
  return list.reduce(
    (sum: number, c: { CapacityUnits?: number }) =>
      sum + (c.CapacityUnits ?? 0),
    0,
  );
}

/** The partition key a GetItem/UpdateItem names. */
const keyPartitionOf = (body: Record<string, unknown>) =>
  (body.Key as Record<string, { S?: string }> | undefined)?.pk?.S;

/** The partition a Query (its `:pk`) or a GetItem/UpdateItem (its key) names, shortened. */
function partitionOf(body: Record<string, unknown>): { partition?: string } {
  const values = body.ExpressionAttributeValues as
    | Record<string, { S?: string }>
    | undefined;
  const partition = values?.[':pk']?.S ?? keyPartitionOf(body);
  return partition === undefined ? {} : { partition: partition.slice(0, 16) };
}

export async function startMeteringProxy(upstreamPort: number) {
  let meter = emptyMeter();
  const inFlight: Record<string, number> = {};
  const busySince: Record<string, number> = {};
  const server = createServer(
    async (req: IncomingMessage, res: ServerResponse) => {
      const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      let payload = await readAll(req);
      let sent: Record<string, unknown> = {};
      if (METERED_OPS.has(op)) {
        const body = JSON.parse(payload.toString('utf8')) as Record<
          string,
          unknown
        >;
        sent = body;
        body.ReturnConsumedCapacity = 'TOTAL';
        let putBytes = 0;
        for (const item of putItems(op, body)) {
          const bytes = itemBytes(item);
          putBytes += bytes;
          meter.largestItemBytes = Math.max(meter.largestItemBytes, bytes);
        }
        if (op === 'TransactWriteItems') {
          const items = (body.TransactItems ?? []) as TransactWriteItem[];
          meter.transactionWrites.push(items.length);
          meter.transactionPutBytes.push(putBytes);
          // The parsed request itself: nothing changes it after this.
          meter.transactions.push(items);
        }
        if (op === 'BatchWriteItem') {
          const requests = Object.values(
            (body.RequestItems ?? {}) as Record<string, unknown[]>,
          ).flat();
          meter.putRequests += requests.filter(
            (r) => typeof r === 'object' && r !== null && 'PutRequest' in r,
          ).length;
        }
        payload = Buffer.from(JSON.stringify(body));
      }
      meter.calls[op] = (meter.calls[op] ?? 0) + 1;
      const counted = meter;
      const start = performance.now();
      if ((inFlight[op] ?? 0) === 0) busySince[op] = start;
      inFlight[op] = (inFlight[op] ?? 0) + 1;
      const done = () => {
        if (counted.spans.length < MAX_SPANS)
          counted.spans.push({
            op,
            start: start - counted.startedAt,
            end: performance.now() - counted.startedAt,
            ...partitionOf(sent),
          });
        inFlight[op] = (inFlight[op] ?? 1) - 1;
        if (inFlight[op] === 0)
          counted.busyMs[op] =
            (counted.busyMs[op] ?? 0) +
            performance.now() -
            (busySince[op] ?? performance.now());
      };
      const upstream = httpRequest(
        {
          host: '127.0.0.1',
          port: upstreamPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, 'content-length': String(payload.length) },
        },
        async (response) => {
          const answer = await readAll(response);
          if (METERED_OPS.has(op) && response.statusCode === 200) {
            const units =
              op === 'TransactWriteItems'
                ? transactionWriteUnits(sent)
                : capacityOf(JSON.parse(answer.toString('utf8')));
            if (WRITE_OPS.has(op)) meter.writeUnits += units;
            else meter.readUnits += units;
          }
          const updated = keyPartitionOf(sent);
          if (
            op === 'UpdateItem' &&
            response.statusCode === 200 &&
            updated !== undefined
          )
            counted.updatesOf[updated] = (counted.updatesOf[updated] ?? 0) + 1;
          done();
          res.writeHead(response.statusCode ?? 502, response.headers);
          res.end(answer);
        },
      );
      upstream.on('error', () => {
        done();
        res.writeHead(502);
        res.end();
      });
      upstream.end(payload);
    },
  );
  await new Promise<void>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve()),
  );
  const address = server.address();
  return {
    endpoint: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    /** Starts a fresh count and returns the previous one. */
    reset(): Meter {
      const previous = meter;
      meter = emptyMeter();
      return previous;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The calls of a count as a text timeline: per operation, its calls, and the
 * stretches of wall time during which at least one was in flight.
 */
export function timelineOf(meter: Meter): string {
  const byOp = new Map<string, Meter['spans']>();
  for (const span of meter.spans) {
    const list = byOp.get(span.op) ?? [];
    list.push(span);
    byOp.set(span.op, list);
  }
  const lines: string[] = [];
  for (const [op, spans] of byOp) {
    spans.sort((a, b) => a.start - b.start);
    const stretches: Array<[number, number, number]> = [];
    for (const { start, end } of spans) {
      const last = stretches.at(-1);
      if (last && start <= last[1]) {
        last[1] = Math.max(last[1], end);
        last[2]++;
      } else stretches.push([start, end, 1]);
    }
    // A few calls are listed one by one too: how long each took.
    const each =
      spans.length <= 30
        ? `; each ${spans.map(({ start, end, partition }) => `${(end - start).toFixed(0)}${partition === undefined ? '' : ` (${partition} at ${start.toFixed(0)})`}`).join(', ')} ms`
        : '';
    lines.push(
      `${op}: ${spans.length} calls; ${stretches
        .map(([from, to, n]) => `${from.toFixed(0)}-${to.toFixed(0)} ms (${n})`)
        .join(', ')}${each}`,
    );
  }
  return lines.join('\n');
}

export type MeteringProxy = Awaited<ReturnType<typeof startMeteringProxy>>;
