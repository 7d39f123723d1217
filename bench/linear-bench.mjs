// npm run bench:linear: the decode step's matrix products alone (kernels.linear, i.e.
// csrc/cpu/matmul.cc's few-row path for 1-16 rows), per weight dtype and row count, on the
// 1b_lyrics projection shapes (c_attn 2048 x 1536, attn c_proj 512 x 2048, MLP 2048 x 2048;
// ../shared/keys/prior_1b_lyrics.keys.tsv), next to the copy bandwidth and FMA peak measured
// in the same run. Each shape cycles through enough distinct matrices (>= 256 MB) that the
// weights come from memory, as in a real step; best of 5 passes.
//
// A batch of M rows reads each weight once, so GB/s (weight bytes / seconds) against the
// copy bandwidth is the figure that matters until the arithmetic (2 * M FLOPs per weight)
// catches up with the FMA peak: the GFLOP/s column says how close that is.
// BENCH_ROWS (default 1,4,8,16), BENCH_DTYPES (default f32,f16,bf16,int8); JUKEBOX_CPU
// picks the kernels (avx512, avx2-fma, generic).
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { measureBandwidth } from './bandwidth.mjs';

const ROWS = (process.env.BENCH_ROWS ?? '1,4,8,16').split(',').map(Number);
const DTYPES = (process.env.BENCH_DTYPES ?? 'f32,f16,bf16,int8').split(',');
const SHAPES = [['c_attn', 2048, 1536], ['attn c_proj', 512, 2048], ['mlp', 2048, 2048]];
const addon = native();
const k = addon.kernels;

// One matrix of K x N in the dtype (values around +-0.01; int8 with its N scales).
function matrix(dtype, K, N, seed) {
  let s = seed >>> 0;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0);
  const n = K * N;
  if (dtype === 'int8') {
    const q = new Int8Array(n);
    for (let i = 0; i < n; i++) q[i] = (next() >>> 24) % 255 - 127;
    return { w: q, bytes: n + 4 * N, scales: new Float32Array(N).fill(0.01 / 127) };
  }
  if (dtype === 'f16' || dtype === 'bf16') {
    const h = new Uint16Array(n);
    // fp16 0x2000-0x23ff (~0.008-0.016), bf16 0x3c00-0x3cff (~0.008-0.016), random signs
    for (let i = 0; i < n; i++) h[i] = (dtype === 'f16' ? 0x2000 | (next() >>> 22) : 0x3c00 | (next() >>> 24)) | ((s & 1) << 15);
    return { w: h, bytes: 2 * n, bf16: dtype === 'bf16' };
  }
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) f[i] = ((next() >>> 8) / 2 ** 24 - 0.5) * 0.02;
  return { w: f, bytes: 4 * n };
}

const band = measureBandwidth(k);
const bw = band.copy;
const peak = k.fmaPeak(0.3);
console.log(`decode-step matrix products (kernels.linear), ${k.info().threads} threads, kernels ${k.info().isa}`);
console.log(`${band.line}; peak: ${peak.gflopsAllThreads.toFixed(1)} GFLOP/s (${peak.isa})`);
for (const [name, K, N] of SHAPES) {
  for (const dtype of DTYPES) {
    const one = matrix(dtype, K, N, 1).bytes;
    const count = Math.max(4, Math.ceil((256 << 20) / one));
    const mats = Array.from({ length: count }, (_, i) => matrix(dtype, K, N, i + 1));
    const cells = [];
    for (const M of ROWS) {
      const x = new Float32Array(M * K).fill(0.01);
      const pass = () => {
        for (const m of mats) k.linear(x, M, K, m.w, N, false, null, 'fast', m.scales ?? null, m.bf16 ? 'bf16' : undefined);
      };
      pass(); // pages the weights in
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        pass();
        best = Math.min(best, (performance.now() - t0) / 1000);
      }
      const gbs = (count * one) / best / 1e9, gflops = (2 * M * K * N * count) / best / 1e9;
      cells.push(`M=${M} ${gbs.toFixed(1)} GB/s (${((100 * gbs) / bw).toFixed(0)}%), ${gflops.toFixed(0)} GFLOP/s (${((100 * gflops) / peak.gflopsAllThreads).toFixed(0)}%)`);
    }
    console.log(`  ${name} ${K} x ${N} ${dtype.padEnd(4)}: ${cells.join(' | ')}`);
  }
}
