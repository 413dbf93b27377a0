import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as httpRequest } from 'node:http';

/**
 * A metering proxy in front of DynamoDB Local: DynamoDB Local does not check
 * signatures, so the proxy can ask for ConsumedCapacity on every call and add
 * up what comes back. Used by the bench and by tests that assert costs.
 */
export type Meter = { calls: Record<string, number>; readUnits: number; writeUnits: number; putRequests: number };
const emptyMeter = (): Meter => ({ calls: {}, readUnits: 0, writeUnits: 0, putRequests: 0 });
const WRITE_OPS = new Set(['BatchWriteItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems']);
const METERED_OPS = new Set([...WRITE_OPS, 'GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);

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
  return list.reduce((sum: number, c: { CapacityUnits?: number }) => sum + (c.CapacityUnits ?? 0), 0);
}

export async function startMeteringProxy(upstreamPort: number) {
  let meter = emptyMeter();
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    let payload = await readAll(req);
    if (METERED_OPS.has(op)) {
      const body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      body.ReturnConsumedCapacity = 'TOTAL';
      if (op === 'BatchWriteItem') {
        const requests = Object.values((body.RequestItems ?? {}) as Record<string, unknown[]>).flat();
        meter.putRequests += requests.filter((r) => typeof r === 'object' && r !== null && 'PutRequest' in r).length;
      }
      payload = Buffer.from(JSON.stringify(body));
    }
    meter.calls[op] = (meter.calls[op] ?? 0) + 1;
    const upstream = httpRequest(
      { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(payload.length) } },
      async (response) => {
        const answer = await readAll(response);
        if (METERED_OPS.has(op) && response.statusCode === 200) {
          const units = capacityOf(JSON.parse(answer.toString('utf8')));
          if (WRITE_OPS.has(op)) meter.writeUnits += units;
          else meter.readUnits += units;
        }
        res.writeHead(response.statusCode ?? 502, response.headers);
        res.end(answer);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    upstream.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
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


export type MeteringProxy = Awaited<ReturnType<typeof startMeteringProxy>>;
