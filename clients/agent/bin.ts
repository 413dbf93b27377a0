#!/usr/bin/env -S npx tsx
/**
 * relaywatch-agent: the relay agent's entry. Reads its configuration once,
 * fails fast naming the bad setting, and stops cleanly on SIGTERM/SIGINT.
 */
import { networkInterfaces } from 'node:os';
import { createLogger, toStderr } from '#contract/log';
import packageJson from '../../package.json' with { type: 'json' };
import { startAgent } from './agent.js';
import { ConfigError, helpText, parseAgentConfig } from './config.js';
import { pickMachineIp } from './machine-ip.js';

/** A second signal, or a shutdown slower than this, ends the process at once. */
const SHUTDOWN_BOUND_MS = 20_000;

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return 0;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`relaywatch-agent ${packageJson.version}\n`);
    return 0;
  }
  let config: ReturnType<typeof parseAgentConfig>;
  const warnings: string[] = [];
  try {
    config = parseAgentConfig({
      argv,
      env: process.env,
      detectIp: () => pickMachineIp(networkInterfaces()),
      warn: (message) => warnings.push(message),
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(
      `relaywatch-agent: ${error.message}\nRun with --help for every setting.\n`,
    );
    return 2;
  }
  const log = createLogger({ level: config.logLevel, write: toStderr });
  for (const warning of warnings) log.warn(warning);
  const agent = await startAgent({ config, log });
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info('shutting down', { signal });
      setTimeout(() => {
        log.error('shutdown took too long; exiting');
        process.exit(1);
      }, SHUTDOWN_BOUND_MS).unref();
      process.once('SIGTERM', () => process.exit(1));
      process.once('SIGINT', () => process.exit(1));
      agent.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    createLogger({ level: 'error', write: toStderr }).error('agent failed', {
      error,
    });
    process.exitCode = 1;
  },
);
