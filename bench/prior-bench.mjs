// npm run bench:prior: CPU decode and prefill speed of prior-shaped transformers with
// random weights (a few layers of the official widths, projected to the full depth), next
// to this machine's memory bandwidth measured in the same run. Decoding one token reads
// every weight once, so GB/s of weights streamed is the figure that matters.
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 6);
const addon = native();

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000 - 0.5;
  };
}
const rand = rng(1);

function memoryBandwidthGBs() {
  const a = new Float64Array(64 << 20 >> 3), b = new Float64Array(64 << 20 >> 3);
  a.fill(1);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.max(best, (2 * a.byteLength) / ((performance.now() - t0) / 1000) / 1e9);
  }
  return best;
}

async function bench(name, hp) {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const h = { ...preset(hp), prior_depth: LAYERS };
  const s = priorStructure(h, vq, name);
  // random weights; embeddings of the right shape (bins x w)
  const shapes = new Map();
  const { priorKeys } = await import('../dist/prior/layout.js');
  for (const [k, shape] of priorKeys(s)) shapes.set(k, shape);
  const ref = (key) => {
    const shape = shapes.get(key);
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const scale = key.endsWith('.weight') && key.includes('ln') ? 0 : 0.02;
    for (let i = 0; i < n; i++) a[i] = key.includes('ln_') && key.endsWith('weight') ? 1 : rand() * scale;
    return a;
  };
  const plan = priorPlan(s, ref);
  const prior = new addon.Prior(plan);
  const w = s.prior.width, L = s.prior.len;
  const weightBytes = LAYERS * 4 * (w * 3 * s.prior.state + s.prior.state * w + 2 * w * s.prior.mlp);
  const yCond = new Float32Array(w);
  const xCond = s.upsampler || s.timing ? new Float32Array(L * w) : null;
  const tokens = new Int32Array(L);
  const steps = 32;
  // decode: `steps` tokens after a short prefix
  await prior.sample({ n: 1, tokens, prefix: 0, end: 4, yCond, xCond, temperature: 1, seed: 1 });
  let t0 = performance.now();
  await prior.sample({ n: 1, tokens, prefix: 0, end: steps, yCond, xCond, temperature: 1, seed: 1 });
  const perToken = (performance.now() - t0) / 1000 / steps;
  // prefill: half a window in one block-sparse pass
  const prefix = L / 2;
  t0 = performance.now();
  await prior.sample({ n: 1, tokens, prefix, end: prefix, yCond, xCond, temperature: 1, seed: 1 });
  const prefill = (performance.now() - t0) / 1000;
  prior.dispose();
  const full = s.prior.depth === LAYERS ? 1 : 1;
  const depth = preset(hp).prior_depth;
  return { name, w, perTokenFull: (perToken * depth) / LAYERS, gbs: weightBytes / perToken / 1e9, prefillTokS: prefix / ((prefill * depth) / LAYERS) };
}

const bw = memoryBandwidthGBs();
console.log(`Prior CPU decode, ${addon.kernels.info().threads} threads, random fp32 weights, ${LAYERS} layers timed and projected to the full depth`);
console.log(`memory copy bandwidth measured now: ${bw.toFixed(1)} GB/s`);
for (const [name, hp] of [['upsampler (w 1920, 72 layers)', 'upsampler_level_0'], ['1b_lyrics top (w 2048, 72 layers)', 'prior_1b_lyrics']]) {
  const r = await bench(name, hp);
  console.log(`  ${name}: decode ${(1 / r.perTokenFull).toFixed(2)} tokens/s at batch 1 (${r.gbs.toFixed(1)} GB/s of weights = ${((100 * r.gbs) / bw).toFixed(0)}% of copy bandwidth), prefill ${r.prefillTokS.toFixed(0)} tokens/s`);
}
