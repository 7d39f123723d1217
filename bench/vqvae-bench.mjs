// npm run bench: native CPU benchmark of the VQ-VAE at the official size (random weights).
//
// Prints figures that hold on a noisy machine: achieved GFLOP/s as a fraction of the FMA
// peak measured in this same process, and the optimised kernels' speed relative to the
// portable ones run here too. Absolute seconds are printed for the record.
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { vqvaeLayout } from '../dist/vqvae/layout.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const addon = native();
const k = addon.kernels;
const detected = k.info().detectedIsa;

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000 - 0.5;
  };
}
const rand = rng(42);
function randArray(n, scale) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * scale;
  return a;
}

// Random weights scaled so activations stay O(1) through 8 residual blocks.
function randomPlan(layout) {
  const convSpec = (c) => ({ ...c, weight: randArray(c.cin * c.cout * c.kernel, 2 * Math.sqrt(3 / (c.cin * c.kernel)) * 0.5), bias: randArray(c.cout, 0.01) });
  const stack = (s) => ({
    inChannels: s.inChannels,
    outChannels: s.outChannels,
    layers: s.layers.map((l) => (l.kind === 'conv' ? { kind: 'conv', conv: convSpec(l.conv) } : { kind: 'res', a: convSpec(l.a), b: convSpec(l.b), scale: l.scale })),
  });
  return {
    hopLengths: layout.hopLengths,
    encoders: layout.encoders.map(stack),
    decoders: layout.decoders.map(stack),
    codebooks: layout.codebooks.map((c) => ({ bins: c.bins, width: c.width, weight: randArray(c.bins * c.width, 1) })),
  };
}

async function timeIt(fn, reps = 1) {
  await fn(); // warm-up: page faults, thread start
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

const fmt = (x, d = 2) => x.toFixed(d);
const info = k.info();
console.log(`jukebox-node VQ-VAE benchmark — ${info.threads} threads, kernels: ${info.isa} (detected ${info.detectedIsa}), node ${process.version}`);

const peak = k.fmaPeak(0.3);
console.log(`FMA peak measured now: ${fmt(peak.gflopsAllThreads, 1)} GFLOP/s all threads, ${fmt(peak.gflopsOneThread, 1)} GFLOP/s one thread (${peak.isa})`);

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
const isas = detected === 'avx2-fma' ? ['avx2-fma', 'generic'] : ['generic'];
for (const [name, p, fused] of convCases) {
  const results = {};
  for (const isa of isas) {
    k.setIsa(isa);
    const r = k.benchConv(p, 1, T, 3, fused);
    results[isa] = r.flops / r.seconds / 1e9;
  }
  k.setIsa(detected);
  const best = results[detected];
  const vsGeneric = results['avx2-fma'] ? ` | ${fmt(results['avx2-fma'] / results.generic, 1)}x the portable kernel` : '';
  console.log(`  ${name.padEnd(44)} ${fmt(best, 1).padStart(7)} GFLOP/s = ${fmt((100 * best) / peak.gflopsAllThreads, 0).padStart(2)}% of peak${vsGeneric}`);
}

// 2. The whole official-size VQ-VAE (reference §a.3) with random weights.
const h = vqvaeHparams(preset('vqvae'), 'preset vqvae');
const layout = vqvaeLayout(h);
const model = new addon.VQVAE(randomPlan(layout));
const sr = h.sr;
const samples = Math.ceil((SECONDS * sr) / 128) * 128;
console.log(`\nOfficial VQ-VAE (levels ${h.levels}, hops ${layout.hopLengths.join('/')}, random weights), ${SECONDS} s of audio, batch 1:`);
for (let level = 0; level < h.levels; level++) {
  const tl = samples / layout.hopLengths[level];
  const codes = new Int32Array(tl).map(() => Math.floor((rand() + 0.5) * h.l_bins) % h.l_bins);
  const flops = model.decodeFlops(1, tl, level);
  const s = await timeIt(() => model.decode(codes, 1, tl, level));
  const gf = flops / s / 1e9;
  console.log(`  decode level ${level}: ${fmt(s, 3)} s (${fmt(SECONDS / s, 1)}x real time), ${fmt(gf, 1)} GFLOP/s = ${fmt((100 * gf) / peak.gflopsAllThreads, 0)}% of peak`);
}
const audio = randArray(samples, 1);
const encFlops = model.encodeFlops(1, samples, 0, h.levels);
const encS = await timeIt(() => model.encode(audio, 1, samples, 0, h.levels));
console.log(`  encode all levels: ${fmt(encS, 3)} s (${fmt(SECONDS / encS, 1)}x real time), ${fmt(encFlops / encS / 1e9, 1)} GFLOP/s = ${fmt((100 * encFlops / encS / 1e9) / peak.gflopsAllThreads, 0)}% of peak`);
model.dispose();
