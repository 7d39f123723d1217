// npm run bench:prior: CPU decode and prefill speed of prior-shaped transformers (official
// widths and attention layout, a few layers, random fp16 weights in a memory-mapped
// .safetensors like a converted 5B model), next to the memory bandwidth measured in the same
// run. Decoding one token reads every weight once, so the GB/s of weights streamed per step
// against the copy bandwidth is the figure that matters.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorKeys, priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { readSafetensorsHeader, writeSafetensors } from '../dist/checkpoint/index.js';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const addon = native();
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-bench-'));

function copyBandwidthGBs() {
  const a = new Float64Array((256 << 20) >> 3), b = new Float64Array((256 << 20) >> 3);
  a.fill(1);
  b.set(a);
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.max(best, (2 * a.byteLength) / ((performance.now() - t0) / 1000) / 1e9);
  }
  return best;
}

// Random fp16 bits around +-0.01 (exponent 0x20); LayerNorm weights 1.0, biases 0.
function randomTensor(key, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const isVector = shape.length === 1 || key.endsWith('start_token');
  if (isVector) {
    const f = new Float32Array(n).fill(/ln_\d\.weight|_ln\.weight|ln\.weight/.test(key) ? 1 : 0);
    return { name: key, dtype: 'F32', shape, nbytes: f.byteLength, source: new Uint8Array(f.buffer) };
  }
  const h = new Uint16Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    h[i] = 0x2000 | (s >>> 22) | ((s & 1) << 15);
  }
  return { name: key, dtype: 'F16', shape, nbytes: h.byteLength, source: new Uint8Array(h.buffer) };
}

async function bench(name, hp) {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset(hp), prior_depth: LAYERS }, vq, name);
  const file = join(tmp, `${hp}.safetensors`);
  await writeSafetensors(file, [...priorKeys(s)].map(([k, shape]) => randomTensor(k, shape)), {});
  const header = readSafetensorsHeader(file);
  const ref = (key) => {
    const t = header.tensors.get(key);
    return { offset: header.dataOffset + t.begin, nbytes: t.end - t.begin, dtype: t.dtype };
  };
  const prior = new addon.Prior({ file, ...priorPlan(s, ref) });
  const w = s.prior.width, L = s.prior.len;
  const weightBytes = LAYERS * 2 * (w * 3 * s.prior.state + s.prior.state * w + 2 * w * s.prior.mlp);
  const depth = preset(hp).prior_depth;
  const out = [];
  for (const n of [1, 4]) {
    const yCond = new Float32Array(n * w);
    const xCond = new Float32Array(n * L * w);
    const tokens = new Int32Array(n * L);
    // Two runs of different lengths: their difference is the steps alone, without the
    // window's set-up (conditioning copies, cache allocation).
    const run = async (steps) => {
      const t0 = performance.now();
      await prior.sample({ n, tokens, prefix: 0, end: steps, yCond, xCond, temperature: 1, seed: 1 });
      return (performance.now() - t0) / 1000;
    };
    await run(8); // pages the weights in
    // best of 3: the machine is noisy, and a slower run is never the kernel's own speed
    let perStep = Infinity;
    for (let rep = 0; rep < 3; rep++) perStep = Math.min(perStep, ((await run(72)) - (await run(8))) / 64);
    out.push({ n, tokS: (n * LAYERS) / (perStep * depth), gbs: weightBytes / perStep / 1e9 });
  }
  const prefix = L / 2;
  const t0 = performance.now();
  await prior.sample({ n: 1, tokens: new Int32Array(L), prefix, end: prefix, yCond: new Float32Array(w), xCond: new Float32Array(L * w), seed: 1 });
  const prefillTokS = prefix / (((performance.now() - t0) / 1000) * (depth / LAYERS));
  prior.dispose();
  return { out, prefillTokS, depth, paramsFullDepth: (weightBytes / 2) * (depth / LAYERS) };
}

try {
  const bw = copyBandwidthGBs();
  const peak = addon.kernels.fmaPeak(0.3);
  console.log(`Prior CPU decode, ${addon.kernels.info().threads} threads (${addon.kernels.info().isa}), random fp16 weights (mmap'd safetensors), ${LAYERS} layers timed, projected to the full depth`);
  console.log(`memory copy bandwidth measured now: ${bw.toFixed(1)} GB/s; peak: ${peak.gflopsAllThreads.toFixed(1)} GFLOP/s (${peak.isa}, ${peak.threads} threads)`);
  for (const [name, hp] of [['upsampler (w 1920, attn_order 2)', 'upsampler_level_0'], ['1b_lyrics top (w 2048, attn_order 12)', 'prior_1b_lyrics']]) {
    const r = await bench(name, hp);
    for (const o of r.out) {
      console.log(`  ${name}, batch ${o.n}: ${o.tokS.toFixed(2)} tokens/s over ${r.depth} layers; ${o.gbs.toFixed(1)} GB/s of weights per step = ${((100 * o.gbs) / bw).toFixed(0)}% of copy bandwidth`);
    }
    // prefill: 2 FLOPs per weight per token in the projections (attention not counted)
    const gf = (r.prefillTokS * 2 * r.paramsFullDepth) / 1e9;
    console.log(`  ${name}: prefill ${r.prefillTokS.toFixed(0)} tokens/s (half a window in one block-sparse pass), ${gf.toFixed(1)} GFLOP/s in the weight products = ${((100 * gf) / peak.gflopsAllThreads).toFixed(0)}% of peak`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
