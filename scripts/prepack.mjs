#!/usr/bin/env node
/**
 * `npm pack` / `npm publish` run this first (prepack): compile the TypeScript and the
 * explorer page, then build the N-API prebuild for this platform with prebuildify (stripped,
 * tagged with the libc) into prebuilds/<platform>-<arch>/, where node-gyp-build finds it
 * after `npm install` on a machine with no compiler. It records which glibc the prebuild
 * needs at least (the newest GLIBC_x.y symbol version it links against), so the README and
 * `jukebox doctor` can say on which systems it loads.
 *
 * Note: prebuildify runs node-gyp in build/, which replaces the local build there.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
const bin = (name) => join(root, 'node_modules', '.bin', name);

/**
 * Nothing may download: node-gyp would fetch Node's headers for --target unless it is given
 * a folder holding them. An N-API addon builds against any Node >= 20's headers, so the
 * machine's own (Debian's nodejs-dev: /usr/include/node) serve.
 */
function localHeaders() {
  if (process.env.npm_config_nodedir) return {};
  for (const dir of ['/usr', join(dirname(process.execPath), '..')]) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h'))) return { npm_config_nodedir: dir };
  }
  return {};
}

/** prebuildify runs `node-gyp`: npm puts its own on PATH for scripts; run by hand, add it. */
function withNodeGyp(path) {
  if (spawnSync('node-gyp', ['--version'], { stdio: 'ignore' }).status === 0) return path;
  const npmDir = process.env.npm_execpath ? dirname(dirname(process.env.npm_execpath)) : join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
  return [join(npmDir, 'bin', 'node-gyp-bin'), path].join(':');
}

run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
run(process.execPath, [join(root, 'lib/explore/web/build.mjs')]);
// libstdc++ stays dynamic: linked statically it would pull in arc4random and
// _dl_find_object and need glibc 2.36 instead of 2.34, losing e.g. Ubuntu 22.04 (glibc
// 2.35, whose libstdc++ is GCC 12's). Both requirements are recorded below.
execFileSync(bin('prebuildify'), ['--napi', '--strip', '--tag-libc', '--target', '20.0.0'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PATH: withNodeGyp(process.env.PATH ?? ''), ...localHeaders() },
});

const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const addon = readdirSync(dir).find((f) => f.endsWith('.node'));
if (!addon) throw new Error(`prebuildify wrote no .node file into ${dir}`);
// prebuildify moves its build out of build/Release; put the same addon back, so a checkout
// that packed (CI) keeps its local build for what runs next (the Python tests look there).
const local = join(root, 'build', 'Release', 'jukebox.node');
if (!existsSync(local)) {
  mkdirSync(dirname(local), { recursive: true });
  copyFileSync(join(dir, addon), local);
}

// The newest glibc and libstdc++ symbol versions the prebuild needs (objdump from binutils).
const dump = spawnSync('objdump', ['-T', join(dir, addon)], { encoding: 'utf8' });
function newest(tag) {
  if (dump.status !== 0) return null;
  const versions = [...dump.stdout.matchAll(new RegExp(`${tag}_(\\d+)\\.(\\d+)(?:\\.(\\d+))?`, 'g'))].map((m) => [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const v = versions.at(-1);
  return v ? (v[2] ? v.join('.') : `${v[0]}.${v[1]}`) : null;
}
const glibc = newest('GLIBC');
const glibcxx = newest('GLIBCXX');
// Shared libraries it still needs (only glibc's, once libstdc++ is static).
const needed = [...(spawnSync('objdump', ['-p', join(dir, addon)], { encoding: 'utf8' }).stdout ?? '').matchAll(/NEEDED\s+(\S+)/g)].map((m) => m[1]);
const info = {
  file: addon,
  napi: true,
  minNode: '20.0.0',
  glibc: glibc ? `>= ${glibc}` : 'unknown (objdump not found)',
  libstdcxx: glibcxx ? `GLIBCXX >= ${glibcxx}` : 'unknown',
  needs: needed,
  builtWith: spawnSync(process.env.CXX || 'c++', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'unknown',
  builtOn: (() => {
    try {
      return execFileSync('ldd', ['--version'], { encoding: 'utf8' }).split('\n')[0];
    } catch {
      return 'unknown';
    }
  })(),
};
writeFileSync(join(dir, 'jukebox-node.json'), `${JSON.stringify(info, null, 2)}\n`);
console.log(`prepack: ${dir}/${addon} (needs glibc ${info.glibc})`);
