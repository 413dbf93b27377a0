import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  parseAgentSpec,
  parseAgentsFile,
} from '../../../../clients/dispatcher/agents.js';
import { EXIT, HELP } from '../../../../clients/dispatcher/cli.js';
import type {
  BlocklistSnapshot,
  FetchLike,
} from '../../../../clients/dispatcher/index.js';
import packageJson from '../../../../package.json' with { type: 'json' };
import { JOB_FLAGS, runCli } from '../../../helpers/dispatcher-cli.js';
import { ban, blocklistBody } from '../../../helpers/dispatcher-fakes.js';

const AGENT = ['--agent', 'http://127.0.0.1:7001=203.0.113.7'];
const ENV = {
  RELAYWATCH_URL: 'http://127.0.0.1:3000',
  RELAYWATCH_READER_TOKEN: 'r',
  RELAYWATCH_AGENT_TOKEN: 'a',
};

/** A fetch that fails the test if the CLI tries to send anything. */
const noNetwork = async (): Promise<Response> => {
  throw new Error('the CLI must not send anything on a usage error');
};

describe('relaywatch-dispatch arguments', () => {
  it('prints help naming every flag and environment variable, and exits 0', async () => {
    const run = await runCli(['--help']);

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.stdout).toBe(HELP);
    for (const name of [
      '--id',
      '--source',
      '--target',
      '--agent ',
      '--agents-file',
      '--url',
      '--reader-token',
      '--timeout-ms',
      '--cache-file',
      '--max-stale-ms',
      '--min-healthy-share',
      '--agent-token',
      '--post-timeout-ms',
      '--dry-run',
      'RELAYWATCH_URL',
      'RELAYWATCH_READER_TOKEN',
      'RELAYWATCH_AGENT_TOKEN',
      'Exit codes',
    ]) {
      expect(HELP).toContain(name);
    }
  });

  it('prints the same help for -h', async () => {
    const run = await runCli(['-h'], { fetch: noNetwork });

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.stdout).toBe(HELP);
    for (const name of [
      '-h, --help',
      '--version',
      '--total-timeout-ms',
      '--max-attempts',
    ])
      expect(HELP).toContain(name);
  });

  it("notes each old millisecond flag under its flag, in the agent's words", () => {
    const lines = HELP.split('\n');
    for (const [flag, note] of [
      ['--timeout <duration>', '--timeout-ms'],
      ['--max-stale <duration>', '--max-stale-ms'],
      ['--post-timeout <duration>', '--post-timeout-ms'],
      ['--total-timeout <duration>', '--total-timeout-ms'],
    ]) {
      const at = lines.findIndex((line) => line.startsWith(`  ${flag}`));
      const next = lines
        .slice(at + 1)
        .findIndex((line) => line.startsWith('  -'));
      expect(lines.slice(at, at + 1 + next).join('\n')).toContain(
        `(formerly ${note}, in milliseconds, still read with a warning)`,
      );
    }
  });

  it('prints the package version for --version and sends nothing', async () => {
    const run = await runCli(['--version'], { fetch: noNetwork });

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.stdout).toBe(`relaywatch-dispatch ${packageJson.version}\n`);
  });

  it('documents every exit code in the help', () => {
    for (const [code, meaning] of [
      [EXIT.refused, 'every agent tried refused'],
      [EXIT.unreachable, 'every agent tried was unreachable'],
      [EXIT.notStarted, 'no agent could start the job'],
      [EXIT.badJob, 'refused the job as invalid (400)'],
    ] as const) {
      const line = HELP.split('\n').find((text) =>
        text.startsWith(`  ${code}  `),
      );
      expect(line).toContain(meaning);
    }
  });

  it.each<[string, string[], Record<string, string>, RegExp]>([
    [
      'the status center URL is missing',
      [...JOB_FLAGS, ...AGENT],
      { ...ENV, RELAYWATCH_URL: '' },
      /--url \(or RELAYWATCH_URL\) is required/,
    ],
    [
      'the reader token is missing',
      [...JOB_FLAGS, ...AGENT],
      { RELAYWATCH_URL: ENV.RELAYWATCH_URL, RELAYWATCH_AGENT_TOKEN: 'a' },
      /--reader-token \(or RELAYWATCH_READER_TOKEN\) is required/,
    ],
    [
      'the agent token is missing',
      [...JOB_FLAGS, ...AGENT],
      { RELAYWATCH_URL: ENV.RELAYWATCH_URL, RELAYWATCH_READER_TOKEN: 'r' },
      /--agent-token \(or RELAYWATCH_AGENT_TOKEN\) is required/,
    ],
    ['no agent is given', [...JOB_FLAGS], ENV, /at least one --agent/],
    [
      'an agent has no IP',
      [...JOB_FLAGS, '--agent', 'http://127.0.0.1:7001'],
      ENV,
      /expected <agent URL>=<machine IP>/,
    ],
    [
      'an agent IP is not an IP',
      [...JOB_FLAGS, '--agent', 'http://127.0.0.1:7001=relay-7'],
      ENV,
      /"relay-7" is not an IPv4 or IPv6 address/,
    ],
    [
      'an agent URL is not http',
      [...JOB_FLAGS, '--agent', 'ftp://127.0.0.1=203.0.113.7'],
      ENV,
      /agent URL must be http\(s\)/,
    ],
    [
      'the job id is missing',
      [...JOB_FLAGS.slice(2), ...AGENT],
      ENV,
      /--id is required/,
    ],
    [
      'a flag is unknown',
      [...JOB_FLAGS, ...AGENT, '--agnet', 'x'],
      ENV,
      /--agnet/,
    ],
    [
      'the panic share is not a number',
      [...JOB_FLAGS, ...AGENT, '--min-healthy-share', 'half'],
      ENV,
      /--min-healthy-share must be a number/,
    ],
    [
      'the panic share is out of range',
      [...JOB_FLAGS, ...AGENT, '--min-healthy-share', '2'],
      ENV,
      /--min-healthy-share: must be a number from 0 to 1/,
    ],
    [
      'the URL is not http',
      [...JOB_FLAGS, ...AGENT, '--url', 'ftp://x'],
      ENV,
      /--url \(or RELAYWATCH_URL\): must be an http\(s\) URL/,
    ],
    [
      'the staleness bound is not whole',
      [...JOB_FLAGS, ...AGENT, '--max-stale-ms', '1.5'],
      ENV,
      /--max-stale-ms: must be a whole number/,
    ],
    [
      'the post timeout is zero',
      [...JOB_FLAGS, ...AGENT, '--post-timeout-ms', '0'],
      ENV,
      /--post-timeout-ms must be a whole number/,
    ],
    [
      'the total timeout is not whole',
      [...JOB_FLAGS, ...AGENT, '--total-timeout-ms', '2.5'],
      ENV,
      /--total-timeout-ms must be a whole number of milliseconds/,
    ],
    [
      'the total timeout is too long for a timer',
      [...JOB_FLAGS, ...AGENT, '--total-timeout-ms', String(2 ** 31)],
      ENV,
      /--total-timeout-ms must be .*at most 2147483647/,
    ],
    [
      'the attempt limit is zero',
      [...JOB_FLAGS, ...AGENT, '--max-attempts', '0'],
      ENV,
      /--max-attempts must be a whole number of agents above 0/,
    ],
    [
      'the attempt limit is not a number',
      [...JOB_FLAGS, ...AGENT, '--max-attempts', 'all'],
      ENV,
      /--max-attempts must be a number/,
    ],
  ])(
    'exits 2 without sending anything when %s',
    async (_, argv, env, message) => {
      const run = await runCli(argv, { env, fetch: noNetwork });

      expect(run.code).toBe(EXIT.usage);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toContain('--help');
    },
  );

  it('exits 2 naming the agents file when it is not an array of agents', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatch-args-'));
    const file = join(dir, 'agents.json');
    await writeFile(
      file,
      JSON.stringify([
        { url: 'http://127.0.0.1:7001', ip: '203.0.113.7' },
        { url: 'http://x' },
      ]),
    );

    const run = await runCli([...JOB_FLAGS, '--agents-file', file], {
      env: ENV,
      fetch: noNetwork,
    });

    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain(`${file}[1]`);
  });
});

