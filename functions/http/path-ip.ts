import { canonicalIp } from '../core/ip.js';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { badRequest } from './errors.js';

/** The {ip} path parameter in its canonical spelling, or a 400 naming it. */
export function pathIp(event: APIGatewayProxyEventV2): string {
  const raw = decodeURIComponent(event.pathParameters?.ip ?? '');
  const ip = canonicalIp(raw);
  if (!ip) throw badRequest('invalid ip', [{ path: 'ip', message: `"${raw}" is not an IPv4 or IPv6 address` }]);
  return ip;
}
