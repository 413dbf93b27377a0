import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DASHBOARD } from '../http/dashboard-page.js';

/**
 * GET /dashboard (public): the dashboard page. No token and no table: the page
 * itself asks for a reader token and reads the JSON API with it, so this
 * function holds no secret and cannot read the table.
 */
export function createHandler() {
  return async (): Promise<APIGatewayProxyStructuredResultV2> => ({
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      // The page is static; revalidating keeps an upgraded dashboard from being served stale.
      'cache-control': 'no-cache',
      'content-security-policy': DASHBOARD.contentSecurityPolicy,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
    body: DASHBOARD.html,
  });
}

export const handler = createHandler();
