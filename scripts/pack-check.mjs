#!/usr/bin/env node
/**
 * CI's install check (run by .ci/run): pack the package as a user would get it (`npm pack`,
 * which runs prepack: TypeScript, the explorer page, the prebuild), install the tarball
 * into an empty project with a PATH that has no C/C++ compiler and no make, and there run
 * `jukebox generate --seconds 3` and `jukebox doctor --json` (which must report the
 * prebuild), and type-check a TypeScript consumer against the installed .d.ts.
 *
 * Then the CUDA variant (#14): where nvcc and cmake exist, `npm run pack:cuda` makes
 * jukebox-node-linux-x64-cuda-<version>.tgz, which must carry libjukebox-cuda.so needing no
 * libcudart (readelf -d); both tarballs are installed together with `npm install --offline`
 * (nothing is fetched: the variant is an optional peer dependency, never downloaded by npm),
 * and there `jukebox doctor --json` must report the library found in the package, with its
 * version and build record, and why it cannot run (here: no driver / no GPU), `generate`
 * must still work (on the CPU), and a variant of another version must be refused with a
 * reason naming both versions. Without nvcc that part says it is skipped (or fails, with
 * JUKEBOX_PACK_CUDA_REQUIRE=1).
 * Prints one line per check; exits 1 on the first failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'jukebox-pack-'));
const keep = process.argv.includes('--keep');
const step = (what) => console.log(`pack-check: ${what}`);
const fail = (what, out = '') => {
  console.error(`pack-check: FAILED: ${what}\n${out}`);
  process.exit(1);
};

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const VARIANT = 'jukebox-node-linux-x64-cuda';
const mib = (file) => `${(statSync(file).size / 2 ** 20).toFixed(2)} MiB`;

try {
  // 0. the variant is pinned to this version: an optional peer, so npm never fetches it
  if (pkg.peerDependencies?.[VARIANT] !== pkg.version || pkg.peerDependenciesMeta?.[VARIANT]?.optional !== true) {
    fail(`package.json must list ${VARIANT} as an optional peer dependency at exactly its own version ${pkg.version} (found ${JSON.stringify(pkg.peerDependencies?.[VARIANT])})`);
  }
  if (pkg.optionalDependencies?.[VARIANT] || pkg.dependencies?.[VARIANT]) fail(`${VARIANT} must not be a (optional) dependency: npm ci would need it on the registry`);
  step(`${VARIANT}@${pkg.version} is an optional peer dependency`);

  // 1. the tarball
  step('npm pack (prepack: TypeScript, explorer page, prebuildify)');
  const packed = spawnSync('npm', ['pack', '--pack-destination', work, '--silent'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (packed.status !== 0) fail('npm pack', packed.stdout);
  const tarball = join(work, packed.stdout.trim().split('\n').at(-1));
  if (!existsSync(tarball)) fail(`npm pack wrote no ${tarball}`);
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  for (const must of ['package/dist/index.js', 'package/dist/index.d.ts', 'package/models/default/model.json', 'package/dist/explore-web/app.js']) {
    if (!listing.includes(must)) fail(`the tarball lacks ${must}`);
  }
  if (!/package\/prebuilds\/linux-x64\/[^/]+\.node/.test(listing)) fail('the tarball has no prebuilds/linux-x64/*.node');
  if (/libjukebox-cuda/.test(listing)) fail('the main tarball carries libjukebox-cuda (it belongs in the CUDA variant package)');
  step(`${tarball}: ${listing.trim().split('\n').length} files, ${mib(tarball)}, prebuild included, no CUDA library`);

  // 1b. the CUDA variant, where it can be built
  let cudaTarball = null;
  const packed2 = spawnSync(process.execPath, [join(root, 'scripts', 'pack-cuda.mjs'), '--pack-destination', work, '--json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (packed2.status === 2) {
    if (process.env.JUKEBOX_PACK_CUDA_REQUIRE === '1') fail('the CUDA variant cannot be built here and JUKEBOX_PACK_CUDA_REQUIRE=1 (see above)');
    step('CUDA variant: SKIPPED (no nvcc or no cmake, see above): its package, install and doctor checks did not run');
  } else if (packed2.status !== 0) {
    fail('npm run pack:cuda', packed2.stdout);
  } else {
    const res = JSON.parse(packed2.stdout);
    cudaTarball = res.tarball;
    const want = `${VARIANT}-${pkg.version}.tgz`;
    if (!cudaTarball.endsWith(`/${want}`) || !existsSync(cudaTarball)) fail(`pack:cuda wrote ${cudaTarball}, not ${want}`);
    const list = execFileSync('tar', ['-tzf', cudaTarball], { encoding: 'utf8' });
    for (const must of ['package/package.json', 'package/libjukebox-cuda.so', 'package/jukebox-cuda.json']) if (!list.includes(must)) fail(`the CUDA tarball lacks ${must}`);
    const vpkg = JSON.parse(execFileSync('tar', ['-xzOf', cudaTarball, 'package/package.json'], { encoding: 'utf8' }));
    if (vpkg.version !== pkg.version || vpkg.os?.[0] !== 'linux' || vpkg.cpu?.[0] !== 'x64') fail(`the CUDA package.json is ${JSON.stringify({ version: vpkg.version, os: vpkg.os, cpu: vpkg.cpu })}`);
    const m = res.manifest;
    step(`${cudaTarball}: ${mib(cudaTarball)} (library ${(m.bytes / 2 ** 20).toFixed(2)} MiB), CUDA ${m.cuda}, ${m.architectures.join(' ')}, ABI ${m.abiVersion}, driver >= ${m.minDriver}`);
  }

  // 2. a PATH with node and npm and the usual tools, but no compiler and no make
  const pathDir = join(work, 'bin');
  mkdirSync(pathDir);
  const nodeDir = dirname(process.execPath);
  const tools = ['sh', 'bash', 'env', 'uname', 'ls', 'cat', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'tar', 'gzip', 'git', 'sed', 'grep', 'head', 'tail', 'which', 'dirname', 'basename', 'readlink', 'ldd'];
  for (const t of tools) {
    const found = ['/usr/bin', '/bin'].map((d) => join(d, t)).find((p) => existsSync(p));
    if (found) symlinkSync(found, join(pathDir, t));
  }
  for (const t of readdirSync(nodeDir)) if (['node', 'npm', 'npx'].includes(t)) symlinkSync(join(nodeDir, t), join(pathDir, t));
  const env = { ...process.env, PATH: pathDir, CI: '1' };
  delete env.npm_config_nodedir;
  for (const c of ['cc', 'gcc', 'g++', 'c++', 'clang', 'make']) {
    if (spawnSync('sh', ['-c', `command -v ${c}`], { env }).status === 0) fail(`${c} is still on the test PATH`);
  }
  step('a PATH without cc, gcc, g++, c++, clang or make');

  // 3. install into an empty project
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env, encoding: 'utf8' });
  if (inst.status !== 0) fail('npm install of the tarball without a compiler', `${inst.stdout}\n${inst.stderr}`);
  step('npm install <tarball> succeeded without a compiler');

  // 4. the CLI: doctor says prebuild; generate makes audio
  const jukebox = join(app, 'node_modules', '.bin', 'jukebox');
  const doc = spawnSync(jukebox, ['doctor', '--json'], { cwd: app, env, encoding: 'utf8' });
  if (doc.status !== 0) fail('jukebox doctor --json', doc.stderr);
  const report = JSON.parse(doc.stdout);
  if (report.addon.kind !== 'prebuild') fail(`doctor reports the addon as ${report.addon.kind} (${report.addon.file}), not the prebuild`);
  step(`jukebox doctor --json: addon ${report.addon.kind} ${report.addon.file}; kernels ${report.cpu.isa}`);
  const noCuda = report.backends.find((b) => b.name === 'cuda');
  if (noCuda.usable || !noCuda.why.includes(`npm install ${VARIANT}@${pkg.version}`)) fail(`without the variant, doctor's CUDA reason does not say what to install: ${noCuda.why}`);
  step(`without the CUDA variant, doctor says what to install: "${noCuda.why}"`);
  const gen = spawnSync(jukebox, ['generate', '--seconds', '3', '-o', 'out'], { cwd: app, env, encoding: 'utf8' });
  if (gen.status !== 0 || !existsSync(join(app, 'out', 'sample_0.wav'))) fail('jukebox generate --seconds 3', `${gen.stdout}\n${gen.stderr}`);
  step('jukebox generate --seconds 3: out/sample_0.wav');

  // 5. a TypeScript consumer type-checks against the installed declarations
  writeFileSync(
    join(app, 'consumer.ts'),
    [
      "import { loadJukebox, backendInfo, doctorReport, isJukeboxError, type GenerateResult } from 'jukebox-node';",
      'const jb = await loadJukebox();',
      "const r: GenerateResult = await jb.generate({ seconds: 1, seed: 1, signal: AbortSignal.timeout(60_000), onProgress: (p) => void p.level });",
      'const rate: number = r.sampleRate;',
      'const isa: string = backendInfo().cpu.isa;',
      "const kind: string | undefined = doctorReport().addon.kind;",
      "const variant: string | undefined = doctorReport().cuda?.package?.version;",
      'void variant;',
      'jb.dispose();',
      'try { await loadJukebox({ model: "/nonexistent" }); } catch (e) { if (isJukeboxError(e)) console.log(e.code, rate, isa, kind); }',
      '',
    ].join('\n'),
  );
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] }, files: ['consumer.ts'] }));
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, env, encoding: 'utf8' });
  if (tsc.status !== 0) fail('the TypeScript consumer does not type-check', tsc.stdout);
  step('a TypeScript consumer type-checks against the installed .d.ts');
  // 6. without a usable prebuild and without build tools: a clear error saying what to do
  const bare = join(work, 'bare');
  mkdirSync(bare);
  writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'bare', version: '1.0.0', private: true }));
  const forced = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
    cwd: bare, env: { ...env, npm_config_build_from_source: 'true' }, encoding: 'utf8',
  });
  const said = `${forced.stdout}\n${forced.stderr}`;
  if (forced.status === 0) fail('a source build without a compiler succeeded?');
  if (!/Possible solutions:/.test(said) || !/missing .*make/.test(said)) fail('the failed source build does not say what is missing and what to do', said.slice(-3000));
  step('a source build without build tools fails saying what is missing and what to do');

  // 7. both tarballs, installed offline: the CUDA library comes from the variant package
  const both = join(work, 'both');
  mkdirSync(both);
  writeFileSync(join(both, 'package.json'), JSON.stringify({ name: 'consumer-cuda', version: '1.0.0', private: true, type: 'module' }));
  const inst2 = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball, ...(cudaTarball ? [cudaTarball] : [])], { cwd: both, env, encoding: 'utf8' });
  if (inst2.status !== 0) fail(`npm install --offline of ${cudaTarball ? 'both tarballs' : 'the main tarball'}`, `${inst2.stdout}\n${inst2.stderr}`);
  step(`npm install --offline ${cudaTarball ? 'of the main and the CUDA tarball' : 'of the main tarball'} succeeded (nothing fetched, no compiler)`);
  if (cudaTarball) {
    const jb2 = join(both, 'node_modules', '.bin', 'jukebox');
    const vdir = join(both, 'node_modules', VARIANT);
    const doctor2 = () => {
      const d = spawnSync(jb2, ['doctor', '--json'], { cwd: both, env, encoding: 'utf8' });
      if (d.status !== 0) fail('jukebox doctor --json with the CUDA variant installed', d.stderr);
      return JSON.parse(d.stdout);
    };
    const r2 = doctor2();
    const c = r2.cuda;
    if (c?.source !== 'package' || c.library !== join(vdir, 'libjukebox-cuda.so')) fail(`doctor does not report the library from the package: ${JSON.stringify({ source: c?.source, library: c?.library, reason: c?.reason })}`);
    if (!c.libraryLoaded || !/^CUDA \d+\.\d+; architectures /.test(c.buildInfo ?? '')) fail(`the packaged library did not load: ${c.reason}`);
    if (c.package?.version !== pkg.version || !c.package.versionMatches || !c.package.build?.architectures?.includes('sm_90')) fail(`doctor's package record: ${JSON.stringify(c.package)}`);
    const cudaBackend = r2.backends.find((b) => b.name === 'cuda');
    if (!cudaBackend.usable && !(cudaBackend.why.length > 10)) fail('doctor gives no reason why CUDA cannot run');
    const needs = execFileSync('readelf', ['-d', c.library], { encoding: 'utf8' });
    if (/libcudart/.test(needs)) fail(`the installed ${c.library} needs libcudart`);
    step(`jukebox doctor --json: cuda.source "package", ${c.package.name} ${c.package.version} (${c.library}), "${c.buildInfo}", runtime ${c.runtimeVersion}, driver ${c.driverVersion}; readelf -d: no libcudart`);
    step(`  backend cuda: ${cudaBackend.usable ? 'usable' : 'not usable'}: ${cudaBackend.why}`);
    const gen2 = spawnSync(jb2, ['generate', '--seconds', '3', '-o', 'out'], { cwd: both, env, encoding: 'utf8' });
    if (gen2.status !== 0 || !existsSync(join(both, 'out', 'sample_0.wav'))) fail('jukebox generate --seconds 3 with the CUDA variant installed', `${gen2.stdout}\n${gen2.stderr}`);
    step('jukebox generate --seconds 3 with the CUDA variant installed: out/sample_0.wav');
    // a variant of another version (npm refuses such a pair; a copied folder or --force can make one)
    const vjson = join(vdir, 'package.json');
    const original = readFileSync(vjson, 'utf8');
    writeFileSync(vjson, JSON.stringify({ ...JSON.parse(original), version: '0.0.0-other' }));
    const r3 = doctor2();
    writeFileSync(vjson, original);
    const why3 = r3.cuda?.reason ?? '';
    if (r3.cuda?.libraryLoaded || !why3.includes('0.0.0-other') || !why3.includes(pkg.version) || !why3.includes(`npm install ${VARIANT}@${pkg.version}`)) fail(`a variant of another version is not refused with both versions and what to install: ${why3}`);
    step(`a variant of another version is refused: "${why3}"`);
  }
  console.log('pack-check: ok');
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`pack-check: kept ${work}`);
}
