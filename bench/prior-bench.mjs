// npm run bench:prior: CPU decode and prefill speed of prior-shaped transformers (official
// widths and attention layout, a few layers, random weights in a memory-mapped .safetensors),
// per weight dtype: f32, f16 (as a converted 5B model stores them) and int8 (`convert --dtype
// int8`: the transformer matrices and x_out int8 with per-channel fp32 scales, the rest
// fp16), next to the memory bandwidth measured in the same run. Decoding one token reads
// every weight once, so the GB/s of weights streamed per step against the copy bandwidth is
// the figure that matters. BENCH_DTYPES=f16,int8 picks dtypes; prefill is timed for f16 and
// int8 (f32 runs the same packed GEMM as f16 after widening).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorKeys, priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { writeSafetensors } from '../dist/checkpoint/index.js';
import { INT8_SCALE_SUFFIX, int8Axis, int8ScaleShape } from '../dist/checkpoint/dtype-convert.js';
import { halfToFloat, nativeWeight, openModelFile } from '../dist/model-file.js';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const DTYPES = (process.env.BENCH_DTYPES ?? 'f32,f16,int8').split(',');
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

// Random fp16 bits around +-0.01 (exponent 0x20); LayerNorm weights 1.0, biases 0. For f32
// the same values widened; for int8 the matrices int8 would quantise get random int8 values
// with scales 0.01 / 127 (the same magnitude), everything else stays fp16. Each tensor is
// generated when the writer asks for it, so the file never exists in memory.
function randomTensors(key, shape, dtype) {
  const n = shape.reduce((a, b) => a * b, 1);
  const isVector = shape.length === 1 || key.endsWith('start_token');
  if (isVector) {
    const f = new Float32Array(n).fill(/ln_\d\.weight|_ln\.weight|ln\.weight/.test(key) ? 1 : 0);
    return [{ name: key, dtype: 'F32', shape, nbytes: f.byteLength, source: new Uint8Array(f.buffer) }];
  }
  const halves = () => {
    const h = new Uint16Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      h[i] = 0x2000 | (s >>> 22) | ((s & 1) << 15);
    }
    return h;
  };
  const axis = int8Axis(key);
  if (dtype === 'int8' && axis !== undefined) {
    const ss = int8ScaleShape(shape, axis);
    const scales = new Float32Array(ss[0] * ss[1]).fill(0.01 / 127);
    return [
      { name: key + INT8_SCALE_SUFFIX, dtype: 'F32', shape: ss, nbytes: scales.byteLength, source: new Uint8Array(scales.buffer) },
      {
        name: key, dtype: 'I8', shape, nbytes: n,
        source: async function* () {
          const q = new Int8Array(n);
          let s = 12345;
          for (let i = 0; i < n; i++) {
            s = (s * 1103515245 + 12345) >>> 0;
            q[i] = (s >>> 24) % 255 - 127;
          }
          yield new Uint8Array(q.buffer);
        },
      },
    ];
  }
  if (dtype === 'f32') {
    return [{
      name: key, dtype: 'F32', shape, nbytes: 4 * n,
      source: async function* () {
        const h = halves();
        const f = new Float32Array(n);
        for (let i = 0; i < n; i++) f[i] = halfToFloat(h[i]);
        yield new Uint8Array(f.buffer);
      },
    }];
  }
  return [{ name: key, dtype: 'F16', shape, nbytes: 2 * n, source: async function* () { yield new Uint8Array(halves().buffer); } }];
}

// One prior of this shape per dtype, all loaded at once so that their timings can be
// interleaved: on a shared machine the load changes from minute to minute, and the ratio of
// two dtypes timed back to back is far steadier than one timed minutes after the other.
async function setup(name, hp, dtype) {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset(hp), prior_depth: LAYERS }, vq, name);
  const file = join(tmp, `${hp}-${dtype}.safetensors`);
  await writeSafetensors(file, [...priorKeys(s)].flatMap(([k, shape]) => randomTensors(k, shape, dtype)), {});
  const mf = openModelFile(file);
  const prior = new addon.Prior({ file, ...priorPlan(s, (key) => nativeWeight(mf, key)) });
  // the transformer's matrices (what a step streams), in this dtype, int8 with its scales
  const esize = { f32: 4, f16: 2, int8: 1 }[dtype];
  const params = s.prior.width * 3 * s.prior.state + s.prior.state * s.prior.width + 2 * s.prior.width * s.prior.mlp;
  const weightBytes = LAYERS * (esize * params + (dtype === 'int8' ? 4 * (3 * s.prior.state + s.prior.width + s.prior.mlp + s.prior.width) : 0));
  return { dtype, s, file, prior, weightBytes, params };
}

