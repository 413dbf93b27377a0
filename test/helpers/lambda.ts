import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { ApiRuntime } from '../../functions/http/api-runtime.js';
import type { HttpResponse } from '../../functions/http/responses.js';
import type { HttpRoute } from '../../functions/routes.js';
import { entryHandler } from '../../infra/local/entries.js';

/** An API route's function as Lambda calls it. */
export type ApiLambda = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<HttpResponse>;

/**
 * The function a route entry serves with `runtime`, got the way the local
 * status center gets it (its module's createHandler): tests pass the runtime
 * they built (another endpoint, a fake client, a fixed clock) instead of
 * stubbing an environment.
 */
export function apiHandlerOf(
  route: Pick<HttpRoute, 'entry'>,
  runtime: ApiRuntime,
): Promise<ApiLambda> {
  return entryHandler<ApiRuntime, ApiLambda>(route.entry, runtime);
}

/**
 * The API Gateway v2 (HTTP API) event of one request to `route`: path
 * parameters are filled into the path, `body` is sent as is when a string and
 * as JSON otherwise, with a JSON content type unless `contentType` says else.
 */
export function apiEvent(
  route: Pick<HttpRoute, 'method' | 'path'>,
  options: {
    token?: string | undefined;
    body?: unknown;
    contentType?: string;
    base64?: boolean;
    pathParameters?: Record<string, string>;
    requestId?: string;
  } = {},
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  if (options.token !== undefined)
    headers.authorization = `Bearer ${options.token}`;
  if (options.contentType !== undefined)
    headers['content-type'] = options.contentType;
  else if (options.body !== undefined)
    headers['content-type'] = 'application/json';
  const params = options.pathParameters;
  const rawPath = route.path.replace(
    /\{(\w+)\}/g,
    (whole, name: string) => params?.[name] ?? whole,
  );
  return {
    version: '2.0',
    routeKey: `${route.method} ${route.path}`,
    rawPath,
    rawQueryString: '',
    headers,
    ...(params === undefined ? {} : { pathParameters: params }),
    requestContext: {
      requestId: options.requestId ?? 'test',
      http: { method: route.method, path: rawPath },
    } as APIGatewayProxyEventV2['requestContext'],
    isBase64Encoded: options.base64 ?? false,
    ...(options.body === undefined
      ? {}
      : {
          body:
            typeof options.body === 'string'
              ? options.body
              : JSON.stringify(options.body),
        }),
  };
}
