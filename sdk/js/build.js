#!/usr/bin/env node
// baton-build-js: build a JavaScript Baton connector into a WebAssembly component.
//
//   baton-build-js <entry.js> -o <out.wasm> [--wit DIR] [--world NAME]
//
// 1. Bundles the entry module and everything it imports (relative files, `baton-sdk`,
//    other npm packages) into one ES module with rolldown: the JS engine inside the
//    component resolves relative paths only, not bare package names. `baton:*` and
//    `wasi:*` imports stay imports of the component.
// 2. Runs componentize-js on the bundle with Baton's WIT (default: the `wit/` folder of
//    the Baton checkout this SDK lives in) and world `connector`.

import { componentize } from '@bytecodealliance/componentize-js';
import { rolldown } from 'rolldown';
import { mkdtemp, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// The contract: $BATON_WIT, else the `wit/` folder of the Baton checkout this file is in
// (sdk/js/build.js -> wit/). A copy installed into node_modules must be given --wit.
const DEFAULT_WIT = process.env.BATON_WIT || resolve(here, '..', '..', 'wit');

const USAGE = `usage: baton-build-js <entry.js> -o <out.wasm> [--wit DIR] [--world NAME] [--keep-bundle]

  -o, --out FILE    the component to write (its folder is created)
  --wit DIR         Baton's WIT contract, the checkout's wit/ folder
                    (default: $BATON_WIT, else ${resolve(here, '..', '..', 'wit')})
  --world NAME      the world to build (default: connector)
  --keep-bundle     also write the bundled JS next to the component (FILE.bundle.js)`;

function parseArgs(argv) {
  const opts = { world: 'connector', wit: DEFAULT_WIT, keepBundle: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '-o' || a === '--out') opts.out = value();
    else if (a === '--wit') opts.wit = value();
    else if (a === '--world' || a === '--world-name' || a === '-n') opts.world = value();
    else if (a === '--keep-bundle') opts.keepBundle = true;
    else if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (a.startsWith('-')) fail(`unknown option ${a}`);
    else if (opts.entry === undefined) opts.entry = a;
    else fail(`unexpected argument ${a}`);
  }
  if (!opts.entry || !opts.out) fail('an entry module and -o <out.wasm> are required');
  return opts;
}

function fail(message) {
  console.error(`baton-build-js: ${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const entry = resolve(opts.entry);
  const out = resolve(opts.out);
  const wit = resolve(opts.wit);
  if (!existsSync(entry)) fail(`no such file: ${entry}`);
  if (!existsSync(join(wit, 'plugin.wit')) && !(existsSync(wit) && wit.endsWith('.wit'))) {
    fail(`no Baton WIT contract at ${wit}; pass --wit with the wit/ folder of a Baton checkout`);
  }
  const started = Date.now();

  const work = await mkdtemp(join(tmpdir(), 'baton-build-js-'));
  try {
    const bundled = join(work, basename(out).replace(/\.wasm$/, '') + '.js');
    const bundle = await rolldown({
      input: entry,
      platform: 'browser', // StarlingMonkey is web-like: fetch, URL, TextEncoder; no Node.js built-ins
      external: [/^baton:/, /^wasi:/],
      logLevel: 'warn',
    });
    await bundle.write({ file: bundled, format: 'esm', codeSplitting: false });
    await bundle.close();

    const { component } = await componentize({
      sourcePath: bundled,
      witPath: wit,
      worldName: opts.world,
    });
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, component);
    if (opts.keepBundle) {
      const { copyFile } = await import('node:fs/promises');
      await copyFile(bundled, out.replace(/\.wasm$/, '') + '.bundle.js');
    }
    const { size } = await stat(out);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`baton-build-js: wrote ${out} (${(size / 1048576).toFixed(1)} MiB) in ${seconds} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`baton-build-js: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
