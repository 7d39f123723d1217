/**
 * Kernel parity: every optimised CPU kernel (AVX-512, AVX2/FMA and the portable fallback)
 * against its plain scalar reference, on random shapes including odd sizes. Every test runs
 * for every instruction set this machine has.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { native, packageRoot, type NativeConvParams, type NativeIsa } from '../lib/native.js';
import { maxAbs, maxAbsDiff, randInt, randn, rng } from './helpers/random.js';

const k = native().kernels;
const detected = k.info().detectedIsa as NativeIsa;
// Widest first: each level includes the ones after it, so this machine runs the detected
// one and every one after it.
const ALL_ISAS: readonly NativeIsa[] = ['avx512', 'avx2-fma', 'generic'];
const isas = ALL_ISAS.slice(ALL_ISAS.indexOf(detected));

afterAll(() => {
  k.setIsa(detected);
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
    // transposed, stride 2: the two phases interleaved into whole pairs (k4 p1: 2 * tin
    // outputs), or not (k3 p1: 2 * tin - 1), plain and accumulating
    for (const kernel of [4, 3]) {
      const pt: NativeConvParams = { cin: 13, cout: 11, kernel, stride: 2, pad: 1, transposed: true };
      const tout = (tin - 1) * 2 - 2 + (kernel - 1) + 1;
      const wt = randn(pt.cin * pt.cout * kernel, rand, 0.3), bt = randn(pt.cout, rand);
      const reft = k.conv1d(relu, n, tin, wt, bt, pt, 'ref');
      expect(reft.length).toBe(n * pt.cout * tout);
      expect(maxAbsDiff(k.conv1d(relu, n, tin, wt, bt, pt, 'fast'), reft), `k${kernel}`).toBeLessThan(1e-5);
      const yt = randn(n * pt.cout * tout, rand);
      const fastt = k.conv1d(x, n, tin, wt, bt, pt, 'fast', { reluInput: true, accumulate: true, scale: 0.25 }, yt);
      expect(maxAbsDiff(fastt, yt.map((v, i) => v + 0.25 * reft[i])), `k${kernel} accumulate`).toBeLessThan(1e-5);
    }
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

  it('measures the memory bandwidth on all the pool\'s threads, and refuses absurd sizes', () => {
    const m = k.memBandwidth(16);
    expect(m.threads).toBe(k.info().threads);
    expect(m.megabytes).toBe(16);
    expect(m.copyGBs).toBeGreaterThan(0.1);
    expect(m.readGBs).toBeGreaterThan(0.1);
    expect(Number.isFinite(m.copyGBs + m.readGBs)).toBe(true);
    expect(() => k.memBandwidth(0)).toThrow(/1 to 4096 MB/);
    expect(() => k.memBandwidth(1e9)).toThrow(/1 to 4096 MB/);
  });

  it.each(isas)('names the FMA instructions of the peak it measures (%s)', (isa) => {
    k.setIsa(isa);
    const p = k.fmaPeak(0.02);
    expect(p.isa).toBe({ avx512: 'avx512f', 'avx2-fma': 'avx2-fma', generic: 'generic' }[isa]);
    expect(p.gflopsOneThread).toBeGreaterThan(0.1);
    k.setIsa(detected);
  });
});

describe('instruction-set selection', () => {
  it('setIsa clamps to what the CPU has and reports what it selected', () => {
    for (const isa of ALL_ISAS) {
      const got = k.setIsa(isa) as NativeIsa;
      expect(isas).toContain(got);
      // never wider than asked, never wider than detected
      expect(ALL_ISAS.indexOf(got)).toBeGreaterThanOrEqual(Math.max(ALL_ISAS.indexOf(isa), ALL_ISAS.indexOf(detected)));
      expect(k.info().isa).toBe(got);
    }
    k.setIsa(detected);
    expect(k.info().isa).toBe(detected);
  });

  it('JUKEBOX_CPU=avx512|avx2|generic forces the kernels at start-up (clamped to the CPU)', () => {
    const script = `import(${JSON.stringify(pathToFileURL(join(packageRoot, 'dist', 'native.js')).href)}).then((m) => console.log(m.native().kernels.info().isa))`;
    const expected: Record<string, NativeIsa> = {
      avx512: isas[0] === 'avx512' ? 'avx512' : detected,
      avx2: detected === 'generic' ? 'generic' : 'avx2-fma',
      'avx2-fma': detected === 'generic' ? 'generic' : 'avx2-fma',
      generic: 'generic',
      bogus: detected,
    };
    for (const [env, want] of Object.entries(expected)) {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, JUKEBOX_CPU: env } });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim(), `JUKEBOX_CPU=${env}`).toBe(want);
    }
  }, 60_000);
});

// The AVX-512 conv/GEMM, few-row GEMV and codebook kernels keep each output's arithmetic
// (one FMA chain over k in order), so they must give the AVX2 kernels' exact bits.
describe.runIf(isas.includes('avx512') && isas.includes('avx2-fma'))('AVX-512 vs AVX2: the same bits', () => {
  const both = <T>(fn: () => T): [T, T] => {
    k.setIsa('avx512');
    const a = fn();
    k.setIsa('avx2-fma');
    const b = fn();
    k.setIsa(detected);
    return [a, b];
  };
  const expectSameBits = (a: Float32Array | Int32Array, b: Float32Array | Int32Array, what: string) => {
    expect(a.length).toBe(b.length);
    const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
    let diff = -1;
    for (let i = 0; i < ua.length && diff < 0; i++) if (ua[i] !== ub[i]) diff = i;
    expect(diff, `${what}: first differing element`).toBe(-1);
  };

  it('convs, transposed convs and fused residual blocks (8 x 48 tiles and their 4- and 24-wide edges)', () => {
    const rand = rng(4242);
    for (let trial = 0; trial < 30; trial++) {
      const transposed = trial % 3 === 2;
      const { p, n, tin } = randomConv(rand, transposed);
      if (p.transposed && (tin - 1) * p.stride! - 2 * p.pad! + p.dilation! * (p.kernel - 1) + 1 <= 0) continue;
      const x = randn(n * p.cin * tin, rand);
      const w = randn(p.cin * p.cout * p.kernel, rand, 0.3);
      const b = randn(p.cout, rand);
      const [a5, a2] = both(() => k.conv1d(x, n, tin, w, b, p, 'fast'));
      expectSameBits(a5, a2, JSON.stringify({ p, n, tin }));
    }
    for (let trial = 0; trial < 10; trial++) {
      const cin = randInt(1, 70, rand), cmid = randInt(1, 70, rand), dilation = randInt(1, 9, rand);
      const pa: NativeConvParams = { cin, cout: cmid, kernel: 3, dilation, pad: dilation };
      const t = randInt(1, 500, rand);
      const x = randn(cin * t, rand);
      const wa = randn(cmid * cin * 3, rand, 0.3), ba = randn(cmid, rand, 0.1);
      const wb = randn(cin * cmid, rand, 0.3), bb = randn(cin, rand, 0.1);
      const [a5, a2] = both(() => k.resblock(x, 1, t, wa, ba, pa, wb, bb, 0.5, 'fast'));
      expectSameBits(a5, a2, JSON.stringify({ pa, t }));
    }
  });

  it('packed GEMM and few-row GEMV over (in,out) weights, fp32 and fp16', () => {
    const rand = rng(777);
    // (N > 2048: more than one of the AVX-512 walk's column chunks; M 9-16: batched decode)
    for (const [M, K, N] of [[1, 300, 1000], [1, 70, 4100], [3, 65, 333], [4, 1024, 272], [8, 40, 257], [9, 70, 101], [12, 300, 2100], [16, 257, 530], [37, 129, 211], [64, 48, 144]]) {
      const x = randn(M * K, rand);
      const w32 = randn(K * N, rand, 0.2);
      const w16 = new Uint16Array(K * N).map(() => 0x3000 + Math.floor(rand() * 0x1000) + (rand() < 0.5 ? 0x8000 : 0));
      const b = randn(N, rand);
      for (const w of [w32, w16]) {
        const [a5, a2] = both(() => k.linear(x, M, K, w, N, false, b, 'fast'));
        expectSameBits(a5, a2, `${M}x${K}x${N} ${w.constructor.name}`);
      }
    }
  });

  it('codebook search picks the same indices', () => {
    const rand = rng(99);
    for (const [bins, width, n] of [[2048, 64, 300], [13, 64, 17], [7, 3, 9], [40, 16, 33]]) {
      const cb = randn(bins * width, rand);
      const x = randn(n * width, rand);
      const [a5, a2] = both(() => k.vqNearest(cb, bins, width, x, n, 'fast'));
      expectSameBits(a5, a2, `${bins}x${width} n=${n}`);
    }
  });
});

describe.each(isas)('transformer kernels (%s)', (isa) => {
  it('linear (x . W + b) matches the reference: fp32 and fp16 weights, (in,out) and (out,in) layouts, odd sizes', () => {
    k.setIsa(isa);
    const rand = rng(31);
    // M <= 16 takes the few-row (decode) path; larger M the packed GEMM
    for (const [M, K, N] of [[1, 1, 1], [3, 7, 5], [64, 48, 144], [37, 65, 99], [5, 130, 23], [88, 48, 335], [1, 65, 300], [2, 33, 17], [4, 96, 64], [8, 40, 257], [7, 9, 1000], [12, 65, 300], [16, 200, 2100], [17, 40, 50]]) {
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

  it('linear with bf16 weights: matches the reference, and gives the bits of the same values in fp32', () => {
    k.setIsa(isa);
    const rand = rng(32);
    // few-row walk (M <= 16, N > 2048: two column chunks), the packed GEMM (M > 16), the
    // (N, K) dots (transposed, 8 rows at a time and the tail)
    for (const [M, K, N] of [[1, 1, 1], [1, 70, 2100], [3, 33, 17], [4, 96, 300], [9, 40, 257], [16, 130, 99], [17, 48, 335], [40, 65, 64]]) {
      const x = randn(M * K, rand);
      const wf = randn(K * N, rand, 0.2);
      const wb = new Uint16Array(K * N);
      const bits = new Uint32Array(wf.buffer);
      for (let i = 0; i < wb.length; i++) wb[i] = bits[i] >>> 16; // truncated to bf16
      const widened = new Float32Array(new Uint32Array(Array.from(wb, (h) => h << 16)).buffer);
      const b = randn(N, rand);
      for (const transposed of [false, true]) {
        const what = `${M}x${K}x${N} t=${transposed}`;
        const ref = k.linear(x, M, K, wb, N, transposed, b, 'ref', null, 'bf16');
        const fast = k.linear(x, M, K, wb, N, transposed, b, 'fast', null, 'bf16');
        expect(maxAbsDiff(fast, ref), what).toBeLessThan(tolerance(ref, K));
        expect(maxAbsDiff(ref, k.linear(x, M, K, widened, N, transposed, b, 'ref')), what).toBe(0);
        expect(fast, what).toEqual(k.linear(x, M, K, widened, N, transposed, b, 'fast'));
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
      // head widths past one and two 16-lane vectors, with and without a masked tail
      { func: 0, len: 40, blockCtx: 8, heads: 2, headDim: 48 },
      { func: 1, len: 40, blockCtx: 8, heads: 3, headDim: 37 },
      { func: 6, len: 33, blockCtx: 11, heads: 1, headDim: 80, encLen: 21 },
      { func: 2, len: 64, blockCtx: 8, heads: 2, headDim: 16 },
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
