/**
 * The CUDA backend without a GPU: the emulation build (`npm run build:cuda-emu`,
 * cuda/emu/) compiles the same cuda/kernels/*.cu, cuda/src/* and cuda/test/* with the host
 * C++ compiler against the project's emulator, and this suite runs it:
 *  - the emulator's self-test: deliberately broken kernels (a removed barrier, an
 *    out-of-bounds write, a full-mask shuffle in a partial warp, a shuffle naming an exited
 *    lane, divergent or partial barriers, a deadlock, launch limits) must be caught, and the
 *    stream / graph / memory-budget semantics hold; in both thread orders and with OS threads;
 *  - the parity program, every case, in both thread orders (forward and reverse, run side by
 *    side): each kernel against the CPU engine's reference at small shapes of every case type
 *    (plain-temperature sampling at 2048 and 2127 bins included);
 *  - the library's C ABI through dlopen (buffers, OOM, a kernel on the context stream);
 *  - the prior path (prior_create / prior_window / prior_forward) against the CPU engine's
 *    DecodeSession / sample_window / Autoregressive::forward (jukebox-cuda-prior-test), in both
 *    thread orders, and its out-of-memory refusal under a 4 MiB device budget;
 *  - the addon loading the emulated library like any other, and backendInfo() / `jukebox
 *    generate` saying "cuda (emulated on the CPU)";
 *  - where CI built them, the same under AddressSanitizer + UBSan (build/cuda-emu-asan), and
 *    the self-test under ThreadSanitizer (build/cuda-emu-tsan), which must report the
 *    removed barrier as a data race and nothing else.
 * Without build/cuda-emu it reports itself skipped (JUKEBOX_CUDA_EMU_REQUIRE=1, as .ci/run
 * sets, makes that a failure). test/cuda-parity.test.ts is the same parity program on a GPU.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../lib/native.js';

// JUKEBOX_CUDA_EMU_DIR: another emulation build folder (node cuda/emu/build.mjs --out=DIR)
const dir = process.env.JUKEBOX_CUDA_EMU_DIR ?? join(packageRoot, 'build', 'cuda-emu');
const asanDir = join(packageRoot, 'build', 'cuda-emu-asan');
const tsanSelftest = join(packageRoot, 'build', 'cuda-emu-tsan', 'jukebox-cuda-emu-selftest');
const programs = ['libjukebox-cuda.so', 'jukebox-cuda-parity', 'jukebox-cuda-api-test', 'jukebox-cuda-emu-selftest', 'jukebox-cuda-prior-test'];
const built = programs.every((p) => existsSync(join(dir, p)));
const asanBuilt = programs.every((p) => existsSync(join(asanDir, p)));
const required = process.env.JUKEBOX_CUDA_EMU_REQUIRE === '1';
if (!built) console.warn(`cuda-emu: skipped: ${dir} is not built (npm run build:cuda-emu)`);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(exe: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const child = spawn(exe, args, { env: { ...process.env, JUKEBOX_THREADS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, seconds: (Date.now() - start) / 1000 });
    });
  });
}

const caseNames = (out: string) =>
  out
    .split('\n')
    .filter((l) => /^(ok|FAIL) /.test(l))
    .map((l) => l.replace(/^(ok|FAIL)\s+/, '').replace(/\s+max err .*$/, ''));

describe('CUDA emulation build is present where CI needs it', () => {
  it.runIf(required)('build/cuda-emu was built (JUKEBOX_CUDA_EMU_REQUIRE=1)', () => {
    expect(built, `${dir} lacks ${programs.filter((p) => !existsSync(join(dir, p))).join(', ')}`).toBe(true);
  });
  it('reports whether it ran', () => {
    expect(typeof built).toBe('boolean');
  });
});

describe.runIf(built)('CUDA backend on the emulator (no GPU)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'jukebox-cuda-emu-'));
  let allCases: string[] = [];  // the parity program's cases, from the normal build's run
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('the emulator catches broken kernels (forward, reverse, OS threads)', async () => {
    const exe = join(dir, 'jukebox-cuda-emu-selftest');
    const modes: Record<string, string>[] = [{}, { JUKEBOX_CUDA_EMU_ORDER: 'reverse' }, { JUKEBOX_CUDA_EMU_THREADS: 'os' }];
    for (const env of modes) {
      const r = await run(exe, [], { JUKEBOX_CUDA_EMU_QUIET: '1', ...env });
      console.log(`emu selftest ${JSON.stringify(env)} (${r.seconds.toFixed(1)} s):\n${r.stdout}`);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^emu selftest ok: \d+ cases$/m);
      for (const c of [
        'missing barrier gives a wrong answer',
        'out-of-bounds write caught',
        'full-mask shuffle in a partial warp caught',
        'shuffle naming an exited lane caught',
        'divergent __syncthreads caught',
        'deadlock caught',
        'launch limits',
        'stream order',
        'graph replay and capture rules',
        'device-memory budget',
        'wmma fragments (and a partial warp caught)',
      ]) {
        expect(r.stdout).toContain(`ok   ${c}:`);
      }
    }
  }, 120_000);

  it('every parity case passes in both thread orders', async () => {
    const exe = join(dir, 'jukebox-cuda-parity');
    const [fwd, rev] = await Promise.all([run(exe, [], { JUKEBOX_CUDA_EMU_ORDER: 'forward' }), run(exe, [], { JUKEBOX_CUDA_EMU_ORDER: 'reverse' })]);
    for (const [name, r] of [
      ['forward', fwd],
      ['reverse', rev],
    ] as const) {
      console.log(`parity, ${name} order (${r.seconds.toFixed(1)} s): ${r.stdout.trim().split('\n').pop()}`);
      const failed = r.stdout.split('\n').filter((l) => l.startsWith('FAIL '));
      expect(failed, `${name} order:\n${failed.join('\n')}\n${r.stderr}`).toEqual([]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^parity ok: \d+ cases, 0 outside tolerance$/m);
      expect(r.stdout).toMatch(/^device 0: cuda \(emulated on the CPU\)/m);
      // the cases the issue names, and one of each family
      for (const c of [
        /^ok +sampling bins=2048 T=1\.00 top_k=0 top_p=0\.00 /m,
        /^ok +sampling bins=2127 T=1\.00 top_k=0 top_p=0\.00 /m,
        /^ok +sampling bins=2127 T=0\.70 top_k=40 /m,
        /^ok +gemv fp16 \(K,N\) M=16 /m,
        /^ok +layer_norm rows=\d+ width=\d+ in place /m,
        /^ok +attn_decode type 7 /m,
        /^ok +attn_prefill type 6 /m,
        /^ok +conv_transpose1d /m,
        /^ok +dequantize /m,
        /^ok +decode layer type 6 /m,
        /^ok +decode layer graph type 2 .*one capture/m,
        /^ok +decode layer graph type 2 replays equal direct launches/m,
        /^ok +sampling graph bins=2127 /m,
        /^ok +gemm fp32 \(K,N\) M=130 /m,
        /^ok +gemm bf16 M=\d+ row \d+ alone equals its row bit for bit/m,
        /^ok +gemv bf16 \(K,N\) M=16 /m,
        /^ok +add_layer_norm /m,
        /^ok +attn_chunk fp32 type 1 rows \[21, 40\) vs the engine's attention_ref/m,
        /^ok +attn_chunk fp16 type 6 /m,
        /^ok +kv_store_chunk fp32 type 3 \[21, 40\) equals stores one by one/m,
        /^ok +embed bf16 /m,
      ]) {
        expect(r.stdout).toMatch(c);
      }
    }
    expect(caseNames(rev.stdout)).toEqual(caseNames(fwd.stdout));
    allCases = caseNames(fwd.stdout);
  }, 600_000);

  it("the library's C ABI: buffers, out of memory, attention_decode ordered on the context stream", async () => {
    const exe = join(dir, 'jukebox-cuda-api-test');
    for (const env of [{}, { JUKEBOX_CUDA_EMU_ORDER: 'reverse', JUKEBOX_CUDA_EMU_MEMORY: '512MiB' }] as Record<string, string>[]) {
      const r = await run(exe, [join(dir, 'libjukebox-cuda.so')], env);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ok \d+ checks$/m);
      expect(r.stdout).toContain('attention_decode through the ABI: types 0,1,2,3,6,7');
      expect(r.stdout).toMatch(/out of GPU memory allocating [\d.]+ MiB for the test's oversized buffer on cuda \(emulated on the CPU\)/);
    }
  }, 120_000);

  // The prior path end to end: random small priors (every attention type, fp32/fp16/bf16
  // weights, conditioning variants, n = 1..3) through prior_create / prior_window /
  // prior_forward against the CPU engine built into the program: sampled tokens equal, logits
  // within 1e-5, chunked prefill equal to one pass, fp16 KV within its tolerance, abort,
  // prior_free, out of memory. Both thread orders side by side; then under a 4 MiB budget.
  it('the prior path (prior_create / prior_window / prior_forward) equals the CPU engine', async () => {
    const exe = join(dir, 'jukebox-cuda-prior-test');
    const lib = join(dir, 'libjukebox-cuda.so');
    const [fwd, rev, oom] = await Promise.all([
      run(exe, [lib], { JUKEBOX_CUDA_EMU_ORDER: 'forward' }),
      run(exe, [lib], { JUKEBOX_CUDA_EMU_ORDER: 'reverse' }),
      run(exe, [lib, '--oom-only'], { JUKEBOX_CUDA_EMU_MEMORY: '4MiB' }),
    ]);
    for (const [name, r] of [
      ['forward', fwd],
      ['reverse', rev],
    ] as const) {
      console.log(`prior path, ${name} order (${r.seconds.toFixed(1)} s):\n${r.stdout}`);
      expect(r.status, r.stdout.slice(-3000) + r.stderr.slice(-3000)).toBe(0);
      expect(r.stdout).toMatch(/^ok \d+ checks$/m);
      for (const c of [
        /^ok +window A n=2 y_cond x_cond=full T=1 \[0,64\) +tokens 128\/128 equal/m,
        /^ok +window A n=3 start x_cond=broadcast top_k=5 .*chunked prefill \(7\) equal bit for bit/m,
        /^ok +window A n=1 forced /m,
        /^ok +window B n=3 y_cond top_p=0\.8 /m,
        /^ok +window C n=1 top_p=0\.9 /m,
        /^ok +forward A n=2 .* layer 4 \(type 6\) head 1 probabilities/m,
        /^ok +forward E n=2 encoder activations/m,
        /^ok +window A n=2 x_cond=full \[10,64\) +fp16 KV: /m,
        /^ok +abort through progress: ERR_ABORTED/m,
        /^ok +prior_free gives its [\d.]+ MiB back/m,
        /^ok +out of memory at create .*out of GPU memory for the oversized test prior: it needs/m,
      ]) {
        expect(r.stdout).toMatch(c);
      }
    }
    console.log(`prior path under a 4 MiB budget (${oom.seconds.toFixed(1)} s): ${oom.stdout.trim()}`);
    expect(oom.status, oom.stdout + oom.stderr).toBe(0);
    expect(oom.stdout).toMatch(/^ok +out of memory at create .*out of GPU memory for the oversized test prior: it needs .* has 4\.0 MiB \(4194304 bytes\) free/m);
  }, 600_000);

  it('the addon loads the emulated library and says "cuda (emulated on the CPU)"; generate runs on the CPU with auto and on the emulator with --backend cuda', () => {
    const lib = join(dir, 'libjukebox-cuda.so');
    const env = { ...process.env, JUKEBOX_CUDA_LIB: lib };
    const info = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `import { backendInfo } from ${JSON.stringify(join(packageRoot, 'dist', 'index.js'))}; console.log(JSON.stringify(backendInfo().cuda));`],
      { env, encoding: 'utf8' },
    );
    expect(info.status, info.stderr).toBe(0);
    const cuda = JSON.parse(info.stdout) as { available: boolean; reason?: string; libraryLoaded: boolean; library?: string; buildInfo?: string; devices: { name: string; supported: boolean }[] };
    expect(cuda.libraryLoaded).toBe(true);
    expect(cuda.library).toBe(lib);
    expect(cuda.available).toBe(false);
    expect(cuda.buildInfo).toMatch(/^cuda \(emulated on the CPU\)/);
    expect(cuda.devices[0]?.name).toMatch(/^cuda \(emulated on the CPU\)/);
    expect(cuda.reason).toMatch(/^cuda \(emulated on the CPU\): .* 'auto' never uses it/);

    const out = join(tmp, 'gen');
    const gen = spawnSync(process.execPath, [join(packageRoot, 'bin', 'jukebox.js'), 'generate', '--seconds', '1', '--levels', '2', '--seed', '3', '-o', out], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(gen.status, gen.stdout + gen.stderr).toBe(0);
    expect(gen.stdout + gen.stderr).toMatch(/backend: auto: using the CPU .*the CUDA library found is the emulation build, which 'auto' never uses/);
    const forced = spawnSync(process.execPath, [join(packageRoot, 'bin', 'jukebox.js'), 'generate', '--seconds', '1', '--levels', '2', '--seed', '3', '--backend', 'cuda', '-o', join(tmp, 'gen-cuda')], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(forced.status, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout + forced.stderr).toMatch(/backend: CUDA backend requested: .*emulation build \(cuda \(emulated on the CPU\)\)/);
  }, 180_000);

  // ThreadSanitizer over the self-test, where CI built it (node cuda/emu/build.mjs
  // --sanitize=thread --target=jukebox-cuda-emu-selftest): OS threads, so the removed
  // barrier is a data race TSan reports (in block_sum), and nothing else races: not the
  // correct kernels, not the emulator's barriers, collectives, streams or thread pool.
  it.runIf(existsSync(tsanSelftest))('ThreadSanitizer sees the missing barrier as a race, and only it (build/cuda-emu-tsan)', async () => {
    const r = await run(tsanSelftest, [], { JUKEBOX_CUDA_EMU_QUIET: '1', TSAN_OPTIONS: 'halt_on_error=0 exitcode=66' });
    console.log(`TSan selftest (${r.seconds.toFixed(1)} s): ${r.stdout.trim().split('\n').pop()}`);
    expect(r.stdout).toMatch(/^emu selftest ok: \d+ cases$/m);
    const races = r.stderr.match(/^SUMMARY: ThreadSanitizer: data race .*$/gm) ?? [];
    expect(races, r.stderr.slice(-4000)).toHaveLength(1);
    expect(races[0]).toMatch(/emu_selftest\.cc:\d+ in block_sum$/);
    expect(r.status).toBe(66);
  }, 300_000);

  // AddressSanitizer + UndefinedBehaviorSanitizer over the same programs, where CI built them
  // (node cuda/emu/build.mjs --sanitize=address,undefined). Every case of the self-test and
  // the ABI test; every case of the parity program in the forward order (the reverse order
  // reaches the same code; the sanitizers check addresses and arithmetic, not the order), in
  // two halves run side by side that together are the whole case list.
  it.runIf(asanBuilt)('the same under AddressSanitizer + UBSan (build/cuda-emu-asan)', async () => {
    const env = { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', JUKEBOX_CUDA_EMU_QUIET: '1' };
    const parity = join(asanDir, 'jukebox-cuda-parity');
    const [self, api, half1, half2, prior] = await Promise.all([
      run(join(asanDir, 'jukebox-cuda-emu-selftest'), [], env),
      run(join(asanDir, 'jukebox-cuda-api-test'), [join(asanDir, 'libjukebox-cuda.so')], env),
      run(parity, ['--only', 'gemv,layer_norm,gelu,residual,attn_decode,conv,dequantize,gemm,gemm_wmma,embed'], env),
      run(parity, ['--only', 'attn_prefill,sampling,layer,graph,attn_chunk'], env),
      run(join(asanDir, 'jukebox-cuda-prior-test'), [join(asanDir, 'libjukebox-cuda.so')], env),
    ]);
    for (const [name, r, ok] of [
      ['selftest', self, /^emu selftest ok: \d+ cases$/m],
      ['api test', api, /^ok \d+ checks$/m],
      ['prior test', prior, /^ok \d+ checks$/m],
      ['parity (first half)', half1, /^parity ok: \d+ cases, 0 outside tolerance$/m],
      ['parity (second half)', half2, /^parity ok: \d+ cases, 0 outside tolerance$/m],
    ] as const) {
      console.log(`ASan+UBSan ${name} (${r.seconds.toFixed(1)} s): ${r.stdout.trim().split('\n').pop()}`);
      expect(r.stderr).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
      expect(r.status, r.stdout.slice(-2000) + r.stderr.slice(-4000)).toBe(0);
      expect(r.stdout).toMatch(ok);
    }
    if (allCases.length) expect([...caseNames(half1.stdout), ...caseNames(half2.stdout)].sort()).toEqual([...allCases].sort());
  }, 900_000);
});

// The VQ-VAE decoder through the ABI (cuda/test/vqvae_model_test.cc): random decoder stacks
// of the default model's and official-like shapes decoded by the emulated library and by the
// CPU engine (relative 1e-5), the chunked path (bit-equal to one pass), bad codes, an abort
// from the progress callback, out-of-memory at create and at decode, memory returned.
describe.runIf(built)('VQ-VAE decoder on the emulator (vqvae_create / vqvae_decode)', () => {
  const exe = join(dir, 'jukebox-cuda-vqvae-test');
  const asanExe = join(asanDir, 'jukebox-cuda-vqvae-test');
  it.runIf(required)('build/cuda-emu has the VQ-VAE test', () => {
    expect(existsSync(exe), `${exe} is not built`).toBe(true);
  });

  it.runIf(existsSync(exe))('equals the CPU engine; chunks, errors, abort, out of memory (forward; reverse with a 512 MiB budget)', async () => {
    const lib = join(dir, 'libjukebox-cuda.so');
    const [fwd, rev] = await Promise.all([
      run(exe, [lib], { JUKEBOX_CUDA_EMU_ORDER: 'forward' }),
      run(exe, [lib, '--no-timing'], { JUKEBOX_CUDA_EMU_ORDER: 'reverse', JUKEBOX_CUDA_EMU_MEMORY: '512MiB' }),
    ]);
    for (const [name, r] of [
      ['forward', fwd],
      ['reverse, 512 MiB', rev],
    ] as const) {
      console.log(`vqvae test, ${name} (${r.seconds.toFixed(1)} s):\n${r.stdout.trim().split('\n').filter((l) => !l.startsWith('  ')).join('\n')}`);
      expect(r.status, r.stdout.slice(-3000) + r.stderr.slice(-3000)).toBe(0);
      expect(r.stdout).toMatch(/^ok \d+ checks$/m);
      expect(r.stdout).toMatch(/^decoders: max rel err \d/m);
      expect(r.stdout).toMatch(/^chunked decode .* in \d+ chunks .* equal bit for bit to one pass/m);
      expect(r.stdout).toContain("code 512 at index 57 (row 1, step 7) is outside [0, 512)");
      expect(r.stdout).toMatch(/aborted by the progress callback after layer 3 of 17/);
      expect(r.stdout).toMatch(/out of GPU memory creating VQ-VAE decoder 'default level 0 \(memory\)': .* need [\d.]+ MiB \(\d+ bytes\) on cuda \(emulated on the CPU\).* \(\d+ bytes\) free of /);
      expect(r.stdout).toMatch(/out of GPU memory allocating [\d.]+ MiB \(\d+ bytes\) for the activations of VQ-VAE decoder 'default level 0 \(memory\)'/);
      expect(r.stdout).toContain('free and context_destroy return everything');
    }
    expect(fwd.stdout).toMatch(/^3 s of default-model audio at level 0 .*: emulated [\d.]+ s/m);
  }, 600_000);

  it.runIf(existsSync(asanExe))('the same under AddressSanitizer + UBSan (build/cuda-emu-asan)', async () => {
    const env = { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', JUKEBOX_CUDA_EMU_QUIET: '1', JUKEBOX_CUDA_EMU_MEMORY: '512MiB' };
    const r = await run(asanExe, [join(asanDir, 'libjukebox-cuda.so'), '--no-timing'], env);
    console.log(`ASan+UBSan vqvae test (${r.seconds.toFixed(1)} s): ${r.stdout.trim().split('\n').pop()}`);
    expect(r.stderr).not.toMatch(/ERROR: AddressSanitizer|runtime error:/);
    expect(r.status, r.stdout.slice(-2000) + r.stderr.slice(-4000)).toBe(0);
    expect(r.stdout).toMatch(/^ok \d+ checks$/m);
  }, 900_000);
});
