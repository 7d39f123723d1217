/**
 * The CUDA variant package (jukebox-node-linux-x64-cuda, `npm run pack:cuda`) as the addon
 * finds it: installed layouts built here in a temporary folder (a copy of the addon and
 * dist/ as node_modules/jukebox-node, a fake backend library compiled from
 * cuda/include/jukebox_cuda.h that reports "no driver" as the real one does on a machine
 * without a GPU) checked in child processes, since the loader probes once per process:
 * the package beside jukebox-node and nested in it (module resolution order), after
 * JUKEBOX_CUDA_LIB and local builds; a version mismatch, a package without the library and
 * no package at all are reasons that say what to install, never a crash; doctor reports the
 * package's version and build record. Also the release build's checks (cuda/prebuild.mjs).
 * The real tarball is made and installed by `npm run pack:check` (scripts/pack-check.mjs).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/native.js';
// @ts-expect-error: a plain ES module without type declarations
import { architectureList, libraryProblems } from '../cuda/prebuild.mjs';

const VARIANT = 'jukebox-node-linux-x64-cuda';
const version = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
const addon = (() => {
  try {
    return (execFileSync(process.execPath, ['-e', `process.stdout.write(require('node-gyp-build').resolve(${JSON.stringify(packageRoot)}))`], { cwd: packageRoot, encoding: 'utf8' }));
  } catch {
    return undefined;
  }
})();

const work = mkdtempSync(join(tmpdir(), 'jukebox-pack-cuda-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// "no driver", as the real library answers where libcuda.so.1 is missing
const FAKE_C = `
#include <string.h>
#include "jukebox_cuda.h"
static const char* build_info(void) { return "CUDA 13.0; architectures 80-real 86-real 89-real 90"; }
static uint64_t capabilities(void) { return 3; }
static int versions(int* r, int* d) { *r = 13000; *d = 0; return 0; }
static int device_count(int* n) { *n = 0; return JB_CUDA_ERR_NO_DRIVER; }
static int device_info(int i, jb_cuda_device_info* o) { (void)i; memset(o, 0, sizeof *o); return JB_CUDA_ERR_NO_DRIVER; }
static const char* last_error(void) { return "cudaGetDeviceCount: cudaErrorInsufficientDriver"; }
static const jb_cuda_api api = {
  .api_version = JB_CUDA_API_VERSION, .struct_size = sizeof(jb_cuda_api), .build_info = build_info,
  .capabilities = capabilities, .versions = versions, .device_count = device_count,
  .device_info = device_info, .last_error = last_error,
};
JB_CUDA_EXPORT uint32_t jb_cuda_api_version(void) { return JB_CUDA_API_VERSION; }
JB_CUDA_EXPORT const jb_cuda_api* jb_cuda_get_api(uint32_t v) { return v == JB_CUDA_API_VERSION ? &api : 0; }
`;

let fakeLib = '';
function fake(): string {
  if (fakeLib) return fakeLib;
  writeFileSync(join(work, 'fake.c'), FAKE_C);
  fakeLib = join(work, 'libfake.so');
  execFileSync(cc!, ['-shared', '-fPIC', '-std=c99', `-I${join(packageRoot, 'cuda', 'include')}`, join(work, 'fake.c'), '-o', fakeLib]);
  return fakeLib;
}

let n = 0;
/** An app folder with node_modules/jukebox-node (the addon, dist/, package.json). */
function app(): { dir: string; main: string } {
  const dir = join(work, `app${n++}`);
  const main = join(dir, 'node_modules', 'jukebox-node');
  mkdirSync(join(main, 'build', 'Release'), { recursive: true });
  cpSync(addon!, join(main, 'build', 'Release', 'jukebox.node'));
  cpSync(join(packageRoot, 'dist'), join(main, 'dist'), { recursive: true });
  writeFileSync(join(main, 'package.json'), JSON.stringify({ name: 'jukebox-node', version, type: 'module', dependencies: { 'node-gyp-build': '*' } }));
  symlinkSync(join(packageRoot, 'node_modules', 'node-gyp-build'), join(dir, 'node_modules', 'node-gyp-build'));
  return { dir, main };
}

function variant(at: string, v = version, withLib = true): string {
  mkdirSync(at, { recursive: true });
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name: VARIANT, version: v, os: ['linux'], cpu: ['x64'] }));
  writeFileSync(join(at, 'jukebox-cuda.json'), JSON.stringify({ package: VARIANT, version: v, cuda: '13.0', architectures: ['sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'], abiVersion: 2, cudaRuntime: 'static', minDriver: '580.65.06' }));
  if (withLib) cpSync(fake(), join(at, 'libjukebox-cuda.so'));
  return at;
}

type Cuda = {
  available: boolean; reason?: string; library?: string; libraryLoaded: boolean; source?: string; searched: string[];
  buildInfo?: string; package?: { name: string; version: string; dir: string; expectedVersion: string };
};