describe('duration flags, old millisecond flags and variables', () => {
  /** A status center with an empty list and agents that take every job; records each request. */
  const recordingFetch = (
    cached?: BlocklistSnapshot,
  ): FetchLike & { seen: { url: string; authorization?: string }[] } => {
    const seen: { url: string; authorization?: string }[] = [];
    const fetch = async (url: string, init: RequestInit) => {
      const headers = init.headers as Record<string, string>;
      seen.push({ url, authorization: headers.authorization });
      if (url.endsWith('/v1/blocklist')) {
        if (cached !== undefined) throw new TypeError('fetch failed');
        return Response.json(blocklistBody([]));
      }
      return Response.json({ state: 'flowing' }, { status: 201 });
    };
    return Object.assign(fetch, { seen });
  };

  /** What the dispatcher says on stderr when it refuses `argv` as a usage error. */
  const refusal = async (argv: readonly string[]) => {
    const run = await runCli([...JOB_FLAGS, ...AGENT, ...argv], {
      env: ENV,
      fetch: noNetwork,
    });
    expect(run.code).toBe(EXIT.usage);
    return run.stderr;
  };

  it('names --post-timeout, not the old millisecond flag, when a duration is out of range', async () => {
    for (const [argv, flag] of [
      [['--post-timeout', '0s'], '--post-timeout'],
      [['--post-timeout=0.1ms'], '--post-timeout'],
      [['--total-timeout', '30d'], '--total-timeout'],
      [['--timeout', '0s'], '--timeout'],
      [['--max-stale', '0'], '--max-stale'],
    ] as const) {
      const stderr = await refusal(argv);

      expect(stderr).toContain(
        `relaywatch-dispatch: ${flag} must be a duration above 0 and at most 2147483647ms`,
      );
      expect(stderr).not.toContain(`${flag}-ms`);
    }
  });

  it('refuses an out-of-range duration with one message, in the words the user wrote', async () => {
    for (const [argv, message] of [
      [
        ['--total-timeout', '30d'],
        '--total-timeout must be a duration above 0 and at most 2147483647ms (about 24.8d) (got "30d")',
      ],
      [
        ['--post-timeout', '0s'],
        '--post-timeout must be a duration above 0 and at most 2147483647ms (about 24.8d) (got "0s")',
      ],
      [
        ['--post-timeout-ms', '2147483648'],
        '--post-timeout-ms must be a whole number of milliseconds above 0 and at most 2147483647 (got 2147483648)',
      ],
    ] as const) {
      const stderr = await refusal(argv);

      expect(stderr).toContain(
        `relaywatch-dispatch: ${message}\nRun relaywatch-dispatch --help for usage.\n`,
      );
      expect(stderr.match(/must be/g)).toHaveLength(1);
    }
  });

  it('names --post-timeout-ms when the old flag is given a bad value', async () => {
    for (const [value, problem] of [
      ['0', 'must be a whole number of milliseconds above 0'],
      ['15s', 'must be a number of milliseconds (got "15s")'],
    ]) {
      const run = await runCli(
        [...JOB_FLAGS, ...AGENT, '--post-timeout-ms', value ?? ''],
        { env: ENV, fetch: noNetwork },
      );

      expect(run.code).toBe(EXIT.usage);
      expect(run.stderr).toContain(
        `relaywatch-dispatch: --post-timeout-ms ${problem}`,
      );
    }
  });

  it('still takes the old millisecond flag, with a warning naming the new one', async () => {
    const fetch = recordingFetch();

    const run = await runCli(
      [...JOB_FLAGS, ...AGENT, '--post-timeout-ms', '1500'],
      {
        env: ENV,
        fetch,
      },
    );

    expect(run.code).toBe(EXIT.dispatched);
    expect(run.output).toMatchObject({ outcome: 'dispatched' });
    expect(run.stderr).toContain(
      '--post-timeout-ms is deprecated; use --post-timeout instead',
    );
  });

  it('reads an old millisecond flag in milliseconds: --max-stale-ms 1500 is --max-stale 1.5s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatch-stale-'));
    const cacheFile = join(dir, 'blocklist.json');
    const savedAt = Date.parse('2026-09-01T12:00:00.000Z');
    const cached: BlocklistSnapshot = {
      fetchedAt: new Date(savedAt).toISOString(),
      etag: null,
      blocklist: blocklistBody([
        ban('203.0.113.7', { until: savedAt + 3_600_000 }),
      ]),
    };
    const statusAfter = async (argv: string[], ageMs: number) => {
      await writeFile(cacheFile, JSON.stringify(cached));
      const run = await runCli(
        [
          ...JOB_FLAGS,
          ...AGENT,
          '--cache-file',
          cacheFile,
          '--dry-run',
          ...argv,
        ],
        { env: ENV, fetch: recordingFetch(cached), now: () => savedAt + ageMs },
      );
      return run.output?.blocklist.status;
    };

    for (const argv of [
      ['--max-stale-ms', '1500'],
      ['--max-stale', '1.5s'],
      ['--max-stale', '1.5'],
    ]) {
      expect([
        await statusAfter(argv, 1_000),
        await statusAfter(argv, 2_000),
      ]).toEqual(['stale', 'failed-open']);
    }
  });

  it('reads the status center and the tokens from the variables, and the flags over them', async () => {
    const fromEnv = recordingFetch();
    const fromFlags = recordingFetch();

    const envRun = await runCli([...JOB_FLAGS, ...AGENT], {
      env: {
        RELAYWATCH_URL: 'http://status.example',
        RELAYWATCH_READER_TOKEN: 'reader-from-env',
        RELAYWATCH_AGENT_TOKEN: 'agent-from-env',
      },
      fetch: fromEnv,
    });
    const flagRun = await runCli(
      [
        ...JOB_FLAGS,
        ...AGENT,
        ...['--url', 'http://flag.example'],
        ...['--reader-token', 'reader-from-flag'],
        ...['--agent-token', 'agent-from-flag'],
      ],
      { env: ENV, fetch: fromFlags },
    );

    expect([envRun.code, flagRun.code]).toEqual([
      EXIT.dispatched,
      EXIT.dispatched,
    ]);
    expect(fromEnv.seen).toEqual([
      {
        url: 'http://status.example/v1/blocklist',
        authorization: 'Bearer reader-from-env',
      },
      {
        url: 'http://127.0.0.1:7001/relays',
        authorization: 'Bearer agent-from-env',
      },
    ]);
    expect(fromFlags.seen).toEqual([
      {
        url: 'http://flag.example/v1/blocklist',
        authorization: 'Bearer reader-from-flag',
      },
      {
        url: 'http://127.0.0.1:7001/relays',
        authorization: 'Bearer agent-from-flag',
      },
    ]);
  });

  it('names the variable when a bad value came from it', async () => {
    const run = await runCli([...JOB_FLAGS, ...AGENT], {
      env: { ...ENV, RELAYWATCH_URL: 'ftp://status.example' },
      fetch: noNetwork,
    });

    expect(run.code).toBe(EXIT.usage);
    expect(run.stderr).toContain('RELAYWATCH_URL');
    expect(run.stderr).toContain('must be an http(s) URL');
  });
});

describe('agent specs', () => {
  it('splits at the last "=" and canonicalises the IP', () => {
    expect(
      parseAgentSpec('http://127.0.0.1:7001/a?x=1=2001:DB8::7'),
    ).toMatchObject({ ok: false });
    expect(parseAgentSpec('http://127.0.0.1:7001/=2001:DB8:0::7')).toEqual({
      ok: true,
      agent: { url: 'http://127.0.0.1:7001', ip: '2001:db8::7' },
    });
  });

  it('reads an agents file of url/ip objects', () => {
    expect(
      parseAgentsFile(
        '[{"url":"http://127.0.0.1:7002","ip":"198.51.100.2"}]',
        'agents.json',
      ),
    ).toEqual({
      ok: true,
      agents: [{ url: 'http://127.0.0.1:7002', ip: '198.51.100.2' }],
    });
    expect(parseAgentsFile('{"agents":[]}', 'agents.json')).toMatchObject({
      ok: false,
      message: /JSON array/,
    });
    expect(parseAgentsFile('nope', 'agents.json')).toMatchObject({
      ok: false,
      message: /not valid JSON/,
    });
  });
});
