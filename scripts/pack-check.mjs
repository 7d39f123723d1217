#!/usr/bin/env node
/**
 * CI's install check (run by .ci/run): pack the package as a user would get it (`npm pack`,
 * which runs prepack: TypeScript, the explorer page, the prebuild), install the tarball
 * into an empty project with a PATH that has no C/C++ compiler and no make, and there run
 * `jukebox generate --seconds 3` and `jukebox doctor --json` (which must report the
 * prebuild), and type-check a TypeScript consumer against the installed .d.ts.
 * Prints one line per check; exits 1 on the first failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

try {
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
  step(`${tarball}: ${listing.trim().split('\n').length} files, prebuild included`);

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
  console.log('pack-check: ok');
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`pack-check: kept ${work}`);
}
