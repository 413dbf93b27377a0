import { describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../../../clients/cli/cli.js';

/** Runs the CLI against one canned answer; no network. */
async function runAgainst(argv: string[], status: number, body: unknown) {
  let stderr = '';
  const code = await runCli({
    argv,
    env: { RELAYWATCH_URL: 'http://status.test', RELAYWATCH_TOKEN: 't' },
    stdout: () => {},
    stderr: (text) => {
      stderr += text;
    },
    fetch: async () =>
      new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json' },
      }),
  });
  return { code, stderr };
}

describe('the CLI reading the status center error body', () => {
  it('says "no ban in force" when the ban route answers not_found', async () => {
    // Act
    const run = await runAgainst(['unban', '192.0.2.7'], 404, {
      code: 'not_found',
      error: 'no ban in force for 192.0.2.7',
    });
    // Assess
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toBe('relaywatch: no ban in force for 192.0.2.7\n');
  });

  it('does not mistake a missing route for a missing ban', async () => {
    // Act
    const run = await runAgainst(['unban', '192.0.2.7'], 404, {
      message: 'Not Found',
    });
    // Assess
    expect(run.code).toBe(EXIT.notFound);
    expect(run.stderr).toContain('not found (404): Not Found');
    expect(run.stderr).not.toContain('no ban in force');
  });

  it('prints the sentence, the code and the issues of a refusal', async () => {
    // Act
    const run = await runAgainst(['bans'], 403, {
      code: 'forbidden',
      error: 'this route needs the reader role; the token is a reporter token',
    });
    // Assess
    expect(run.code).toBe(EXIT.auth);
    expect(run.stderr).toContain(
      'this route needs the reader role; the token is a reporter token [forbidden]',
    );
  });
});