function probe(main: string, env: Record<string, string> = {}): Cuda {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  if (!('JUKEBOX_CUDA_LIB' in env)) delete e.JUKEBOX_CUDA_LIB;
  const out = execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(join(main, 'build', 'Release', 'jukebox.node'))}).backendInfo().cuda))`], { env: e, encoding: 'utf8' });
  return JSON.parse(out) as Cuda;
}

describe.runIf(cc !== undefined && addon !== undefined)('the CUDA variant package, found by module resolution', () => {
  it('beside jukebox-node: found, its version checked, and "no driver" is the reason', () => {
    const { dir, main } = app();
    const pkg = variant(join(dir, 'node_modules', VARIANT));
    const r = probe(main);
    expect(r.source).toBe('package');
    expect(r.library).toBe(join(pkg, 'libjukebox-cuda.so'));
    expect(r.libraryLoaded).toBe(true);
    expect(r.package).toEqual({ name: VARIANT, version, dir: pkg, expectedVersion: version });
    expect(r.available).toBe(false);
    expect(r.reason).toMatch(/^no NVIDIA driver/);
    // local builds come first, then node_modules from the package's own folder up
    expect(r.searched.slice(-2)).toEqual([join(main, 'node_modules', VARIANT, 'libjukebox-cuda.so'), join(pkg, 'libjukebox-cuda.so')]);
  });

  it('nested in jukebox-node/node_modules wins over the one beside it (Node\u2019s order)', () => {
    const { dir, main } = app();
    variant(join(dir, 'node_modules', VARIANT), '0.0.0-outer');
    const inner = variant(join(main, 'node_modules', VARIANT));
    const r = probe(main);
    expect(r.package?.dir).toBe(inner);
    expect(r.libraryLoaded).toBe(true);
  });

  it('another version is refused with both versions and what to install', () => {
    const { dir, main } = app();
    variant(join(dir, 'node_modules', VARIANT), '9.9.9');
    const r = probe(main);
    expect(r.libraryLoaded).toBe(false);
    expect(r.package).toMatchObject({ version: '9.9.9', expectedVersion: version });
    expect(r.reason).toContain(`version mismatch: the CUDA variant package ${VARIANT} 9.9.9`);
    expect(r.reason).toContain(`jukebox-node ${version}`);
    expect(r.reason).toContain(`npm install ${VARIANT}@${version}`);
  });

  it('a package without the library, and no package at all, say what to install', () => {
    const a = app();
    variant(join(a.dir, 'node_modules', VARIANT), version, false);
    const broken = probe(a.main);
    expect(broken.libraryLoaded).toBe(false);
    expect(broken.reason).toMatch(/has no libjukebox-cuda\.so; reinstall it/);
    const b = app();
    const none = probe(b.main);
    expect(none.source).toBeUndefined();
    expect(none.reason).toContain(`npm install ${VARIANT}@${version}`);
  });

  it('JUKEBOX_CUDA_LIB and a local build come before the package', () => {
    const { dir, main } = app();
    variant(join(dir, 'node_modules', VARIANT));
    const viaEnv = probe(main, { JUKEBOX_CUDA_LIB: fake() });
    expect(viaEnv).toMatchObject({ source: 'JUKEBOX_CUDA_LIB', library: fake(), libraryLoaded: true });
    expect(viaEnv.package).toBeUndefined();
    mkdirSync(join(main, 'build', 'cuda'));
    cpSync(fake(), join(main, 'build', 'cuda', 'libjukebox-cuda.so'));
    const local = probe(main);
    expect(local).toMatchObject({ source: 'local build', library: join(main, 'build', 'cuda', 'libjukebox-cuda.so') });
  });

  it('doctor reports the package, its version and what it was built with', () => {
    const { dir, main } = app();
    const pkg = variant(join(dir, 'node_modules', VARIANT));
    const env = { ...process.env };
    delete env.JUKEBOX_CUDA_LIB;
    const script = `const m = await import(${JSON.stringify(join(main, 'dist', 'doctor.js'))}); const r = m.doctorReport(); console.log(JSON.stringify({ r, text: m.formatDoctor(r) }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
    const { r, text } = JSON.parse(out) as { r: { cuda: Cuda & { emulated: boolean; package: Record<string, unknown> }; backends: { name: string; usable: boolean; why: string }[] }; text: string };
    expect(r.cuda.emulated).toBe(false);
    expect(r.cuda.package).toMatchObject({ name: VARIANT, version, dir: pkg, versionMatches: true, build: { cuda: '13.0', minDriver: '580.65.06', cudaRuntime: 'static' } });
    expect(r.backends[1]).toMatchObject({ name: 'cuda', usable: false });
    expect(r.backends[1].why).toMatch(/no NVIDIA driver/);
    expect(text).toMatch(new RegExp(`cuda pkg:  ${VARIANT} ${version.replace(/\./g, '\\.')} .*built with CUDA 13\\.0, sm_80 sm_86 sm_89 sm_90 compute_90, static runtime, needs driver >= 580\\.65\\.06`));
  });
});

describe('the release build of the library (cuda/prebuild.mjs)', () => {
  it('names the architectures CMake builds', () => {
    expect(architectureList('80-real;86-real;89-real;90')).toEqual(['sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90']);
    expect(architectureList('90-virtual')).toEqual(['compute_90']);
  });

  it('refuses a library that needs libcudart or the driver, or exports more than jb_cuda_*', () => {
    const ok = { needs: ['libstdc++.so.6', 'libc.so.6'], exported: ['jb_cuda_api_version', 'jb_cuda_get_api'] };
    expect(libraryProblems(ok)).toEqual([]);
    expect(libraryProblems({ ...ok, needs: [...ok.needs, 'libcudart.so.13'] }).join()).toMatch(/linked statically/);
    expect(libraryProblems({ ...ok, needs: [...ok.needs, 'libcuda.so.1'] }).join()).toMatch(/would not load without a driver/);
    expect(libraryProblems({ ...ok, exported: [...ok.exported, 'cudaMalloc'] }).join()).toMatch(/exports cudaMalloc/);
  });
});
