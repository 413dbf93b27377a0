import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { canonicalIp } from '#contract/ip';
import { badRequest } from './errors.js';

/** The {ip} path parameter in its canonical spelling, or a 400 naming it. */
export function pathIp(event: APIGatewayProxyEventV2): string {
  const encoded = event.pathParameters?.ip ?? '';
  let raw: string;
  try {
    raw = decodeURIComponent(encoded);
  } catch {
    // "%", "%zz" or a cut UTF-8 sequence: a client mistake, not a 500.
    throw badRequest('invalid ip', [
      { path: 'ip', message: `"${encoded}" is not valid percent-encoding` },
    ]);
  }
  const ip = canonicalIp(raw);
  if (!ip)
    throw badRequest('invalid ip', [
      { path: 'ip', message: `"${raw}" is not an IPv4 or IPv6 address` },
    ]);
  return ip;
}
