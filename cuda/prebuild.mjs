// `npm run prebuild:cuda`: the CUDA backend library as a Linux x64 prebuild. Builds cuda/
// with cmake-js (Release, sm_80/86/89/90 + compute_90 PTX, static cudart, so the prebuild
// needs only the NVIDIA driver) into build/cuda-prebuild, strips it, and puts it at
// prebuilds/linux-x64/libjukebox-cuda.so, where the addon's loader looks after build/cuda
// (csrc/backend/cuda_loader.cc). A package published with it runs on CUDA where a driver
// and a supported GPU exist and on the CPU elsewhere; nothing is downloaded at install.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lib = 'libjukebox-cuda.so';
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`prebuild:cuda makes the Linux x64 prebuild; this is ${process.platform}-${process.arch}`);
  process.exit(1);
}
const nvcc = process.env.CUDACXX ?? (existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : 'nvcc');
let nvccVersion;
try {
  nvccVersion = /release ([\d.]+)/.exec(execFileSync(nvcc, ['--version'], { encoding: 'utf8' }))?.[1];
} catch {
  console.error(`prebuild:cuda needs the CUDA toolkit's nvcc (not found as ${nvcc}; set CUDACXX)`);
  process.exit(1);
}
const out = join(root, 'build', 'cuda-prebuild');
const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
execFileSync(process.execPath, [cmakeJs, 'compile', '-d', join(root, 'cuda'), '-O', out, '--log-level', 'warn'], {
  stdio: 'inherit',
  env: { ...process.env, CUDACXX: nvcc },
});
const built = join(out, lib);
if (!existsSync(built)) {
  console.error(`prebuild:cuda: the build did not produce ${built}`);
  process.exit(1);
}
const dest = join(root, 'prebuilds', 'linux-x64');
mkdirSync(dest, { recursive: true });
copyFileSync(built, join(dest, lib));
try {
  execFileSync('strip', ['--strip-unneeded', join(dest, lib)]);
} catch {
  console.warn('prebuild:cuda: strip not found; the library keeps its symbols');
}
writeFileSync(
  join(dest, 'libjukebox-cuda.json'),
  JSON.stringify({ library: lib, nvcc: nvccVersion, architectures: ['sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'], builtAt: new Date().toISOString() }, null, 2) + '\n',
);
console.log(`wrote prebuilds/linux-x64/${lib} (${(statSync(join(dest, lib)).size / 2 ** 20).toFixed(1)} MiB, nvcc ${nvccVersion})`);
