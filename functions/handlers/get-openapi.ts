import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { buildOpenApi } from '../openapi.js';

/**
 * GET /v1/openapi.json (public): the API's OpenAPI 3.1 document. Public like
 * the dashboard page: it describes the routes and holds no secret, and tools
 * (code generators, API browsers) load it without a token. No table, no secret.
 */
export function createHandler() {
  const body = JSON.stringify(buildOpenApi());
  return async (): Promise<APIGatewayProxyStructuredResultV2> => ({
    statusCode: 200,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    },
    body,
  });
}

export const handler = createHandler();
