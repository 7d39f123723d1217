/**
 * Backend selection and the run-time loader of the CUDA backend library: on a machine
 * without CUDA, 'auto' picks the CPU and says why, and 'cuda' is ERR_BACKEND_UNAVAILABLE.
 * The loader's other outcomes (library missing, not a backend, version mismatch, no driver,
 * unsupported device, kernels missing, available) are checked in child processes against
 * small fake libraries built here with the C compiler from cuda/include/jukebox_cuda.h.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo, engineBackend, resolveBackend, type Backend, type BackendInfo } from '../lib/backend.js';
import { JukeboxError } from '../lib/errors.js';
import { packageRoot } from '../lib/native.js';

describe('backendInfo / resolveBackend (this machine)', () => {
  const info = backendInfo();

  it('reports the CPU backend and whether CUDA is available, with a reason when not', () => {
    expect(info.cpu.available).toBe(true);
    expect(info.cpu.threads).toBeGreaterThan(0);
    expect(typeof info.cuda.available).toBe('boolean');
    expect(Array.isArray(info.cuda.devices)).toBe(true);
    if (!info.cuda.available) {
      expect(info.cuda.reason).toMatch(/\w/);
    }
  });

  it("'cpu' always resolves to the CPU", () => {
    const r = resolveBackend('cpu', info);
    expect(r.backend).toBe('cpu');
    expect(r.reason).toMatch(/CPU/);
  });

  it.runIf(!info.cuda.available)("'auto' falls back to the CPU and says why", () => {
    const r = resolveBackend('auto');
    expect(r.backend).toBe('cpu');
    expect(r.reason).toContain('CUDA is unavailable');
    expect(r.reason).toContain(info.cuda.reason!);
  });

  it.runIf(!info.cuda.available)("'cuda' is ERR_BACKEND_UNAVAILABLE with the reason and what to do", () => {
    let err: unknown;
    try {
      resolveBackend('cuda');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JukeboxError);
    expect((err as JukeboxError).code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect((err as JukeboxError).message).toContain(info.cuda.reason!);
    expect((err as JukeboxError).message).toMatch(/'auto' or 'cpu'/);
  });

  it.runIf(info.cuda.available)("'auto' and 'cuda' pick CUDA where it is available", () => {
    expect(resolveBackend('auto').backend).toBe('cuda');
    expect(resolveBackend('cuda').backend).toBe('cuda');
  });

  it('resolves from a given BackendInfo, and refuses unknown names', () => {
    const withGpu: BackendInfo = {
      cpu: info.cpu,
      cuda: {
        available: true,
        searched: [],
        libraryLoaded: true,
        devices: [
          { index: 0, name: 'Test GPU', computeCapability: '8.6', multiprocessors: 84, totalBytes: 24 * 2 ** 30, supported: true },
        ],
      },
    };
    expect(resolveBackend('auto', withGpu)).toEqual({ backend: 'cuda', reason: 'auto: CUDA is available: Test GPU (sm_86, 24 GiB)' });
    expect(resolveBackend('cuda', withGpu).backend).toBe('cuda');
    expect(resolveBackend('cpu', withGpu).backend).toBe('cpu');
    expect(() => resolveBackend('gpu' as Backend, withGpu)).toThrow(/unknown backend "gpu"/);
    // The engine's models: a device in the report is not enough, the loaded library must run
    // the model path (here no library is loaded at all): 'auto' runs on the CPU and says why,
    // 'cuda' is refused with what to do; without a GPU 'auto' is the CPU as before.
    const auto = engineBackend('auto', withGpu);
    expect(auto).toMatchObject({ requested: 'auto', used: 'cpu' });
    expect(auto.reason).toMatch(/Test GPU .*, but /);
    expect(() => engineBackend('cuda', withGpu)).toThrow(/Test GPU .*, but .*: use backend 'auto' or 'cpu'/);
    expect(engineBackend('cpu', withGpu)).toMatchObject({ requested: 'cpu', used: 'cpu' });
    const noGpu: BackendInfo = { cpu: info.cpu, cuda: { available: false, searched: [], libraryLoaded: false, devices: [], reason: 'no library' } };
    expect(engineBackend('auto', noGpu)).toMatchObject({ used: 'cpu' });
    expect(() => engineBackend('cuda', noGpu)).toThrow(/cannot run here: no library/);
  });
});

// ---- the loader against fake libraries, one child process each (the probe runs once per process)

const FAKE_C = `
#include <stdio.h>
#include <string.h>
#include "jukebox_cuda.h"
#ifndef FAKE_SYMBOLS
#define FAKE_SYMBOLS 1
#endif
static const char* build_info(void) { return "fake CUDA"; }
static uint64_t capabilities(void) { return FAKE_CAPS; }
static int versions(int* r, int* d) { *r = 13000; *d = FAKE_DRIVER; return 0; }
static int device_count(int* n) { *n = FAKE_COUNT; return FAKE_COUNT_STATUS; }
static int device_info(int i, jb_cuda_device_info* o) {
  memset(o, 0, sizeof *o);
  o->index = i;
  snprintf(o->name, sizeof o->name, "Fake GPU %d", i);
  o->cc_major = FAKE_CC / 10; o->cc_minor = FAKE_CC % 10;
  o->multiprocessors = 132; o->total_bytes = 80ull << 30; o->supported = FAKE_CC >= 80;
  return 0;
}
static const char* last_error(void) { return "fake: cudaErrorInsufficientDriver"; }
static const jb_cuda_api api = {
  .api_version = FAKE_VERSION, .struct_size = sizeof(jb_cuda_api), .build_info = build_info,
  .capabilities = capabilities, .versions = versions, .device_count = device_count,
  .device_info = device_info, .last_error = last_error,
};
#if FAKE_SYMBOLS
JB_CUDA_EXPORT uint32_t jb_cuda_api_version(void) { return FAKE_VERSION; }
JB_CUDA_EXPORT const jb_cuda_api* jb_cuda_get_api(uint32_t v) { return v == FAKE_VERSION ? &api : 0; }
#else
JB_CUDA_EXPORT int something_else(void) { return api.api_version; }
#endif
`;

interface Fake {
  version?: string;
  caps?: string;
  driver?: number;
  count?: number;
  countStatus?: number;
  cc?: number;
  symbols?: boolean;
}

const cc = ['cc', 'gcc', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
const work = mkdtempSync(join(tmpdir(), 'jukebox-backend-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function buildFake(name: string, f: Fake): string {
  const src = join(work, 'fake.c');
  if (!existsSync(src)) writeFileSync(src, FAKE_C);
  const out = join(work, `lib${name}.so`);
  const defs = {
    FAKE_VERSION: f.version ?? 'JB_CUDA_API_VERSION',
    FAKE_CAPS: f.caps ?? 'JB_CUDA_CAPS_GENERATE',
    FAKE_DRIVER: f.driver ?? 13000,
    FAKE_COUNT: f.count ?? 1,
    FAKE_COUNT_STATUS: f.countStatus ?? 0,
    FAKE_CC: f.cc ?? 90,
    FAKE_SYMBOLS: f.symbols === false ? 0 : 1,
  };
  execFileSync(cc!, [
    '-shared', '-fPIC', '-std=c99', '-O0', `-I${join(packageRoot, 'cuda', 'include')}`,
    ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`), src, '-o', out,
  ]);
  return out;
}

/** backendInfo() of a fresh process with JUKEBOX_CUDA_LIB set (null: unset). */
function probe(lib: string | null): BackendInfo['cuda'] & { apiVersion?: number } {
  const env = { ...process.env };
  if (lib === null) delete env.JUKEBOX_CUDA_LIB;
  else env.JUKEBOX_CUDA_LIB = lib;
  const script =
    `const a = require('node-gyp-build')(${JSON.stringify(packageRoot)});` +
    `if (typeof a.VQVAE !== 'function') throw new Error('addon incomplete');` +
    `process.stdout.write(JSON.stringify(a.backendInfo().cuda));`;
  const out = execFileSync(process.execPath, ['-e', script], { env, cwd: packageRoot, encoding: 'utf8' });
  return JSON.parse(out);
}

