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

const dir = join(packageRoot, 'build', 'cuda-emu');
const asanDir = join(packageRoot, 'build', 'cuda-emu-asan');
const tsanSelftest = join(packageRoot, 'build', 'cuda-emu-tsan', 'jukebox-cuda-emu-selftest');
const programs = ['libjukebox-cuda.so', 'jukebox-cuda-parity', 'jukebox-cuda-api-test', 'jukebox-cuda-emu-selftest'];
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

  it('the addon loads the emulated library and says "cuda (emulated on the CPU)"; generate runs on the CPU and says why', () => {
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
    expect(cuda.reason).toMatch(/^cuda \(emulated on the CPU\): .* never used for generation/);

    const out = join(tmp, 'gen');
    const gen = spawnSync(process.execPath, [join(packageRoot, 'bin', 'jukebox.js'), 'generate', '--seconds', '1', '--levels', '2', '--seed', '3', '-o', out], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(gen.status, gen.stdout + gen.stderr).toBe(0);
    expect(gen.stdout + gen.stderr).toMatch(/backend: auto: using the CPU .*because CUDA is unavailable: cuda \(emulated on the CPU\)/);
    const forced = spawnSync(process.execPath, [join(packageRoot, 'bin', 'jukebox.js'), 'generate', '--seconds', '1', '--backend', 'cuda', '-o', out], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(forced.status).not.toBe(0);
    expect(forced.stdout + forced.stderr).toMatch(/ERR_BACKEND_UNAVAILABLE|cannot run here/);
    expect(forced.stdout + forced.stderr).toContain('cuda (emulated on the CPU)');
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
    const [self, api, half1, half2] = await Promise.all([
      run(join(asanDir, 'jukebox-cuda-emu-selftest'), [], env),
      run(join(asanDir, 'jukebox-cuda-api-test'), [join(asanDir, 'libjukebox-cuda.so')], env),
      run(parity, ['--only', 'gemv,layer_norm,gelu,residual,attn_decode,conv,dequantize'], env),
      run(parity, ['--only', 'attn_prefill,sampling,layer,graph'], env),
    ]);
    for (const [name, r, ok] of [
      ['selftest', self, /^emu selftest ok: \d+ cases$/m],
      ['api test', api, /^ok \d+ checks$/m],
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
