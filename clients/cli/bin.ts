#!/usr/bin/env -S npx tsx
/**
 * relaywatch (the operator CLI) entry point; see cli.ts and --help. Sets the
 * exit code rather than calling process.exit(), so stdout is flushed first.
 */
import { runCli } from './cli.js';

process.exitCode = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});
