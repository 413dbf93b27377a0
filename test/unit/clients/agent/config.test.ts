import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  helpText,
  parseAgentConfig,
  parseProbeTarget,
  SETTINGS,
} from '../../../../clients/agent/config.js';
import type { Setting } from '../../../../clients/settings.js';

const REQUIRED = {
  RELAYWATCH_URL: 'https://status.example/prod/',
  RELAYWATCH_REPORTER_TOKEN: 'reporter-token',
  RELAYWATCH_AGENT_TOKEN: 'agent-token-0123456789',
};

/** The required settings but the status center URL, for the tests of its old names. */
const { RELAYWATCH_URL: _url, ...WITHOUT_URL } = REQUIRED;

/** parseAgentConfig on a machine whose address is detected as 192.0.2.7. */
const parseRaw = (options: {
  env: Record<string, string>;
  argv?: string[];
  warn?: (warning: string) => void;
}) => parseAgentConfig({ argv: [], detectIp: () => '192.0.2.7', ...options });

function parse(
  env: Record<string, string> = {},
  argv: string[] = [],
  detectIp = () => '192.0.2.7' as string | undefined,
) {
  return parseAgentConfig({ argv, env: { ...REQUIRED, ...env }, detectIp });
}

function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('agent configuration', () => {
  it('fills every optional setting with its documented default', () => {
    const config = parse();

    expect(config).toMatchObject({
      statusUrl: 'https://status.example/prod',
      host: '127.0.0.1',
      port: 8787,
      ip: '192.0.2.7',
      intervalMs: 60_000,
      changeGapMs: 5_000,
      changeBudgetPerHour: 15,
      confirmTimeoutMs: 10_000,
      originCheckTimeoutMs: 3_000,
      stallCheckMs: 4_000,
      probes: [],
      probeOrigins: true,
      ffmpegPath: 'ffmpeg',
      ioTimeoutMs: 10_000,
      stallTimeoutMs: 15_000,
      bufferHeartbeats: 20_000,
      logLevel: 'info',
    });
  });

  it('lets a flag override its environment variable', () => {
    const config = parse({ RELAYWATCH_AGENT_INTERVAL: '30' }, [
      '--interval',
      '2.5',
    ]);

    expect(config.intervalMs).toBe(2_500);
  });

  it('takes durations with units, and a plain number as seconds', () => {
    const config = parse(
      {
        RELAYWATCH_AGENT_INTERVAL: '2m',
        RELAYWATCH_AGENT_PROBE_TIMEOUT: '500ms',
        RELAYWATCH_AGENT_STOP_GRACE: '1.5s',
      },
      ['--change-gap', '7'],
    );

    expect(config).toMatchObject({
      intervalMs: 120_000,
      probeTimeoutMs: 500,
      stopGraceMs: 1_500,
      changeGapMs: 7_000,
    });
  });

  it('still reads the old RELAYWATCH_STATUS_URL and --status-url, with a warning naming the new name', () => {
    const warnings: string[] = [];
    const fromEnv = parseRaw({
      env: { ...WITHOUT_URL, RELAYWATCH_STATUS_URL: 'https://old.example/' },
      warn: (w) => warnings.push(w),
    });
    const fromFlag = parseRaw({
      argv: ['--status-url', 'https://flag.example'],
      env: WITHOUT_URL,
      warn: (w) => warnings.push(w),
    });

    expect(fromEnv.statusUrl).toBe('https://old.example');
    expect(fromFlag.statusUrl).toBe('https://flag.example');
    expect(warnings).toEqual([
      'RELAYWATCH_STATUS_URL is deprecated; set RELAYWATCH_URL instead',
      '--status-url is deprecated; use --url instead',
    ]);
  });

  it('prefers RELAYWATCH_URL over the old name when both are set, and says the old one is ignored', () => {
    const warnings: string[] = [];
    const config = parseRaw({
      env: { ...REQUIRED, RELAYWATCH_STATUS_URL: 'https://old.example' },
      warn: (w) => warnings.push(w),
    });

    expect(config.statusUrl).toBe('https://status.example/prod');
    expect(warnings).toEqual([
      'RELAYWATCH_STATUS_URL is deprecated and ignored: RELAYWATCH_URL is set',
    ]);
  });

  it('names the variable and the flag of every bad setting at once', () => {
    const message = failure(() =>
      parse({
        RELAYWATCH_AGENT_INTERVAL: 'soon',
        RELAYWATCH_AGENT_PORT: '70000',
      }),
    );

    expect(message).toContain(
      'RELAYWATCH_AGENT_INTERVAL (--interval) must be a duration such as 500ms, 10s',
    );
    expect(message).toContain('"soon"');
    expect(message).toContain(
      'RELAYWATCH_AGENT_PORT (--port) must be a whole number from 0 to 65535',
    );
  });

  it('names the old flag when a bad value came under it', () => {
    const message = failure(() =>
      parseRaw({
        argv: ['--status-url', 'ftp://old.example'],
        env: WITHOUT_URL,
      }),
    );

    expect(message).toContain(
      '--status-url is required: the status center\'s http(s) base URL (got "ftp://old.example")',
    );
    expect(message).not.toContain('RELAYWATCH_URL');
  });

  it('names the old variable when a bad value came under it', () => {
    const message = failure(() =>
      parseRaw({
        env: { ...WITHOUT_URL, RELAYWATCH_STATUS_URL: 'status.example' },
      }),
    );

    expect(message).toContain(
      'RELAYWATCH_STATUS_URL is required: the status center\'s http(s) base URL (got "status.example")',
    );
    expect(message).not.toContain('(--url)');
  });

  it('names the variable and the flag, as before, when a bad value came under the new flag', () => {
    const message = failure(() =>
      parse({ RELAYWATCH_STATUS_URL: 'https://old.example' }, [
        '--url',
        'ftp://new.example',
      ]),
    );

    expect(message).toContain(
      'RELAYWATCH_URL (--url) is required: the status center\'s http(s) base URL (got "ftp://new.example")',
    );
    expect(message).not.toContain('RELAYWATCH_STATUS_URL');
    expect(message).not.toContain('--status-url');
  });

  it('refuses to start without the status center URL and tokens', () => {
    const message = failure(() => parseRaw({ env: {} }));

    expect(message).toContain('RELAYWATCH_URL');
    expect(message).toContain('RELAYWATCH_REPORTER_TOKEN');
    expect(message).toContain('RELAYWATCH_AGENT_TOKEN');
  });

  it('never echoes a token it refuses', () => {
    const message = failure(() =>
      parse({ RELAYWATCH_AGENT_TOKEN: 'short secret' }),
    );

    expect(message).toContain('RELAYWATCH_AGENT_TOKEN');
    expect(message).not.toContain('short secret');
  });

  it('asks for RELAYWATCH_AGENT_IP when no address can be detected', () => {
    const message = failure(() => parse({}, [], () => undefined));

    expect(message).toContain('RELAYWATCH_AGENT_IP (--ip) is required');
  });

  it('uses a configured IP in canonical form instead of detecting one', () => {
    expect(
      parse({ RELAYWATCH_AGENT_IP: '2001:DB8::0:7' }, [], () => undefined).ip,
    ).toBe('2001:db8::7');
  });

  it('reads probe targets as host:port, with brackets for IPv6', () => {
    const config = parse({
      RELAYWATCH_AGENT_PROBES: 'Canary.example:443, [2001:db8::1]:80',
    });

    expect(config.probes).toEqual([
      { host: 'canary.example', port: 443 },
      { host: '2001:db8::1', port: 80 },
    ]);
  });

  it('refuses a probe target without a valid port', () => {
    expect(parseProbeTarget('canary.example')).toBeUndefined();
    expect(parseProbeTarget('canary.example:0')).toBeUndefined();
    expect(
      failure(() => parse({ RELAYWATCH_AGENT_PROBES: 'a.example:99999' })),
    ).toContain('RELAYWATCH_AGENT_PROBES');
  });

  it('refuses a stall timeout shorter than two progress periods', () => {
    const message = failure(() =>
      parse({
        RELAYWATCH_AGENT_STALL_TIMEOUT: '1',
        RELAYWATCH_AGENT_PROGRESS_PERIOD: '1',
      }),
    );

    expect(message).toContain('RELAYWATCH_AGENT_STALL_TIMEOUT');
  });

  it('takes a confirm timeout of 0 (answer 202 at once) and refuses one over a minute', () => {
    expect(parse({}, ['--confirm-timeout', '0']).confirmTimeoutMs).toBe(0);
    expect(
      failure(() => parse({ RELAYWATCH_AGENT_CONFIRM_TIMEOUT: '61' })),
    ).toContain(
      'RELAYWATCH_AGENT_CONFIRM_TIMEOUT (--confirm-timeout) must be a duration such as 500ms, 10s, 2m or 1h (a plain number is seconds), from 0s to 60s',
    );
  });

  it('refuses an unknown flag', () => {
    expect(failure(() => parse({}, ['--intervall', '5']))).toContain(
      "'--intervall'",
    );
  });

  it('documents every flag and variable in --help', () => {
    const help = helpText();

    for (const setting of Object.values(SETTINGS)) {
      expect(help).toContain(`--${setting.flag}`);
      expect(help).toContain(setting.env);
    }
  });

  it('lists in --help every old flag and variable still read', () => {
    const help = helpText();
    const formerly = Object.values(SETTINGS).flatMap((setting) => {
      const old: Setting['formerly'] =
        'formerly' in setting ? setting.formerly : undefined;
      return [
        old?.flag === undefined ? [] : [`--${old.flag}`],
        old?.env === undefined ? [] : [old.env],
      ].flat();
    });

    expect(formerly).toEqual(['--status-url', 'RELAYWATCH_STATUS_URL']);
    for (const name of formerly) expect(help).toContain(name);
  });

  it('notes the old names of the status center URL once in --help, in the shared wording', () => {
    const help = helpText();
    const notes = help.match(/formerly/gi) ?? [];

    expect(notes).toHaveLength(1);
    expect(help).toContain(
      'Required. (formerly --status-url, RELAYWATCH_STATUS_URL, still read with a warning)',
    );
  });
});
