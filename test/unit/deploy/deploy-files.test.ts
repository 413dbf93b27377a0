import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../../clients/agent/config.js';
import { BUILT_BINS } from '../../../infra/build.js';

const read = (path: string) =>
  readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
const ENV_EXAMPLE = read('deploy/relaywatch-agent.env.example');
const UNIT = read('deploy/relaywatch-agent.service');

/** VAR → value of every `VAR=value` or `#VAR=value` line. */
function assignments(
  text: string,
): Map<string, { value: string; commented: boolean }> {
  const found = new Map<string, { value: string; commented: boolean }>();
  for (const match of text.matchAll(/^(#?)([A-Z][A-Z0-9_]*)=(.*)$/gm)) {
    found.set(match[2] as string, {
      value: match[3] as string,
      commented: match[1] === '#',
    });
  }
  return found;
}

describe('deploy/relaywatch-agent.env.example', () => {
  const lines = assignments(ENV_EXAMPLE);

  it('names every agent setting, and nothing else', () => {
    expect([...lines.keys()].sort()).toEqual(
      Object.values(SETTINGS)
        .map((setting) => setting.env)
        .sort(),
    );
  });

  it('shows each optional setting commented out with its real default', () => {
    for (const setting of Object.values(SETTINGS)) {
      const line = lines.get(setting.env);
      if ('fallback' in setting)
        expect(line, setting.env).toEqual({
          value: setting.fallback,
          commented: true,
        });
    }
  });

  it('leaves the required settings to fill in, uncommented', () => {
    for (const env of [
      'RELAYWATCH_URL',
      'RELAYWATCH_REPORTER_TOKEN',
      'RELAYWATCH_AGENT_TOKEN',
    ]) {
      expect(lines.get(env)?.commented, env).toBe(false);
    }
  });
});

describe('deploy/relaywatch-agent.service', () => {
  const directive = (name: string) =>
    [...UNIT.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map(
      (match) => match[1],
    );

  it('runs the built agent with node, reading the environment file the example is installed as', () => {
    expect(directive('ExecStart')).toEqual([
      `/usr/bin/node /opt/relaywatch/${Object.keys(BUILT_BINS)[0]}.mjs`,
    ]);
    expect(Object.keys(BUILT_BINS)[0]).toBe('relaywatch-agent');
    expect(directive('EnvironmentFile')).toEqual(['/etc/relaywatch/agent.env']);
    expect(UNIT).toContain(
      'deploy/relaywatch-agent.env.example /etc/relaywatch/agent.env',
    );
  });

  it('restarts the agent, except after a bad setting (exit 2), and lets it stop its relays first', () => {
    expect(directive('Restart')).toEqual(['always']);
    expect(directive('RestartPreventExitStatus')).toEqual(['2']);
    expect(directive('KillMode')).toEqual(['mixed']);
    expect(Number(directive('TimeoutStopSec')[0])).toBeGreaterThan(20);
  });
});
