import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../../functions/openapi.js';
import {
  publicRoutes,
  ROLE_ADMITS,
  routes,
} from '../../../functions/routes.js';

const COMMITTED = JSON.parse(
  readFileSync(new URL('../../../docs/openapi.json', import.meta.url), 'utf8'),
);

type Operation = {
  operationId: string;
  security: unknown[];
  'x-relaywatch-roles'?: string[];
  requestBody?: any;
  parameters?: any[];
  responses: Record<string, any>;
};
const operationOf = (doc: any, method: string, path: string): Operation =>
  doc.paths[path]?.[method.toLowerCase()];

describe('the OpenAPI document', () => {
  it('is what docs/openapi.json holds (run npm run openapi after changing a route, its roles or a schema)', () => {
    expect(buildOpenApi()).toEqual(COMMITTED);
  });

  it('has every route of routes.ts with the roles it admits, and every public route without security', () => {
    const doc = buildOpenApi();
    for (const [name, route] of Object.entries(routes)) {
      const operation = operationOf(doc, route.method, route.path);
      expect(operation?.operationId, name).toBe(name);
      expect(operation['x-relaywatch-roles']).toEqual(ROLE_ADMITS[route.role]);
      expect(operation.security).toEqual([{ bearer: [] }]);
    }
    for (const [name, route] of Object.entries(publicRoutes)) {
      expect(operationOf(doc, route.method, route.path)).toMatchObject({
        operationId: name,
        security: [],
      });
    }
    const operations = Object.values(doc.paths).flatMap((methods) =>
      Object.keys(methods),
    );
    expect(operations).toHaveLength(
      Object.keys(routes).length + Object.keys(publicRoutes).length,
    );
  });

  it('describes bodies from the zod schemas the handlers validate with', () => {
    const doc = buildOpenApi();
    const ban = operationOf(doc, 'PUT', routes.putBan.path).requestBody.content[
      'application/json'
    ].schema;
    expect(ban).toMatchObject({
      type: 'object',
      required: ['durationSeconds'],
      properties: {
        durationSeconds: { type: 'integer', maximum: 30 * 86_400 },
      },
    });
    const heartbeats = operationOf(doc, 'POST', routes.postHeartbeats.path)
      .requestBody.content['application/json'].schema;
    expect(heartbeats.anyOf).toHaveLength(2);
    expect(JSON.stringify(heartbeats)).toContain('connect_failed');
    const events = operationOf(
      doc,
      'GET',
      routes.getEvents.path,
    ).parameters?.map((p) => `${p.in} ${p.name}`);
    expect(events).toEqual(['query ip', 'query since', 'query limit']);
    expect(
      operationOf(doc, 'GET', routes.getIp.path).parameters?.[0],
    ).toMatchObject({ name: 'ip', in: 'path', required: true });
    expect(
      Object.keys(operationOf(doc, 'GET', routes.getBlocklist.path).responses),
    ).toContain('304');
  });
});
