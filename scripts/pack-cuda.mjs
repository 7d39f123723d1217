#!/usr/bin/env node
/**
 * `npm run pack:cuda [-- --pack-destination DIR] [--json]`: the CUDA variant package,
 * jukebox-node-linux-x64-cuda-<version>.tgz, written where `npm pack` would write (the
 * current folder) or into --pack-destination. It carries libjukebox-cuda.so built for release
 * (cuda/prebuild.mjs: sm_80/86/89/90 + compute_90 PTX, static CUDA runtime, stripped, checked
 * with readelf to need no libcudart) and jukebox-cuda.json, the record of what it was built
 * with (CUDA version, architectures, ABI version, needed libraries, SHA-256), which
 * `jukebox doctor` reports. Its version is the main package's: the addon refuses any other.
 * The template is packages/linux-x64-cuda/. Needs nvcc and cmake (no GPU); exits 2 saying
 * what is missing when they are not there, 1 on any other failure.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildCudaLibrary, CudaBuildError, findNvcc, hasCmake, LIBRARY, root } from '../cuda/prebuild.mjs';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
};
// npm passes `npm run pack:cuda --pack-destination=DIR` (without `--`) as an environment variable
const destination = resolve(opt('--pack-destination') ?? process.env.npm_config_pack_destination ?? process.cwd());
const json = args.includes('--json');
const log = (line) => (json ? process.stderr : process.stdout).write(`pack:cuda: ${line}\n`);

const nvcc = findNvcc();
if (!nvcc || !hasCmake()) {
  console.error(`pack:cuda: cannot build the CUDA library here: ${!nvcc ? 'nvcc (the CUDA toolkit) was not found ($CUDACXX, /usr/local/cuda/bin/nvcc, PATH)' : 'cmake was not found'}`);
  process.exit(2);
}

const main = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const template = JSON.parse(readFileSync(join(root, 'packages', 'linux-x64-cuda', 'package.template.json'), 'utf8'));
const stage = join(root, 'build', 'cuda-package', 'package');
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

try {
  log(`building ${LIBRARY} with nvcc ${nvcc.version} (${nvcc.path}) into build/cuda-package`);
  const built = await buildCudaLibrary({ buildDir: join(root, 'build', 'cuda-package', 'cmake'), dest: stage, quiet: json });
  const manifest = { package: template.name, version: main.version, for: `${main.name}@${main.version}`, ...built };
  writeFileSync(join(stage, 'jukebox-cuda.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const pkg = {
    ...template,
    version: main.version,
    description: `${template.description} Built with CUDA ${built.cuda}; needs NVIDIA driver >= ${built.minDriver}.`,
    ...(main.repository ? { repository: main.repository } : {}),
  };
  writeFileSync(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  copyFileSync(join(root, 'packages', 'linux-x64-cuda', 'README.md'), join(stage, 'README.md'));
  if (existsSync(join(root, 'LICENSE'))) copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
  mkdirSync(destination, { recursive: true });
  const out = execFileSync('npm', ['pack', stage, '--pack-destination', destination, '--json', '--ignore-scripts'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [packed] = JSON.parse(out);
  const tarball = join(destination, packed.filename);
  log(`library: ${built.bytes} bytes, CUDA ${built.cuda} (nvcc ${built.nvcc}), ${built.architectures.join(' ')}, ABI ${built.abiVersion}, needs ${built.needs.join(' ')} (no libcudart), driver >= ${built.minDriver}`);
  log(`${tarball}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${packed.files.length} files`);
  if (json) console.log(JSON.stringify({ tarball, name: packed.name, version: packed.version, size: packed.size, unpackedSize: packed.unpackedSize, files: packed.files.map((f) => f.path), manifest }, null, 2));
  else console.log(tarball);
} catch (e) {
  if (e instanceof CudaBuildError) {
    console.error(`pack:cuda: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
