// The release build of the CUDA backend library, shared by `npm run pack:cuda`
// (scripts/pack-cuda.mjs: the CUDA variant package) and `npm run prebuild:cuda` (this file
// run directly: the same library at prebuilds/linux-x64/, where the addon's loader looks
// after build/cuda, for a checkout; the main tarball does not carry it, see package.json
// "files"). Release, SASS for sm_80/86/89/90 + compute_90 PTX (given to CMake explicitly, so a
// cached -DCMAKE_CUDA_ARCHITECTURES=native in the build folder cannot change what ships),
// static CUDA runtime, stripped; then checked: it must not need libcudart (only the driver,
// which the static runtime dlopens lazily) and must export only jb_cuda_*. What it was built
// with is returned (and written next to it as JSON) for the package, the loader and doctor.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const LIBRARY = 'libjukebox-cuda.so';
/** CMake's CUDA_ARCHITECTURES for releases: SASS 8.0/8.6/8.9/9.0, plus 9.0 PTX for newer GPUs. */
export const RELEASE_ARCHITECTURES = '80-real;86-real;89-real;90';
/**
 * The oldest Linux driver of each CUDA major release (its x.0 GA driver): a library built with
 * CUDA x.y and a static runtime runs on it through minor-version compatibility, and its PTX
 * needs a driver that knows that PTX ISA, i.e. of the same major release.
 */
const MIN_DRIVER = { 12: '525.60.13', 13: '580.65.06' };

export class CudaBuildError extends Error {}

/** nvcc as the build will use it: $CUDACXX, /usr/local/cuda/bin/nvcc, or nvcc on PATH; null if none. */
export function findNvcc() {
  for (const c of [process.env.CUDACXX, '/usr/local/cuda/bin/nvcc', 'nvcc']) {
    if (!c) continue;
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) {
      const m = /release ([\d.]+), V([\d.]+)/.exec(r.stdout);
      return { path: c, release: m?.[1] ?? 'unknown', version: m?.[2] ?? 'unknown' };
    }
  }
  return null;
}