describe.runIf(cc !== undefined)('CUDA library loader (fake libraries)', () => {
  it('JUKEBOX_CUDA_LIB naming a missing file: unavailable, the addon still loads', () => {
    const r = probe(join(work, 'missing.so'));
    expect(r.available).toBe(false);
    expect(r.libraryLoaded).toBe(false);
    expect(r.reason).toMatch(/JUKEBOX_CUDA_LIB is set to .*missing\.so, which is not a file/);
  });

  it('a library without the entry points is refused', () => {
    const r = probe(buildFake('nosym', { symbols: false }));
    expect(r.available).toBe(false);
    expect(r.reason).toMatch(/is not a jukebox CUDA backend library/);
  });

  it('a library of another API version is refused (version mismatch)', () => {
    const r = probe(buildFake('v999', { version: '999u' }));
    expect(r.available).toBe(false);
    expect(r.libraryLoaded).toBe(false);
    expect(r.apiVersion).toBe(999);
    expect(r.reason).toMatch(/version mismatch: .* implements CUDA backend API version 999 but this addon needs version \d+; rebuild/);
  });

  it('no driver, an old driver, no device', () => {
    const noDriver = probe(buildFake('nodriver', { driver: 0, count: 0, countStatus: 1 }));
    expect(noDriver.libraryLoaded).toBe(true);
    expect(noDriver.available).toBe(false);
    expect(noDriver.reason).toMatch(/^no NVIDIA driver/);
    const oldDriver = probe(buildFake('olddriver', { driver: 12020, count: 0, countStatus: 1 }));
    expect(oldDriver.reason).toMatch(/NVIDIA driver \(CUDA 12\.2\) is too old for the CUDA 13\.0 runtime/);
    const noDevice = probe(buildFake('nodevice', { count: 0, countStatus: 2 }));
    expect(noDevice.reason).toMatch(/^no CUDA device found/);
  });

  it('a device older than the build supports', () => {
    const r = probe(buildFake('sm75', { cc: 75 }));
    expect(r.available).toBe(false);
    expect(r.devices).toHaveLength(1);
    expect(r.devices[0]).toMatchObject({ name: 'Fake GPU 0', computeCapability: '7.5', supported: false });
    expect(r.reason).toMatch(/no supported CUDA device: Fake GPU 0 \(sm_75\)/);
  });

  it('a library without the generation kernels is not offered', () => {
    const r = probe(buildFake('nokernels', { caps: '3' }));
    expect(r.available).toBe(false);
    expect(r.libraryLoaded).toBe(true);
    expect(r.devices).toHaveLength(1);
    expect(r.reason).toMatch(/does not implement the kernels generation needs yet/);
  });

  it('a complete library with a supported device is available', () => {
    const r = probe(buildFake('good', { count: 2 }));
    expect(r.available).toBe(true);
    expect(r.reason).toBeUndefined();
    expect(r.buildInfo).toBe('fake CUDA');
    expect(r.devices.map((d) => d.name)).toEqual(['Fake GPU 0', 'Fake GPU 1']);
    expect(r.devices[0]).toMatchObject({ computeCapability: '9.0', supported: true, totalBytes: 80 * 2 ** 30 });
    const viaAuto = resolveBackend('auto', { cpu: backendInfo().cpu, cuda: r });
    expect(viaAuto.backend).toBe('cuda');
    expect(viaAuto.reason).toMatch(/Fake GPU 0 \(sm_90, 80 GiB\)/);
  });
});

const realLib = join(packageRoot, 'build', 'cuda', 'libjukebox-cuda.so');

describe.runIf(existsSync(realLib))('the built CUDA backend library (build/cuda)', () => {
  it('is found without JUKEBOX_CUDA_LIB, loads, and matches the addon\u2019s API version', () => {
    const r = probe(null);
    expect(r.searched).toContain(realLib);
    expect(r.libraryLoaded).toBe(true);
    expect(r.library).toBe(realLib);
    expect(r.buildInfo).toMatch(/^CUDA \d+\.\d+; architectures /);
    // Until the kernels land (cuda/README.md) the library never offers itself for generation.
    expect(r.available).toBe(false);
    expect(r.reason).toMatch(/\w/);
  });
});
