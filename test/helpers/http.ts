/** A response read whole: status, headers, the text, and the JSON when the text is JSON. */
export async function readResponse(response: Response) {
  const text = await response.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/**
 * One request to `url`, the answer read whole: a body that is not text goes
 * as JSON, and `token` as a bearer token unless `headers` name their own.
 */
export async function sendRequest(
  url: string,
  method: string,
  options: {
    token?: string;
    body?: unknown;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization ??= `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body =
      typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, {
    method,
    headers,
    body,
    ...(options.timeoutMs === undefined
      ? {}
      : { signal: AbortSignal.timeout(options.timeoutMs) }),
  });
  return readResponse(response);
}
