// Bundles the explorer page (preact, TSX) into one classic script with esbuild, next to its
// HTML and CSS: `node lib/explore/web/build.mjs [outDir]` (default dist/explore-web). One
// IIFE file because a static export opened from disk (file://) cannot load ES modules.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, '..', '..', '..', 'dist', 'explore-web'));
try {
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(here, 'app.tsx')],
    outfile: join(out, 'app.js'),
    bundle: true,
    format: 'iife',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
  copyFileSync(join(here, 'app.css'), join(out, 'app.css'));
} catch (e) {
  console.error(`explorer page build failed: ${e.message ?? e}`);
  process.exit(1);
}