export function hasCmake() {
  return spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** "80-real;86-real;89-real;90" -> ["sm_80", "sm_86", "sm_89", "sm_90", "compute_90"] (CMake's meaning). */
export function architectureList(cmakeArchs) {
  const out = [];
  for (const a of cmakeArchs.split(/[;\s]+/).filter(Boolean)) {
    const m = /^(\d+)(?:-(real|virtual))?$/.exec(a);
    if (!m) {
      out.push(a);
      continue;
    }
    if (m[2] !== 'virtual') out.push(`sm_${m[1]}`);
    if (m[2] !== 'real') out.push(`compute_${m[1]}`);
  }
  return out;
}

/** The ABI version the library implements, from the header the addon is compiled with. */
export function abiVersion() {
  const h = readFileSync(join(root, 'cuda', 'include', 'jukebox_cuda.h'), 'utf8');
  const m = /#define\s+JB_CUDA_API_VERSION\s+(\d+)/.exec(h);
  if (!m) throw new CudaBuildError('cuda/include/jukebox_cuda.h defines no JB_CUDA_API_VERSION');
  return Number(m[1]);
}

/** cmake-js needs Node's headers; the machine's own serve (nothing is downloaded). */
function localHeaders() {
  if (process.env.npm_config_nodedir) return {};
  for (const dir of ['/usr', join(dirname(process.execPath), '..')]) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h'))) return { npm_config_nodedir: dir };
  }
  return {};
}

/**
 * What the dynamic section and symbol table say: the libraries it needs (must not include
 * libcudart: the runtime is linked in), the newest glibc symbol version, and the exported
 * functions (only jb_cuda_*).
 */
export function inspectLibrary(file) {
  const dyn = spawnSync('readelf', ['-d', '-W', file], { encoding: 'utf8' });
  if (dyn.status !== 0) throw new CudaBuildError(`readelf -d ${file} failed (binutils needed): ${dyn.stderr || dyn.error?.message}`);
  const needs = [...dyn.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const syms = spawnSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' }).stdout ?? '';
  const exported = [];
  const glibc = [];
  for (const line of syms.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Num: Value Size Type Bind Vis Ndx Name
    if (f.length < 8 || !/^\d+:$/.test(f[0])) continue;
    const [, , , type, bind, , ndx, name] = f;
    const v = /@GLIBC_(\d+)\.(\d+)/.exec(name);
    if (v) glibc.push([Number(v[1]), Number(v[2])]);
    // Weak definitions of C++ standard-library templates (e.g. std::operator+ for strings)
    // are the compiler's ODR copies, which any user of libstdc++ has: not the library's API.
    const stdTemplate = bind === 'WEAK' && /^_Z(St|NSt|NKSt|N9__gnu_cxx)/.test(name);
    if (ndx !== 'UND' && (bind === 'GLOBAL' || bind === 'WEAK') && type === 'FUNC' && !stdTemplate) exported.push(name.replace(/@.*/, ''));
  }
  glibc.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { needs, exported, glibc: glibc.length ? `>= ${glibc.at(-1).join('.')}` : 'unknown' };
}

/** The checks a shipped library must pass; a list of problems (empty: fine). */
export function libraryProblems(info) {
  const problems = [];
  const cudart = info.needs.filter((n) => /libcudart/.test(n));
  if (cudart.length) problems.push(`it needs ${cudart.join(', ')}: the CUDA runtime must be linked statically (CUDA::cudart_static)`);
  const driver = info.needs.filter((n) => /^libcuda\.so/.test(n));
  if (driver.length) problems.push(`it links ${driver.join(', ')} directly: it would not load without a driver (the static runtime opens it lazily)`);
  const foreign = info.exported.filter((n) => !n.startsWith('jb_cuda_'));
  if (foreign.length) problems.push(`it exports ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ` and ${foreign.length - 5} more` : ''}: only jb_cuda_* may leave`);
  for (const must of ['jb_cuda_api_version', 'jb_cuda_get_api']) if (!info.exported.includes(must)) problems.push(`it does not export ${must}`);
  return problems;
}

function sha256(file) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

/**
 * Builds the release library into `buildDir` (only the library target), copies it to
 * `dest/libjukebox-cuda.so`, strips and checks it. Returns what it was built with.
 */
export async function buildCudaLibrary({ buildDir = join(root, 'build', 'cuda-prebuild'), dest, architectures = RELEASE_ARCHITECTURES, quiet = false } = {}) {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new CudaBuildError(`the CUDA library is built for linux-x64; this is ${process.platform}-${process.arch}`);
  const nvcc = findNvcc();
  if (!nvcc) throw new CudaBuildError('the CUDA toolkit\u2019s nvcc was not found ($CUDACXX, /usr/local/cuda/bin/nvcc, PATH)');
  if (!hasCmake()) throw new CudaBuildError('cmake was not found (cmake >= 3.20 builds cuda/)');
  const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const common = ['-d', join(root, 'cuda'), '-O', buildDir, '--log-level', 'warn', `--CDCMAKE_CUDA_ARCHITECTURES=${architectures}`, '--CDCMAKE_BUILD_TYPE=Release'];
  const opts = { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', env: { ...process.env, CUDACXX: nvcc.path, ...localHeaders() } };
  // configure every time (a few seconds): `build` alone keeps an existing cache's settings
  execFileSync(process.execPath, [cmakeJs, 'configure', ...common], opts);
  execFileSync(process.execPath, [cmakeJs, 'build', ...common, '-T', 'jukebox-cuda'], opts);
  const built = join(buildDir, LIBRARY);
  if (!existsSync(built)) throw new CudaBuildError(`the build did not produce ${built}`);
  mkdirSync(dest, { recursive: true });
  const out = join(dest, LIBRARY);
  copyFileSync(built, out);
  let stripped = true;
  try {
    execFileSync('strip', ['--strip-unneeded', out]);
  } catch {
    stripped = false;
  }
  const elf = inspectLibrary(out);
  const problems = libraryProblems(elf);
  if (problems.length) throw new CudaBuildError(`${out} cannot ship: ${problems.join('; ')}`);
  const major = Number(nvcc.release.split('.')[0]);
  return {
    library: LIBRARY,
    abiVersion: abiVersion(),
    cuda: nvcc.release,
    nvcc: nvcc.version,
    architectures: architectureList(architectures),
    cmakeArchitectures: architectures,
    cudaRuntime: 'static',
    minDriver: MIN_DRIVER[major] ?? `the driver of CUDA ${major}.0 or newer`,
    needs: elf.needs,
    glibc: elf.glibc,
    stripped,
    bytes: statSync(out).size,
    sha256: await sha256(out),
    builtWith: spawnSync(process.env.CXX || 'c++', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'unknown',
    builtAt: new Date().toISOString(),
  };
}

// `npm run prebuild:cuda`: the library at prebuilds/linux-x64/ with its record beside it.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dest = join(root, 'prebuilds', 'linux-x64');
  try {
    const info = await buildCudaLibrary({ dest });
    writeFileSync(join(dest, 'libjukebox-cuda.json'), `${JSON.stringify(info, null, 2)}\n`);
    console.log(`wrote prebuilds/linux-x64/${LIBRARY} (${(info.bytes / 2 ** 20).toFixed(1)} MiB, CUDA ${info.cuda}, ${info.architectures.join(' ')}, needs ${info.needs.join(' ')})`);
  } catch (e) {
    if (!(e instanceof CudaBuildError)) throw e;
    console.error(`prebuild:cuda: ${e.message}`);
    process.exit(1);
  }
}
