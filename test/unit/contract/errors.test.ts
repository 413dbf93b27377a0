import { describe, expect, it } from 'vitest';
import {
  AGENT_ERRORS,
  defaultErrorCode,
  errorBody,
  readRefusal,
  STATUS_CENTER_ERRORS,
} from '#contract/errors';

describe('the error body of the wire contract', () => {
  it('names every status center status with a code, and a 5xx without one internal', () => {
    // Act
    const codes = [400, 401, 403, 404, 409, 413, 415, 503, 500, 502].map(
      defaultErrorCode,
    );
    // Assess
    expect(codes).toEqual([
      'validation_failed',
      'unauthorized',
      'forbidden',
      'not_found',
      'conflict',
      'payload_too_large',
      'unsupported_media_type',
      'store_unavailable',
      'internal',
      'internal',
    ]);
  });

  it('spells every code in lower snake case, the form clients branch on', () => {
    for (const code of [
      ...Object.keys(STATUS_CENTER_ERRORS),
      ...Object.keys(AGENT_ERRORS),
    ])
      expect(code).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  it('writes issues only when there are some', () => {
    expect(errorBody('not_found', 'no ban in force for 192.0.2.7')).toEqual({
      code: 'not_found',
      error: 'no ban in force for 192.0.2.7',
    });
    expect(
      errorBody('validation_failed', 'invalid ban', [
        { path: 'durationSeconds', message: 'must be at most 2592000' },
      ]),
    ).toEqual({
      code: 'validation_failed',
      error: 'invalid ban',
      issues: [{ path: 'durationSeconds', message: 'must be at most 2592000' }],
    });
  });

  it('reads a refusal with its code, its sentence and its issues, keeping nothing else', () => {
    // Act
    const refusal = readRefusal({
      code: 'relay_failed',
      error: 'the relay failed before it flowed',
      status: 'connect_failed',
    });
    // Assess
    expect(refusal).toEqual({
      code: 'relay_failed',
      error: 'the relay failed before it flowed',
      issues: [],
    });
  });

  it('reads the code of an answer older than the contract from its "error" field', () => {
    expect(readRefusal({ error: 'relay_limit', issues: [] })).toEqual({
      code: 'relay_limit',
      error: null,
      issues: [],
    });
    expect(readRefusal({ error: 'no ban in force for 192.0.2.7' })).toEqual({
      code: null,
      error: 'no ban in force for 192.0.2.7',
      issues: [],
    });
  });

  it.each([
    null,
    'bad gateway',
    42,
    { message: 'Not Found' },
    { code: 7, error: ['x'] },
  ])('reads %j without throwing, with no code', (body) => {
    expect(readRefusal(body).code).toBeNull();
  });
});
