/**
 * The OpenAPI 3.1 document of the status center, built from the route table
 * (methods, paths, roles) and the zod schemas the handlers validate with, so
 * it cannot say something the code does not do. docs/openapi.json is this
 * document, written by `npm run openapi`; a test fails when they differ.
 */

import * as z from 'zod/mini';
import type { StatusCenterErrorCode } from '#contract/errors';
import { STATUS_CENTER_ERRORS } from '#contract/errors';
import {
  blocklistEntrySchema,
  blocklistResponseSchema,
  manualBanSchema,
} from './core/blocklist.js';
import { heartbeatEnvelopeSchema, heartbeatSchema } from './core/heartbeat.js';
import {
  eventQuerySchema,
  reporterTokenRequestSchema,
} from './core/requests.js';
import { publicRoutes, ROLE_ADMITS, routes } from './routes.js';

type Schema = z.core.$ZodType;
type RouteDoc = {
  summary: string;
  /** The success answer: status and, when it has a fixed shape, its schema. */
  success: {
    status: 200 | 201 | 202 | 204;
    description: string;
    schema?: Schema;
    contentType?: string;
  };
  body?: Schema;
  query?: Schema;
  /** Also answers 304 to If-None-Match. */
  conditional?: boolean;
};

const heartbeatsAnswer = z.object({
  accepted: z.number(),
  stale: z.optional(z.number()),
});

/** Every route documented: a route added to routes.ts without a line here does not compile. */
const DOCS: Record<keyof typeof routes | keyof typeof publicRoutes, RouteDoc> =
  {
    postHeartbeats: {
      summary:
        'Report heartbeats: one heartbeat, or {"heartbeats": [...]} with an optional batchId and lease',
      body: z.union([heartbeatSchema, heartbeatEnvelopeSchema]),
      success: {
        status: 202,
        description:
          'Stored; stale counts heartbeats whose minute had already closed',
        schema: heartbeatsAnswer,
      },
    },
    getBlocklist: {
      summary: 'The bans in force',
      success: {
        status: 200,
        description: 'The blocklist, with a strong ETag',
        schema: blocklistResponseSchema,
      },
      conditional: true,
    },
    getIp: {
      summary: 'One IP: its ban in force, if any, and its recent minutes',
      success: { status: 200, description: "The IP's view" },
    },
    putBan: {
      summary: 'Ban an IP by hand, replacing any ban in force',
      body: manualBanSchema,
      success: {
        status: 201,
        description: 'Banned (200 when it replaced a ban in force)',
        schema: blocklistEntrySchema,
      },
    },
    deleteBan: {
      summary: 'Lift the ban of an IP',
      success: { status: 204, description: 'Lifted' },
    },
    getEvents: {
      summary: 'The audit trail, newest first',
      query: eventQuerySchema,
      success: { status: 200, description: '{"since", "events": [...]}' },
    },
    getFleet: {
      summary:
        'The fleet as the last aggregation saw it: reporting, banned, silent IPs, outages, flags, lag',
      success: { status: 200, description: 'The fleet view' },
    },
    postReporterToken: {
      summary: 'Issue a reporter token that speaks for one machine IP only',
      body: reporterTokenRequestSchema,
      success: {
        status: 201,
        description: '{"ip", "token"}',
        schema: z.object({ ip: z.string(), token: z.string() }),
      },
    },
    deleteReporterTokens: {
      summary: 'Revoke every reporter token issued for an IP',
      success: { status: 204, description: 'Revoked' },
    },
    getDashboard: {
      summary: 'The dashboard page (it asks for a reader token)',
      success: { status: 200, description: 'HTML', contentType: 'text/html' },
    },
    getOpenapi: {
      summary: 'This document',
      success: {
        status: 200,
        description: 'OpenAPI 3.1',
        contentType: 'application/json',
      },
    },
  };

const jsonSchema = (schema: Schema, io: 'input' | 'output') => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Record<string, unknown>;
  return rest;
};

