/**
 * `npm run build`: bundles each program operators run on their own machines
 * into one runnable ESM file under dist/, for Node 22 or later, with every
 * dependency inside it: no tsx, no node_modules at run time.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** dist/<name>.mjs ← entry; the names are the package's bins. */
export const BUILT_BINS = {
  'relaywatch-agent': 'clients/agent/bin.ts',
  'relaywatch-dispatch': 'clients/dispatcher/bin.ts',
  relaywatch: 'clients/cli/bin.ts',
} as const;

export async function buildBins(outdir = `${ROOT}dist`): Promise<string[]> {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const outputs: string[] = [];
  for (const [name, entry] of Object.entries(BUILT_BINS)) {
    const outfile = `${outdir}/${name}.mjs`;
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      sourcemap: 'linked',
      legalComments: 'none',
      logLevel: 'warning',
      write: false,
      // Bundled CommonJS dependencies call require(), which ESM lacks.
      banner: {
        js: "import { createRequire as relaywatchCreateRequire } from 'node:module'; const require = relaywatchCreateRequire(import.meta.url);",
      },
    });
    for (const file of result.outputFiles) {
      // esbuild keeps the entry's "#!/usr/bin/env -S npx tsx"; the built file needs node alone.
      // One line for one line, so the source map still matches.
      const text = file.path.endsWith('.mjs')
        ? `#!/usr/bin/env node\n${file.text.replace(/^#![^\n]*\n/, '')}`
        : file.text;
      await writeFile(file.path, text);
    }
    await chmod(outfile, 0o755);
    outputs.push(outfile);
  }
  return outputs;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const file of await buildBins())
    process.stdout.write(`built ${file.slice(ROOT.length)}\n`);
}
