/**
 * Kernel parity: every optimised CPU kernel (AVX2/FMA and the portable fallback) against
 * its plain scalar reference, on random shapes including odd sizes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { native, type NativeConvParams } from '../lib/native.js';
import { maxAbs, maxAbsDiff, randInt, randn, rng } from './helpers/random.js';

const k = native().kernels;
const detected = k.info().detectedIsa;
const isas = detected === 'avx2-fma' ? (['avx2-fma', 'generic'] as const) : (['generic'] as const);

afterAll(() => {
  k.setIsa(detected as 'generic' | 'avx2-fma');
});

// fp32 with different summation orders: relative error grows like sqrt(K) * eps.
function tolerance(ref: Float32Array, K: number): number {
  return 4e-6 * Math.sqrt(K) * Math.max(1, maxAbs(ref));
}

function randomConv(rand: () => number, transposed: boolean): { p: NativeConvParams; n: number; tin: number } {
  const kernel = randInt(1, 7, rand);
  const stride = randInt(1, 4, rand);
  const dilation = transposed ? randInt(1, 3, rand) : randInt(1, 9, rand);
  const pad = randInt(0, Math.max(0, Math.floor((dilation * (kernel - 1)) / 2) + 1), rand);
  return {
    p: { cin: randInt(1, 37, rand), cout: randInt(1, 29, rand), kernel, stride, pad, dilation, transposed },
    n: randInt(1, 3, rand),
    tin: randInt(dilation * (kernel - 1) + 1, 300, rand),
  };
}

describe.each(isas)('CPU kernels (%s)', (isa) => {
  it('selects the requested instruction set', () => {
    expect(k.setIsa(isa)).toBe(isa);
  });

  it('conv1d matches the reference on random shapes (any stride, padding, dilation)', () => {
    k.setIsa(isa);
    const rand = rng(1234);
    for (let trial = 0; trial < 60; trial++) {
      const { p, n, tin } = randomConv(rand, false);
      const x = randn(n * p.cin * tin, rand);
      const w = randn(p.cout * p.cin * p.kernel, rand, 0.3);
      const b = randn(p.cout, rand);
      const ref = k.conv1d(x, n, tin, w, b, p, 'ref');
      const fast = k.conv1d(x, n, tin, w, b, p, 'fast');
      expect(fast.length).toBe(ref.length);
      expect(maxAbsDiff(fast, ref), JSON.stringify({ p, n, tin })).toBeLessThan(tolerance(ref, p.cin * p.kernel));
    }
  });

  it('conv_transpose1d matches the reference on random shapes', () => {
    k.setIsa(isa);
    const rand = rng(99);
    for (let trial = 0; trial < 60; trial++) {
      const { p, n, tin } = randomConv(rand, true);
      if ((tin - 1) * p.stride! - 2 * p.pad! + p.dilation! * (p.kernel - 1) + 1 <= 0) continue;
      const x = randn(n * p.cin * tin, rand);
      const w = randn(p.cin * p.cout * p.kernel, rand, 0.3);
      const b = randn(p.cout, rand);
      const ref = k.conv1d(x, n, tin, w, b, p, 'ref');
      const fast = k.conv1d(x, n, tin, w, b, p, 'fast');
      expect(maxAbsDiff(fast, ref), JSON.stringify({ p, n, tin })).toBeLessThan(tolerance(ref, p.cin * p.kernel));
    }
  });

  it('the VQ-VAE shapes: k4 s2 p1 down/up-sampling and dilated k3 residual convs', () => {
    k.setIsa(isa);
    const rand = rng(7);
    const cases: NativeConvParams[] = [
      { cin: 1, cout: 64, kernel: 4, stride: 2, pad: 1 },
      { cin: 64, cout: 64, kernel: 3, pad: 243, dilation: 243 },
      { cin: 64, cout: 64, kernel: 1 },
      { cin: 64, cout: 32, kernel: 4, stride: 2, pad: 1, transposed: true },
      { cin: 32, cout: 1, kernel: 3, pad: 1 },
    ];
    for (const p of cases) {
      const tin = 517;
      const x = randn(2 * p.cin * tin, rand);
      const w = randn(p.cin * p.cout * p.kernel, rand, 0.2);
      const b = randn(p.cout, rand);
      const ref = k.conv1d(x, 2, tin, w, b, p, 'ref');
      const fast = k.conv1d(x, 2, tin, w, b, p, 'fast');
      expect(maxAbsDiff(fast, ref), JSON.stringify(p)).toBeLessThan(tolerance(ref, p.cin * p.kernel));
    }
  });

  it('fused ReLU-on-input and scaled residual accumulation match relu -> conv -> y + s*out', () => {
    k.setIsa(isa);
    const rand = rng(5);
    const p: NativeConvParams = { cin: 13, cout: 13, kernel: 3, pad: 3, dilation: 3 };
    const n = 2, tin = 77;
    const x = randn(n * p.cin * tin, rand);
    const w = randn(p.cout * p.cin * p.kernel, rand, 0.3);
    const b = randn(p.cout, rand);
    const y0 = randn(n * p.cout * tin, rand);
    const relu = x.map((v) => Math.max(v, 0));
    const ref = k.conv1d(relu, n, tin, w, b, p, 'ref');
    const expected = y0.map((v, i) => v + 0.25 * ref[i]);
    const fast = k.conv1d(x, n, tin, w, b, p, 'fast', { reluInput: true, accumulate: true, scale: 0.25 }, y0);
    expect(maxAbsDiff(fast, expected)).toBeLessThan(1e-5);
    // and the reference itself differs from the un-ReLU'd conv, so the check has teeth
    expect(maxAbsDiff(k.conv1d(x, n, tin, w, b, p, 'ref'), ref)).toBeGreaterThan(1e-2);
  });

  it('the fused residual block matches relu -> conv -> relu -> conv -> scaled residual', () => {
    k.setIsa(isa);
    const rand = rng(77);
    for (let trial = 0; trial < 25; trial++) {
      const cin = randInt(1, 40, rand), cmid = randInt(1, 40, rand);
      const kernel = 2 * randInt(0, 3, rand) + 1, dilation = randInt(1, 30, rand);
      const pa: NativeConvParams = { cin, cout: cmid, kernel, dilation, pad: (dilation * (kernel - 1)) / 2 };
      const n = randInt(1, 2, rand), t = randInt(1, 400, rand);
      const x = randn(n * cin * t, rand);
      const wa = randn(cmid * cin * kernel, rand, 0.3), ba = randn(cmid, rand, 0.1);
      const wb = randn(cin * cmid, rand, 0.3), bb = randn(cin, rand, 0.1);
      const scale = trial % 2 ? 1 : 0.25;
      const ref = k.resblock(x, n, t, wa, ba, pa, wb, bb, scale, 'ref');
      const fast = k.resblock(x, n, t, wa, ba, pa, wb, bb, scale, 'fast');
      expect(maxAbsDiff(fast, ref), JSON.stringify({ pa, n, t })).toBeLessThan(tolerance(ref, cin * kernel + cmid));
    }
  });

  it('matmul matches the reference on odd sizes', () => {
    k.setIsa(isa);
    const rand = rng(11);
    for (const [M, K, N] of [[1, 1, 1], [7, 13, 5], [6, 16, 16], [37, 129, 211], [64, 3, 1000], [5, 300, 17]]) {
      const a = randn(M * K, rand), b = randn(K * N, rand);
      const ref = k.matmul(a, b, M, K, N, 'ref');
      const fast = k.matmul(a, b, M, K, N, 'fast');
      expect(maxAbsDiff(fast, ref), `${M}x${K}x${N}`).toBeLessThan(tolerance(ref, K));
    }
  });

  it('nearest-codebook search agrees with the reference and keeps the first index on ties', () => {
    k.setIsa(isa);
    const rand = rng(21);
    for (const [bins, width, n] of [[1, 1, 3], [7, 3, 11], [256, 32, 301], [2048, 64, 257], [13, 64, 9]]) {
      const cb = randn(bins * width, rand);
      const x = randn(n * width, rand);
      const ref = k.vqNearest(cb, bins, width, x, n, 'ref');
      const fast = k.vqNearest(cb, bins, width, x, n, 'fast');
      // Summation order may flip a near tie: then both must be (near-)optimal.
      for (let i = 0; i < n; i++) {
        if (ref[i] === fast[i]) continue;
        const dist = (j: number) => {
          let s = 0;
          for (let d = 0; d < width; d++) s += (x[i * width + d] - cb[j * width + d]) ** 2;
          return s;
        };
        expect(Math.abs(dist(ref[i]) - dist(fast[i]))).toBeLessThan(1e-4 * dist(ref[i]) + 1e-5);
      }
      const agree = ref.filter((v, i) => v === fast[i]).length;
      expect(agree / n).toBeGreaterThan(0.98);
    }
    // Exact ties: duplicate codes; the first copy must win in both.
    const width = 16, bins = 40;
    const cb = randn(bins * width, rand);
    cb.copyWithin(30 * width, 3 * width, 4 * width); // code 30 == code 3
    cb.copyWithin(39 * width, 3 * width, 4 * width); // code 39 == code 3 (a padding-lane block)
    const x = cb.slice(3 * width, 4 * width);
    expect(k.vqNearest(cb, bins, width, x, 1, 'ref')[0]).toBe(3);
    expect(k.vqNearest(cb, bins, width, x, 1, 'fast')[0]).toBe(3);
  });
});

describe('machine peak', () => {
  it('measures a positive FMA peak', () => {
    const p = k.fmaPeak(0.02);
    expect(p.gflopsOneThread).toBeGreaterThan(0.1);
    expect(p.gflopsAllThreads).toBeGreaterThan(0.1);
  });
});

describe.each(isas)('transformer kernels (%s)', (isa) => {
  it('linear (x . W + b) matches the reference: fp32 and fp16 weights, (in,out) and (out,in) layouts, odd sizes', () => {
    k.setIsa(isa);
    const rand = rng(31);
    // M <= 8 takes the few-row (decode) path; larger M the packed GEMM
    for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [64, 48, 144], [37, 65, 99], [5, 130, 23], [88, 48, 335], [1, 65, 300], [2, 33, 17], [4, 96, 64], [8, 40, 257], [7, 9, 1000]]) {
      const x = randn(M * K, rand);
      const w32 = randn(K * N, rand, 0.2);
      const w16 = new Uint16Array(K * N).map(() => 0x3000 + Math.floor(rand() * 0x1000) + (rand() < 0.5 ? 0x8000 : 0));
      const b = randn(N, rand);
      for (const transposed of [false, true]) {
        for (const w of [w32, w16]) {
          const ref = k.linear(x, M, K, w, N, transposed, b, 'ref');
          const fast = k.linear(x, M, K, w, N, transposed, b, 'fast');
          expect(maxAbsDiff(fast, ref), `${M}x${K}x${N} t=${transposed} ${w.constructor.name}`).toBeLessThan(tolerance(ref, K));
        }
      }
    }
  });

  it('block-sparse attention matches the masked dense reference for every type', () => {
    k.setIsa(isa);
    const rand = rng(41);
    const cases = [
      { func: 0, len: 24, blockCtx: 6, heads: 2, headDim: 5 },
      { func: 1, len: 24, blockCtx: 6, heads: 2, headDim: 5 },
      { func: 2, len: 24, blockCtx: 6, heads: 3, headDim: 4 },
      { func: 3, len: 24, blockCtx: 6, heads: 1, headDim: 7 },
      { func: 6, len: 24, blockCtx: 6, heads: 2, headDim: 3, encLen: 9 },
      { func: 7, len: 88, blockCtx: 11, heads: 2, headDim: 12, primeLen: 32 },
      { func: 1, len: 88, blockCtx: 11, heads: 2, headDim: 12 },
      { func: 2, len: 88, blockCtx: 11, heads: 2, headDim: 12 },
      { func: 3, len: 88, blockCtx: 11, heads: 2, headDim: 12 },
    ];
    for (const shape of cases) {
      const keys = shape.func === 6 ? shape.encLen! : shape.len;
      const width = shape.heads * shape.headDim;
      const q = randn(shape.len * width, rand), kk = randn(keys * width, rand), v = randn(keys * width, rand);
      const ref = k.attention(shape, q, kk, v, 'ref');
      const fast = k.attention(shape, q, kk, v, 'fast');
      expect(maxAbsDiff(fast, ref), JSON.stringify(shape)).toBeLessThan(1e-5);
      if (shape.func === 3) {
        // block 0 of previous-block attention outputs exactly zero
        expect(maxAbs(fast.subarray(0, shape.blockCtx * width))).toBe(0);
      }
    }
    expect(() => k.attention({ func: 4, len: 8, blockCtx: 2, heads: 1, headDim: 2 }, new Float32Array(16), new Float32Array(16), new Float32Array(16), 'fast')).toThrow(/not supported/);
  });
});