/** An error answer; its description names the body's code(s). */
const errorResponse = (
  description: string,
  codes: readonly StatusCenterErrorCode[],
) => ({
  description: `${description} (code ${codes.join(' or ')})`,
  content: {
    'application/json': { schema: { $ref: '#/components/schemas/Error' } },
  },
});

/** API Gateway's query parameters of a zod object: each property, optional unless required. */
function queryParameters(schema: Schema) {
  const json = jsonSchema(schema, 'input') as {
    properties?: Record<string, unknown>;
    required?: string[];
  };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    schema: property,
  }));
}

function operation(
  name: keyof typeof DOCS,
  path: string,
  roles: readonly string[] | undefined,
) {
  const doc = DOCS[name];
  const pathParameters = [...path.matchAll(/\{(\w+)\}/g)].map(([, param]) => ({
    name: param,
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const parameters = [
    ...pathParameters,
    ...(doc.query ? queryParameters(doc.query) : []),
  ];
  const success = doc.success;
  const responses: Record<string, unknown> = {
    [success.status]: {
      description: success.description,
      ...(success.status === 204
        ? {}
        : {
            content: {
              [success.contentType ?? 'application/json']: success.schema
                ? { schema: jsonSchema(success.schema, 'output') }
                : {},
            },
          }),
    },
  };
  if (doc.conditional)
    responses['304'] = {
      description: 'Not modified (If-None-Match matched the ETag)',
    };
  if (doc.body) {
    responses['400'] = errorResponse(
      'Invalid body: issues name each bad field',
      ['validation_failed', 'invalid_json'],
    );
    responses['413'] = errorResponse('Body over the limit', [
      'payload_too_large',
    ]);
    responses['415'] = errorResponse('Body not declared as application/json', [
      'unsupported_media_type',
    ]);
  } else if (doc.query || parameters.length) {
    responses['400'] = errorResponse('Invalid parameter: issues name it', [
      'validation_failed',
    ]);
  }
  if (roles) {
    responses['401'] = errorResponse('Missing or unknown token', [
      'unauthorized',
    ]);
    responses['403'] = errorResponse("The token's role may not do this", [
      'forbidden',
    ]);
    responses['503'] = errorResponse('Storage busy: retry the same request', [
      'store_unavailable',
    ]);
  }
  return {
    operationId: name,
    summary: doc.summary,
    ...(roles
      ? {
          description: `Roles: ${roles.join(', ')}.`,
          'x-relaywatch-roles': [...roles],
          security: [{ bearer: [] }],
        }
      : { security: [] }),
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': { schema: jsonSchema(doc.body, 'input') },
            },
          },
        }
      : {}),
    responses,
  };
}

export function buildOpenApi() {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (
    name: keyof typeof DOCS,
    method: string,
    path: string,
    roles?: readonly string[],
  ) => {
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[method.toLowerCase()] = operation(
      name,
      path,
      roles,
    );
  };
  for (const [name, route] of Object.entries(routes))
    add(
      name as keyof typeof routes,
      route.method,
      route.path,
      ROLE_ADMITS[route.role],
    );
  for (const [name, route] of Object.entries(publicRoutes))
    add(name as keyof typeof publicRoutes, route.method, route.path);
  const sorted = Object.fromEntries(
    Object.entries(paths).sort(([a], [b]) => a.localeCompare(b)),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'relaywatch status center',
      version: '1',
      description:
        'Relay agents report heartbeats; the status center bans machine IPs that cannot reach origins others reach; dispatchers read the blocklist. Every route but the public ones takes "Authorization: Bearer <token>" of a role it admits (reporter, reader, admin; admin may do what a reader may).',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths: sorted,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A role token, or a per-machine reporter token',
        },
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['code', 'error'],
          properties: {
            code: {
              type: 'string',
              enum: Object.keys(STATUS_CENTER_ERRORS),
              description:
                'Stable machine code: programs branch on it, its meaning never changes',
            },
            error: {
              type: 'string',
              description:
                'What went wrong, in a sentence for people; its wording may change',
            },
            issues: {
              type: 'array',
              items: {
                type: 'object',
                required: ['path', 'message'],
                properties: {
                  path: { type: 'string' },
                  message: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
  };
}
