/**
 * The CUDA backend's pure index/tiling helpers (cuda/common/*.h, __host__ __device__) on the
 * CPU, without CUDA: cuda/test/helpers_test.cc is compiled with the machine's C++ compiler
 * together with the CPU engine's attention and KV-cache code and checks the helpers against
 * them key by key (block-sparse key sets of attention types 0,1,2,3,6,7, tile maps, KV-cache
 * rows and runs) and numerically (attention through the helpers' online-softmax merges vs
 * attention_ref / attention_forward).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/native.js';

const cxx = [process.env.CXX, 'g++', 'c++', 'clang++'].find((c) => c && spawnSync(c, ['--version']).status === 0);
if (!cxx) console.warn('cuda-helpers: skipped: no C++ compiler (g++, c++ or clang++) on PATH');

describe.runIf(cxx !== undefined)('cuda/common helpers on the CPU (no GPU needed)', () => {
  const work = mkdtempSync(join(tmpdir(), 'jukebox-cuda-helpers-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('compile as plain C++ and match the CPU engine', () => {
    const exe = join(work, 'helpers_test');
    const src = (p: string) => join(packageRoot, p);
    execFileSync(
      cxx!,
      [
        '-std=c++17', '-O1', '-pthread', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Werror',
        `-I${src('csrc')}`,
        src('cuda/test/helpers_test.cc'),
        src('csrc/cpu/vec.cc'),
        src('csrc/cpu/vec_avx2.cc'),
        src('csrc/cpu/cpu_features.cc'),
        src('csrc/core/thread_pool.cc'),
        '-o', exe,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const r = spawnSync(exe, [], { encoding: 'utf8', env: { ...process.env, JUKEBOX_THREADS: '2' } });
    if (r.status !== 0) throw new Error(`helpers_test failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toMatch(/^ok \d+ checks$/m);
    expect(r.stdout).toContain('key sets of types 0,1,2,3,6,7 equal the CPU engine');
    expect(r.stdout).toContain('KV cache rows, runs and positions equal csrc/model/kv_cache.cc');
  }, 60_000);

  it("the kernels' footing: fp16 upload conversion, GEMV split plan, and references (GEMV, LayerNorm, decode attention) equal to the engine's ops", () => {
    const exe = join(work, 'kernels_ref_test');
    const src = (p: string) => join(packageRoot, p);
    execFileSync(
      cxx!,
      [
        '-std=c++17', '-O1', '-pthread', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Werror',
        `-I${src('csrc')}`,
        src('cuda/test/kernels_ref_test.cc'),
        ...['cpu/matmul.cc', 'cpu/gemm_ukernel_generic.cc', 'cpu/gemm_ukernel_avx2.cc', 'cpu/gemv_avx2.cc', 'cpu/vec.cc', 'cpu/vec_avx2.cc',
          'cpu/cpu_features.cc', 'cpu/attention.cc', 'core/thread_pool.cc', 'model/transformer.cc'].map((f) => src(`csrc/${f}`)),
        '-o', exe,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const r = spawnSync(exe, [], { encoding: 'utf8', env: { ...process.env, JUKEBOX_THREADS: '2' } });
    if (r.status !== 0) throw new Error(`kernels_ref_test failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain("Philox4x32-10 matches Random123's known answers; the engine draws through the same code");
    expect(r.stdout).toMatch(/^fp16 conversion: all 65536 halves round-trip, \d+ random floats round to the nearest/m);
    expect(r.stdout).toContain('GEMV plan: every column and k covered once');
    expect(r.stdout).toContain('kernel references equal the engine: matmul_ref with fp16 weights');
    expect(r.stdout).toMatch(/decode attention reference over the fp16 caches equals attention_ref for types 0,1,2,3,6,7/);
    expect(r.stdout).toMatch(/^ok \d+ checks$/m);
  }, 120_000);
});
