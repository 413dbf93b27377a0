#!/usr/bin/env -S npx tsx
/**
 * relaywatch-dispatch entry point; see cli.ts and --help. Sets the exit code
 * rather than calling process.exit(), so stdout is flushed before the end.
 */
import { runDispatch } from './cli.js';

process.exitCode = await runDispatch({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
});