// Seconds per decode step at batch n: two runs of different lengths, whose difference is the
// steps alone, without the window's set-up (conditioning copies, cache allocation).
async function stepSeconds(p, n) {
  const w = p.s.prior.width, L = p.s.prior.len;
  const yCond = new Float32Array(n * w), xCond = new Float32Array(n * L * w), tokens = new Int32Array(n * L);
  const run = async (steps) => {
    const t0 = performance.now();
    await p.prior.sample({ n, tokens, prefix: 0, end: steps, yCond, xCond, temperature: 1, seed: 1 });
    return (performance.now() - t0) / 1000;
  };
  return ((await run(72)) - (await run(8))) / 64;
}

async function prefillTokS(p, depth) {
  const w = p.s.prior.width, L = p.s.prior.len, prefix = L / 2;
  const t0 = performance.now();
  await p.prior.sample({ n: 1, tokens: new Int32Array(L), prefix, end: prefix, yCond: new Float32Array(w), xCond: new Float32Array(L * w), seed: 1 });
  return prefix / (((performance.now() - t0) / 1000) * (depth / LAYERS));
}

try {
  const bw = copyBandwidthGBs();
  const peak = addon.kernels.fmaPeak(0.3);
  console.log(`Prior CPU decode, ${addon.kernels.info().threads} threads (${addon.kernels.info().isa}), random weights (mmap'd safetensors) per dtype, ${LAYERS} layers timed, projected to the full depth`);
  console.log(`memory copy bandwidth measured now: ${bw.toFixed(1)} GB/s; peak: ${peak.gflopsAllThreads.toFixed(1)} GFLOP/s (${peak.isa}, ${peak.threads} threads)`);
  for (const [name, hp] of [['upsampler (w 1920, attn_order 2)', 'upsampler_level_0'], ['1b_lyrics top (w 2048, attn_order 12)', 'prior_1b_lyrics']]) {
    const depth = preset(hp).prior_depth;
    const priors = [];
    for (const dtype of DTYPES) priors.push(await setup(name, hp, dtype));
    const tokS = {};
    for (const n of [1, 4]) {
      for (const p of priors) await stepSeconds(p, 1); // pages the weights in
      // best of 3 per dtype, the dtypes interleaved: a slower run is never the kernel's own speed
      const best = priors.map(() => Infinity);
      for (let rep = 0; rep < 3; rep++) for (let i = 0; i < priors.length; i++) best[i] = Math.min(best[i], await stepSeconds(priors[i], n));
      priors.forEach((p, i) => {
        const t = (n * LAYERS) / (best[i] * depth), gbs = p.weightBytes / best[i] / 1e9;
        tokS[`${p.dtype}/${n}`] = t;
        console.log(`  ${name}, ${p.dtype.padEnd(4)} batch ${n}: ${t.toFixed(2)} tokens/s over ${depth} layers; ${gbs.toFixed(1)} GB/s of weights per step = ${((100 * gbs) / bw).toFixed(0)}% of copy bandwidth`);
      });
    }
    for (const n of [1, 4]) {
      if (tokS[`int8/${n}`] && tokS[`f16/${n}`]) console.log(`  ${name}, batch ${n}: int8 ${(tokS[`int8/${n}`] / tokS[`f16/${n}`]).toFixed(2)}x the f16 tokens/s`);
    }
    for (const p of priors) {
      if (p.dtype === 'f32') continue; // the same packed GEMM as f16 once widened
      const r = await prefillTokS(p, depth);
      // prefill: 2 FLOPs per weight per token in the projections (attention not counted)
      const gf = (r * 2 * p.params * depth) / 1e9;
      console.log(`  ${name}, ${p.dtype.padEnd(4)} prefill ${r.toFixed(0)} tokens/s (half a window in one block-sparse pass), ${gf.toFixed(1)} GFLOP/s in the weight products = ${((100 * gf) / peak.gflopsAllThreads).toFixed(0)}% of peak`);
    }
    for (const p of priors) {
      p.prior.dispose();
      rmSync(p.file, { force: true });
    }
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
