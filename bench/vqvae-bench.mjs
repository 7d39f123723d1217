// npm run bench: native CPU benchmark of the VQ-VAE at the official size (random weights).
//
// Prints figures that hold on a noisy machine: achieved GFLOP/s as a fraction of the FMA
// peak measured in this same process (the peak of the widest FMA the kernels use: 512-bit
// with the AVX-512 kernels, named on the `peak:` line), and the kernels' speed relative to
// the narrower ones (AVX2, portable) run here too. Absolute seconds are printed for the record.
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { vqvaeLayout } from '../dist/vqvae/layout.js';
import { randArray as randomArray, randomVQVAEPlan, rng } from './random-weights.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const addon = native();
const k = addon.kernels;

const rand = rng(42);
const randArray = (n, scale) => randomArray(n, scale, rand);

const fmt = (x, d = 2) => x.toFixed(d);

// Best of 2 after a warm-up; with the AVX-512 kernels active, the AVX2 kernels' time for
// the same call too, the two interleaved so that a burst of load on this shared machine
// hits both: [seconds, avx2 seconds or null].
async function timeVsAvx2(fn) {
  const compare = k.info().isa === 'avx512' && isas.includes('avx2-fma');
  await fn(); // warm-up: page faults, thread start
  let best = Infinity, best2 = Infinity;
  for (let r = 0; r < 2; r++) {
    let t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
    if (!compare) continue;
    k.setIsa('avx2-fma');
    t0 = performance.now();
    await fn();
    best2 = Math.min(best2, (performance.now() - t0) / 1000);
    k.setIsa('avx512');
  }
  return [best, compare ? best2 : null];
}
const vsNote = (s, s2) => (s2 === null ? '' : ` | avx2-fma kernels ${fmt(s2, 3)} s (${fmt(s2 / s, 2)}x)`);
const info = k.info();
const active = info.isa;
console.log(`jukebox-node VQ-VAE benchmark — ${info.threads} threads, kernels: ${active} (detected ${info.detectedIsa}), node ${process.version}`);

// The ISAs this machine runs, widest first; the active one (JUKEBOX_CPU may narrow it) and
// the narrower ones are compared.
const ALL = ['avx512', 'avx2-fma', 'generic'];
const isas = ALL.slice(ALL.indexOf(active));
// The best of two measurements each, the AVX2 one interleaved when wider kernels are active
// (a burst of other load during one of them would otherwise skew their ratio).
const best = (a, b) => (b && b.gflopsAllThreads > a.gflopsAllThreads ? { ...b, gflopsOneThread: Math.max(a.gflopsOneThread, b.gflopsOneThread) } : { ...a, gflopsOneThread: Math.max(a.gflopsOneThread, b ? b.gflopsOneThread : 0) });
const compareAvx2 = active !== 'avx2-fma' && isas.includes('avx2-fma');
let peak = null, p2 = null;
for (let r = 0; r < 2; r++) {
  peak = best(k.fmaPeak(0.3), peak);
  if (!compareAvx2) continue;
  k.setIsa('avx2-fma');
  p2 = best(k.fmaPeak(0.3), p2);
  k.setIsa(active);
}
const peakNote = p2 ? `; ${p2.isa} peak ${fmt(p2.gflopsAllThreads, 1)} GFLOP/s (the ${peak.isa} one is ${fmt(peak.gflopsAllThreads / p2.gflopsAllThreads, 2)}x)` : '';
console.log(`peak: ${fmt(peak.gflopsAllThreads, 1)} GFLOP/s (${peak.isa}, ${peak.threads} threads), ${fmt(peak.gflopsOneThread, 1)} GFLOP/s one thread${peakNote}`);

// 1. The convs that dominate the VQ-VAE, timed natively on preallocated buffers:
// GFLOP/s vs the measured peak, and vs the portable kernels in this same process.
const T = 1 << 17;
console.log(`\nConv kernels (batch 1, ${T} time steps, best of 3):`);
const convCases = [
  ['residual block k3 dil 27 + k1, 64ch (fused)', { cin: 64, cout: 64, kernel: 3, pad: 27, dilation: 27 }, true],
  ['residual block k3 dil 3 + k1, 32ch (fused)', { cin: 32, cout: 32, kernel: 3, pad: 3, dilation: 3 }, true],
  ['conv k3 dil 243, 64ch', { cin: 64, cout: 64, kernel: 3, pad: 243, dilation: 243 }, false],
  ['conv k1, 64ch', { cin: 64, cout: 64, kernel: 1 }, false],
  ['down conv k4 s2, 64ch', { cin: 64, cout: 64, kernel: 4, stride: 2, pad: 1 }, false],
  ['up convT k4 s2, 64ch', { cin: 64, cout: 64, kernel: 4, stride: 2, pad: 1, transposed: true }, false],
];
for (const [name, p, fused] of convCases) {
  const results = {};
  for (const isa of isas) {
    k.setIsa(isa);
    const r = k.benchConv(p, 1, T, 3, fused);
    results[isa] = r.flops / r.seconds / 1e9;
  }
  k.setIsa(active);
  const best = results[active];
  const vs = isas.slice(1).map((isa) => ` | ${fmt(best / results[isa], isa === 'generic' ? 1 : 2)}x the ${isa === 'generic' ? 'portable' : 'AVX2'} kernel`).join('');
  console.log(`  ${name.padEnd(44)} ${fmt(best, 1).padStart(7)} GFLOP/s = ${fmt((100 * best) / peak.gflopsAllThreads, 0).padStart(2)}% of peak${vs}`);
}

// 2. The whole official-size VQ-VAE (reference §a.3) with random weights.
const h = vqvaeHparams(preset('vqvae'), 'preset vqvae');
const layout = vqvaeLayout(h);
const model = new addon.VQVAE(randomVQVAEPlan(layout, rand));
const sr = h.sr;
const samples = Math.ceil((SECONDS * sr) / 128) * 128;
console.log(`\nOfficial VQ-VAE (levels ${h.levels}, hops ${layout.hopLengths.join('/')}, random weights), ${SECONDS} s of audio, batch 1:`);
for (let level = 0; level < h.levels; level++) {
  const tl = samples / layout.hopLengths[level];
  const codes = new Int32Array(tl).map(() => Math.floor((rand() + 0.5) * h.l_bins) % h.l_bins);
  const flops = model.decodeFlops(1, tl, level);
  const [s, s2] = await timeVsAvx2(() => model.decode(codes, 1, tl, level));
  const gf = flops / s / 1e9;
  console.log(`  decode level ${level}: ${fmt(s, 3)} s (${fmt(SECONDS / s, 1)}x real time), ${fmt(gf, 1)} GFLOP/s = ${fmt((100 * gf) / peak.gflopsAllThreads, 0)}% of peak${vsNote(s, s2)}`);
}
const audio = randArray(samples, 1);
const encFlops = model.encodeFlops(1, samples, 0, h.levels);
const [encS, encS2] = await timeVsAvx2(() => model.encode(audio, 1, samples, 0, h.levels));
console.log(`  encode all levels: ${fmt(encS, 3)} s (${fmt(SECONDS / encS, 1)}x real time), ${fmt(encFlops / encS / 1e9, 1)} GFLOP/s = ${fmt((100 * encFlops / encS / 1e9) / peak.gflopsAllThreads, 0)}% of peak${vsNote(encS, encS2)}`);
model.dispose();
