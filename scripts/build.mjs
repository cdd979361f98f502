// Builds everything `npm run build` promises:
//   src/extension.ts            -> dist/extension.js    (VS Code extension host)
//   src/cli/main.ts             -> dist/cli.js          (the `grass` CLI, Node >= 20)
//   webview/<name>/index.ts     -> dist/webview/<name>.js (one bundle per webview, browser)
//   test/**/suite/index.ts ...  -> out/test/...         (suites loaded by the extension host)
// then the target agent with `make -C gpu` when gpu/Makefile exists.
// koffi and @node-rs/crc32 are native and stay outside the bundles (they ship in the .vsix's
// node_modules with their linux-x64 binaries); so does @bokuweb/zstd-wasm, which reads its
// zstd.wasm from beside itself;
// `vscode` is provided by the extension host.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const nodeOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  external: ['vscode', 'koffi', '@node-rs/crc32', '@bokuweb/zstd-wasm'],
  logLevel: 'warning',
};

/** Folders under `dir` holding an index.ts: each is one entry point named after its folder. */
function entryFolders(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'index.ts')))
    .map((d) => d.name);
}

/** Extension-host test suites: every folder with an index.ts under test/extension/ and the
 * harness fixtures; each test file beside it is its own bundle so that mocha loads it
 * (mocha's `describe`/`it` exist only while mocha requires the file). */
function extensionTestEntries() {
  const suites = ['test/extension', ...entryFolders('test/harness/suites').map((n) => `test/harness/suites/${n}`)];
  const entries = [];
  for (const suite of suites) {
    if (!existsSync(path.join(suite, 'index.ts'))) continue;
    for (const f of readdirSync(suite)) {
      if (f === 'index.ts' || f.endsWith('.test.ts')) entries.push(path.join(suite, f));
    }
  }
  return entries;
}

const started = Date.now();
// dist/ is overwritten in place (tests of other suites may be running it); out/test/ is
// emptied so that a deleted test file's old bundle is not run again.
rmSync('out/test', { recursive: true, force: true });

const webviews = entryFolders('webview').filter((n) => n !== 'components');
await Promise.all([
  build({ ...nodeOptions, entryPoints: { extension: 'src/extension.ts' }, outdir: 'dist' }),
  build({ ...nodeOptions, entryPoints: { cli: 'src/cli/main.ts' }, outdir: 'dist' }),
  webviews.length > 0 &&
    build({
      bundle: true,
      platform: 'browser',
      target: 'chrome120',
      format: 'iife',
      sourcemap: 'linked',
      logLevel: 'warning',
      entryPoints: Object.fromEntries(webviews.map((n) => [n, `webview/${n}/index.ts`])),
      outdir: 'dist/webview',
    }),
  build({
    ...nodeOptions,
    // mocha must be the one instance the suite's index.ts drives: load it from node_modules.
    external: [...nodeOptions.external, 'mocha'],
    entryPoints: extensionTestEntries(),
    outbase: '.',
    outdir: 'out',
  }),
]);
process.stderr.write(`grass build: bundles in ${Date.now() - started} ms\n`);

if (existsSync('gpu/Makefile')) {
  try {
    execFileSync('make', ['-C', 'gpu', '--no-print-directory'], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    process.stderr.write(`grass build: the agent's build (make -C gpu) failed with status ${err.status ?? err.message}\n`);
    process.exit(1);
  }
}
