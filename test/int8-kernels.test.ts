/**
 * int8 weight kernels (`convert --dtype int8`; csrc/cpu/matmul.h): the few-row GEMV of
 * decoding (stored (K, N) and the (N, K) x_out dots) and the packed GEMM of prefill (int8
 * dequantised while packing), for every instruction set this machine has and the portable
 * path forced by JUKEBOX_CPU, against the plain reference, on odd shapes, with zero
 * channels and the extreme int8 values.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dequantizeInt8 } from '../lib/checkpoint/dtype-convert.js';
import { native, packageRoot, type NativeIsa } from '../lib/native.js';
import { maxAbs, maxAbsDiff, randInt, randn, rng } from './helpers/random.js';

const k = native().kernels;
const detected = k.info().detectedIsa as NativeIsa;
const ALL_ISAS: readonly NativeIsa[] = ['avx512', 'avx2-fma', 'generic'];
const isas = ALL_ISAS.slice(ALL_ISAS.indexOf(detected));
afterAll(() => {
  k.setIsa(detected);
});

// The test entry takes an Int8Array and the N scales as a 9th argument (kernels_binding.cc).
type Linear = (x: Float32Array, M: number, K: number, w: Float32Array | Int8Array, N: number, transposed: boolean, bias: Float32Array | null, impl: 'ref' | 'fast', scales?: Float32Array) => Float32Array;
const linear = k.linear as unknown as Linear;

function tolerance(ref: Float32Array, K: number): number {
  return 4e-6 * Math.sqrt(K) * Math.max(1, maxAbs(ref));
}

function randomInt8(n: number, rand: () => number): Int8Array {
  const q = new Int8Array(n);
  for (let i = 0; i < n; i++) q[i] = rand() < 0.05 ? (rand() < 0.5 ? -127 : 127) : randInt(-127, 127, rand);
  return q;
}

function randomScales(N: number, rand: () => number): Float32Array {
  const s = new Float32Array(N);
  for (let j = 0; j < N; j++) s[j] = j % 7 === 3 ? 0 : (0.2 + rand()) / 127; // some zero channels
  return s;
}

// M <= 16: the few-row kernels (the decode step, batches up to 16); M > 16 the packed GEMM. N around the 16-
// column vectors and the 24-column GEMM panels; K around the 8/16-lane dot tails.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 7, 15], [2, 16, 16], [3, 17, 17], [4, 37, 53], [5, 64, 100], [7, 129, 33], [8, 40, 257], [1, 300, 1000],
  [4, 96, 2049], [9, 37, 53], [13, 65, 99], [16, 300, 260], [17, 37, 53], [33, 130, 23], [20, 48, 335],
];

describe.each(isas)('int8 kernels (%s)', (isa) => {
  it('linear with int8 weights matches the reference, both layouts, odd shapes, zero channels', () => {
    k.setIsa(isa);
    const rand = rng(77);
    for (const [M, K, N] of SHAPES) {
      const x = randn(M * K, rand);
      const q = randomInt8(K * N, rand);
      const s = randomScales(N, rand);
      const b = randn(N, rand);
      for (const transposed of [false, true]) {
        for (const bias of [b, null]) {
          const ref = linear(x, M, K, q, N, transposed, bias, 'ref', s);
          const fast = linear(x, M, K, q, N, transposed, bias, 'fast', s);
          const label = `${isa} ${M}x${K}x${N} t=${transposed} bias=${bias !== null}`;
          expect(maxAbsDiff(fast, ref), label).toBeLessThan(tolerance(ref, K));
          // a zero channel's outputs are exactly its bias
          for (let m = 0; m < M; m++) for (let j = 3; j < N; j += 7) expect(fast[m * N + j], label).toBe(bias ? bias[j]! : 0);
        }
      }
    }
  });

  it('the packed GEMM on int8 weights gives the bits of the fp32 GEMM on the dequantised weights', () => {
    k.setIsa(isa);
    const rand = rng(78);
    for (const [M, K, N] of [[17, 37, 53], [33, 130, 23], [20, 48, 335], [64, 17, 48]] as const) {
      const x = randn(M * K, rand);
      const q = randomInt8(K * N, rand);
      const s = randomScales(N, rand);
      const b = randn(N, rand);
      // (K, N): scales per column; (N, K): per row = per output channel again
      const deq = dequantizeInt8(q, [K, N], s, 1);
      expect(linear(x, M, K, q, N, false, b, 'fast', s)).toEqual(linear(x, M, K, deq, N, false, b, 'fast'));
      const deqT = dequantizeInt8(q, [N, K], s, 0);
      expect(linear(x, M, K, q, N, true, b, 'fast', s)).toEqual(linear(x, M, K, deqT, N, true, b, 'fast'));
    }
  });

  it('refuses int8 weights without their N scales', () => {
    k.setIsa(isa);
    const x = new Float32Array(4), q = new Int8Array(12);
    expect(() => linear(x, 1, 4, q, 3, false, null, 'fast')).toThrow(/scales/);
    expect(() => linear(x, 1, 4, q, 3, false, null, 'fast', new Float32Array(4))).toThrow(/scales/);
  });
});

describe.runIf(isas.includes('avx512') && isas.includes('avx2-fma'))('int8: AVX-512 vs AVX2', () => {
  it('the few-row int8 kernel (stored (K, N)) gives the same bits', () => {
    const rand = rng(79);
    for (const [M, K, N] of [[1, 300, 1000], [4, 96, 2049], [3, 17, 17], [2, 129, 530], [9, 100, 2100], [16, 130, 333]] as const) {
      const x = randn(M * K, rand), q = randomInt8(K * N, rand), s = randomScales(N, rand), b = randn(N, rand);
      k.setIsa('avx512');
      const a = linear(x, M, K, q, N, false, b, 'fast', s);
      k.setIsa('avx2-fma');
      expect(linear(x, M, K, q, N, false, b, 'fast', s), `${M}x${K}x${N}`).toEqual(a);
    }
    k.setIsa(detected);
  });
});

describe('int8: the portable path forced by JUKEBOX_CPU=generic', () => {
  it('runs the portable int8 kernels in a fresh process and matches the reference', () => {
    const mod = pathToFileURL(join(packageRoot, 'dist', 'native.js')).href;
    const script = `
      const { native } = await import(${JSON.stringify(mod)});
      const k = native().kernels;
      let s = 5; const r = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
      let worst = 0;
      for (const [M, K, N, t] of [[1, 37, 53, false], [4, 129, 300, false], [3, 65, 77, true], [12, 33, 50, false], [10, 20, 30, true]]) {
        const x = Float32Array.from({ length: M * K }, r), q = Int8Array.from({ length: K * N }, () => Math.round(r() * 254));
        const sc = Float32Array.from({ length: N }, () => Math.abs(r()) / 50);
        const ref = k.linear(x, M, K, q, N, t, null, 'ref', sc), fast = k.linear(x, M, K, q, N, t, null, 'fast', sc);
        for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - fast[i]) / Math.max(1, Math.abs(ref[i])));
      }
      console.log(k.info().isa, worst);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, JUKEBOX_CPU: 'generic' } });
    expect(r.status, r.stderr).toBe(0);
    const [isa, worst] = r.stdout.trim().split(' ');
    expect(isa).toBe('generic');
    expect(Number(worst)).toBeLessThan(1e-4);
  });
});
