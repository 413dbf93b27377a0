import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type HttpResponse = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
};

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
};

export function json(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponse {
  return {
    statusCode,
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify(body),
  };
}

export const ok = (body: unknown, headers?: Record<string, string>) =>
  json(200, body, headers);
export const created = (body: unknown) => json(201, body);
export const accepted = (body: unknown) => json(202, body);
export const noContent = (): HttpResponse => ({
  statusCode: 204,
  headers: { 'cache-control': 'no-store' },
});
export const notModified = (etag: string): HttpResponse => ({
  statusCode: 304,
  headers: { etag, 'cache-control': 'no-cache' },
});
