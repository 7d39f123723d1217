#!/usr/bin/env node
// npm run build:cuda-emu: configures and builds the emulation build of the CUDA backend
// (cuda/emu/CMakeLists.txt) with cmake and the host C++ compiler; no nvcc, no GPU.
//   node cuda/emu/build.mjs                       -> build/cuda-emu/
//   node cuda/emu/build.mjs --sanitize=address,undefined -> build/cuda-emu-asan/
//   node cuda/emu/build.mjs --sanitize=thread     -> build/cuda-emu-tsan/
// Options: --jobs=N (default: the number of CPUs, JOBS overrides), --target=NAME (one
// target), --out=DIR (another build folder), --quiet. Prints how long it took.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name) => {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  if (!a) return undefined;
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
};
const sanitize = opt('sanitize') ?? '';
const jobs = Number(opt('jobs') ?? process.env.JOBS ?? availableParallelism());
const quiet = opt('quiet') !== undefined;
const suffix = !sanitize ? '' : sanitize.includes('thread') ? '-tsan' : sanitize.includes('address') ? '-asan' : `-${sanitize.replace(/[^a-z]+/g, '-')}`;
const out = opt('out') ? resolve(opt('out')) : join(root, 'build', `cuda-emu${suffix}`);

const cmake = process.env.CMAKE ?? 'cmake';
if (spawnSync(cmake, ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('build:cuda-emu: cmake (>= 3.20) is needed: apt-get install cmake (or set CMAKE)');
  process.exit(1);
}
const run = (argv) => {
  const r = spawnSync(cmake, argv, { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const start = Date.now();
run(['-S', join(root, 'cuda', 'emu'), '-B', out, '-DCMAKE_BUILD_TYPE=Release', `-DJB_EMU_SANITIZE=${sanitize}`, ...(quiet ? ['--log-level=WARNING'] : [])]);
const target = opt('target');
run(['--build', out, '--parallel', String(Math.max(1, jobs)), ...(target ? ['--target', target] : [])]);
console.log(`build:cuda-emu: ${out} built in ${((Date.now() - start) / 1000).toFixed(1)} s (${jobs} jobs${sanitize ? `, -fsanitize=${sanitize}` : ''})`);
