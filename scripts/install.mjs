#!/usr/bin/env node
/**
 * The package's install step. Uses the native addon that is already there (the prebuild for
 * this platform shipped in prebuilds/, or a local build) when it loads; otherwise builds it
 * from source with node-gyp; and when that is impossible or fails, says what is missing and
 * what to do (sharp's "possible solutions"), instead of a page of compiler output alone.
 * Nothing is downloaded.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const platform = `${process.platform}-${process.arch}`;

function loads() {
  // A child process: a half-built or foreign addon must not take this one down.
  const r = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(root)})`], { cwd: root, encoding: 'utf8' });
  return { ok: r.status === 0, why: (r.stderr || '').trim().split('\n').slice(-1)[0] };
}

const has = (cmd, args = ['--version']) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

function solutions(problem) {
  const missing = [];
  if (!has('python3') && !has('python')) missing.push('python3');
  if (!has('make')) missing.push('make');
  if (![process.env.CXX, 'c++', 'g++', 'clang++'].some((c) => c && has(c))) missing.push('a C++17 compiler (g++ or clang++)');
  console.error(
    [
      '',
      `jukebox-node: could not install the native addon for ${platform} (Node ${process.versions.node}).`,
      `  ${problem}`,
      '',
      'Possible solutions:',
      `- Use a platform with a prebuild: this package ships one for linux-x64 (glibc); this machine is ${platform}.`,
      missing.length
        ? `- Install what a source build needs, then reinstall: missing ${missing.join(', ')} (Debian/Ubuntu: apt-get install python3 make g++).`
        : '- The build tools are present: the error above says what failed; check that Node >= 20 and its headers are available (npm_config_nodedir).',
      '- Set npm_config_build_from_source=true to force a source build, or report the problem with the output above.',
      '',
    ].join('\n'),
  );
}

const forceSource = /^(1|true)$/i.test(process.env.npm_config_build_from_source ?? '');
if (!forceSource) {
  const first = loads();
  if (first.ok) process.exit(0);
}

// Build from source: node-gyp as npm provides it (on PATH in install scripts), or the one npm bundles.
let nodeGyp = ['node-gyp'];
try {
  nodeGyp = [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
} catch {
  // npm puts its own node-gyp on PATH for install scripts
}
const build = spawnSync(nodeGyp[0], [...nodeGyp.slice(1), 'rebuild'], { cwd: root, stdio: 'inherit' });
if (build.error || build.status !== 0) {
  solutions(build.error ? `node-gyp could not be started (${build.error.message}).` : `the source build failed (node-gyp exit ${build.status}).`);
  process.exit(1);
}
const after = loads();
if (!after.ok) {
  solutions(`the source build finished but the addon does not load: ${after.why}`);
  process.exit(1);
}
