// npm run bench:prior: CPU decode and prefill speed of prior-shaped transformers (official
// widths and attention layout, a few layers, random weights in a memory-mapped .safetensors),
// per weight dtype: f32, f16 (as a converted 5B model stores them), bf16 and int8 (`convert
// --dtype int8`: the transformer matrices and x_out int8 with per-channel fp32 scales, the
// rest fp16), next to the memory bandwidth measured in the same run. Decoding one token
// reads every weight once, so the GB/s a step streams against the copy bandwidth is the
// figure that matters. BENCH_DTYPES=f16,int8 picks dtypes (default f32,f16,bf16,int8);
// prefill is timed for all but f32 (which runs the same packed GEMM as f16 once widened).
//
// BENCH_BATCHES (default 1,4,16): the batch sizes decoded. BENCH_PREFIX (default 0): also
// time the steps after a prefilled prefix of that many positions, where the KV reads are
// longer (one run per batch and dtype, the steps timed between progress reports, best of
// three 21-step windows; the prefill before them is not in the figure). Each decode row
// says which positions it timed ("positions 8+": steps 8-71 from an empty window).
// tokens/s = n x timed layers / (seconds per step x full depth): the step projected to the
// model's full depth, x_out and sampling included.
//
// Bytes a step must stream (counted from the file's own tensor sizes, so each dtype counts
// in the bytes it actually stores: 4 / 2 / 1 per weight for f32 / f16 / int8, int8 plus its
// fp32 scale tensor, one float per output channel):
//   the four projection matrices of every timed layer (attn c_attn, attn c_proj, mlp c_fc,
//   mlp c_proj) + the x_out matrix (bins x width), read once per step for all n samples,
//   + n x each sample's KV-cache rows its attention reads in every timed layer: fp32 keys
//   and values, 2 x n_state x 4 bytes a row, the row count per layer type as
//   csrc/model/kv_cache.cc keys_for reads them, averaged over the timed positions.
// At long contexts and large batches the KV rows are a real share of a step's traffic
// (leaving them out would flatter the batched rows); each row prints that share. Not
// counted: biases, LayerNorms, the one embedding row per sample, c_enc_kv (applied once per
// window, not per step), activations.
//
// xCond is passed as one broadcast row per sample (xCondLen 1): a step's arithmetic is the
// same as with a row per position, without n x context x width floats copied per run.
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
import { INT8_SCALE_SUFFIX } from '../dist/checkpoint/dtype-convert.js';
import { nativeWeight, openModelFile } from '../dist/model-file.js';
import { randomTensors } from './random-weights.mjs';
import { measureBandwidth } from './bandwidth.mjs';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 8);
const DTYPES = (process.env.BENCH_DTYPES ?? 'f32,f16,bf16,int8').split(',');
const BATCHES = (process.env.BENCH_BATCHES ?? '1,4,16').split(',').map(Number);
const PREFIX = Number(process.env.BENCH_PREFIX ?? 0);
const addon = native();
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-bench-'));

// The structure of a shape (the same for every dtype) and the KV bytes its attention reads.
function shape(name, hp) {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset(hp), prior_depth: LAYERS }, vq, name);
  const bc = s.prior.len / s.prior.blocks;
  // KV rows a query at position p reads (csrc/model/kv_cache.cc keys_for), per layer type.
  const kvRows = (f, p) => {
    switch (f) {
      case 0: return p + 1;
      case 1: return (p % bc) + 1;
      case 2: return Math.floor(p / bc) + 1;
      case 3: return p < bc ? 0 : bc;
      case 6: return s.prior.encLen;
      case 7: return Math.min(p, s.prior.primeLen - 1) + 1;
      default: return 0;
    }
  };
  // Mean KV bytes per sample per step over the timed positions [p0, p1): fp32 keys and values.
  const kvBytes = (p0, p1) => {
    let rows = 0;
    for (let p = p0; p < p1; p++) for (const f of s.prior.attnFuncs) rows += kvRows(f, p);
    return (rows / (p1 - p0)) * 2 * s.prior.state * 4;
  };
  return { name, hp, s, depth: preset(hp).prior_depth, kvBytes };
}

// One prior of this shape per dtype, all loaded at once so that their timings can be
// interleaved: on a shared machine the load changes from minute to minute, and the ratio of
// two dtypes timed back to back is far steadier than one timed minutes after the other.
async function setup(sh, dtype) {
  const { s, hp } = sh;
  const file = join(tmp, `${hp}-${dtype}.safetensors`);
  await writeSafetensors(file, [...priorKeys(s)].flatMap(([k, shp]) => randomTensors(k, shp, dtype)), {});
  const mf = openModelFile(file);
  const prior = new addon.Prior({ file, ...priorPlan(s, (key) => nativeWeight(mf, key)) });
  // What a step streams, from the file's own tensor sizes: a weight in the dtype stored,
  // int8 with its scale tensor.
  const stored = (key) => (mf.tensors.get(key)?.nbytes ?? 0) + (mf.tensors.get(key + INT8_SCALE_SUFFIX)?.nbytes ?? 0);
  const elements = (key) => (mf.tensors.get(key)?.shape ?? [0]).reduce((a, b) => a * b, 1);
  let weightBytes = 0, params = 0;
  for (let d = 0; d < LAYERS; d++) {
    for (const k of ['attn.c_attn.w', 'attn.c_proj.w', 'mlp.c_fc.w', 'mlp.c_proj.w']) {
      weightBytes += stored(`prior.transformer._attn_mods.${d}.${k}`);
      params += elements(`prior.transformer._attn_mods.${d}.${k}`);
    }
  }
  const headBytes = stored('prior.x_out.weight') || stored('prior.x_emb.weight');
  // params: the projections' weights per layer (for the prefill's FLOPs)
  return { dtype, file, prior, weightBytes, headBytes, params: params / LAYERS };
}

// Bytes a step at batch n streams over the timed positions [p0, p1), and the KV share.
function stepBytes(sh, p, n, p0, p1) {
  const kv = n * sh.kvBytes(p0, p1);
  const bytes = p.weightBytes + p.headBytes + kv;
  return { bytes, kvShare: kv / bytes };
}

// Seconds per decode step at batch n: two runs of different lengths, whose difference is the
// steps alone (positions 8-71), without the window's set-up (conditioning copies, cache
// allocation).
async function stepSeconds(sh, p, n) {
  const w = sh.s.prior.width, L = sh.s.prior.len;
  const yCond = new Float32Array(n * w), xCond = new Float32Array(n * w), tokens = new Int32Array(n * L);
  const run = async (steps) => {
    const t0 = performance.now();
    await p.prior.sample({ n, tokens, prefix: 0, end: steps, yCond, xCond, xCondLen: 1, temperature: 1, seed: 1 });
    return (performance.now() - t0) / 1000;
  };
  return ((await run(72)) - (await run(8))) / 64;
}

// Seconds per decode step at batch n after a prefilled prefix of P positions: one run, the
// steps timed between progress reports (the prefill before them is not in the figure), best
// of three windows of 21 steps (steps 8-71 after the prefix).
async function stepSecondsAfterPrefix(sh, p, n, P) {
  const w = sh.s.prior.width, L = sh.s.prior.len;
  const at = [];
  await p.prior.sample(
    { n, tokens: new Int32Array(n * L), prefix: P, end: P + 72, yCond: new Float32Array(n * w), xCond: new Float32Array(n * w), xCondLen: 1, temperature: 1, seed: 1 },
    (done) => { at[done] = performance.now(); },
  );
  // (progress reports can be coalesced: use the first report at or after each mark)
  const mark = (d) => { while (d < at.length && at[d] === undefined) d++; return d; };
  let perStep = Infinity;
  for (const a of [8, 29, 50]) {
    const d0 = mark(a), d1 = mark(a + 21);
    if (d1 < at.length && d1 > d0) perStep = Math.min(perStep, (at[d1] - at[d0]) / 1000 / (d1 - d0));
  }
  return perStep;
}

async function prefillTokS(sh, p) {
  const w = sh.s.prior.width, L = sh.s.prior.len, prefix = L / 2;
  const t0 = performance.now();
  await p.prior.sample({ n: 1, tokens: new Int32Array(L), prefix, end: prefix, yCond: new Float32Array(w), xCond: new Float32Array(L * w), seed: 1 });
  return prefix / (((performance.now() - t0) / 1000) * (sh.depth / LAYERS));
}

try {
  const band = measureBandwidth(addon.kernels);
  const bw = band.copy;
  const peak = addon.kernels.fmaPeak(0.3);
  console.log(`Prior CPU decode, ${addon.kernels.info().threads} threads (${addon.kernels.info().isa}), random weights (mmap'd safetensors) per dtype, ${LAYERS} layers timed, projected to the full depth`);
  console.log(`${band.line}; peak: ${peak.gflopsAllThreads.toFixed(1)} GFLOP/s (${peak.isa}, ${peak.threads} threads)`);
  for (const [name, hp] of [['upsampler (w 1920, attn_order 2)', 'upsampler_level_0'], ['1b_lyrics top (w 2048, attn_order 12)', 'prior_1b_lyrics']]) {
    const sh = shape(name, hp);
    const { depth } = sh;
    const priors = [];
    for (const dtype of DTYPES) priors.push(await setup(sh, dtype));
    const tokS = {};
    const row = (p, n, at, perStep, p0, p1) => {
      if (!Number.isFinite(perStep) || perStep <= 0) {
        console.log(`  ${name}, ${p.dtype.padEnd(4)} batch ${n}, positions ${at}+: not timed (progress reports coalesced)`);
        return;
      }
      const { bytes, kvShare } = stepBytes(sh, p, n, p0, p1);
      const t = (n * LAYERS) / (perStep * depth), gbs = bytes / perStep / 1e9;
      tokS[`${p.dtype}/${n}/${at}`] = t;
      console.log(`  ${name}, ${p.dtype.padEnd(4)} batch ${n}, positions ${at}+: ${t.toFixed(2)} tokens/s over ${depth} layers; ${gbs.toFixed(1)} GB/s streamed (weights + x_out + KV reads, KV ${(100 * kvShare).toFixed(1)}%) = ${((100 * gbs) / bw).toFixed(0)}% of copy bandwidth`);
    };
    for (const n of BATCHES) {
      for (const p of priors) await stepSeconds(sh, p, 1); // pages the weights in
      // best of 3 per dtype, the dtypes interleaved: a slower run is never the kernel's own speed
      const best = priors.map(() => Infinity);
      for (let rep = 0; rep < 3; rep++) for (let i = 0; i < priors.length; i++) best[i] = Math.min(best[i], await stepSeconds(sh, priors[i], n));
      priors.forEach((p, i) => row(p, n, 8, best[i], 8, 72));
    }
    const ats = [8];
    if (PREFIX > 0 && PREFIX + 72 <= sh.s.prior.len) {
      ats.push(PREFIX + 8);
      for (const n of BATCHES) {
        // the dtypes back to back at each batch
        for (const p of priors) row(p, n, PREFIX + 8, await stepSecondsAfterPrefix(sh, p, n, PREFIX), PREFIX + 8, PREFIX + 71);
      }
    } else if (PREFIX > 0) {
      console.log(`  ${name}: BENCH_PREFIX=${PREFIX} skipped (prefix + 72 steps exceeds the window of ${sh.s.prior.len})`);
    }
    for (const at of ats) {
      for (const n of BATCHES) {
        const i8 = tokS[`int8/${n}/${at}`], f16 = tokS[`f16/${n}/${at}`];
        const where = at === 8 ? '' : `, positions ${at}+`;
        if (i8 && f16) console.log(`  ${name}, batch ${n}${where}: int8 ${(i8 / f16).toFixed(2)}x the f16 tokens/s`);
        const b16 = tokS[`bf16/${n}/${at}`];
        if (b16 && f16) console.log(`  ${name}, batch ${n}${where}: bf16 ${(b16 / f16).toFixed(2)}x the f16 tokens/s`);
      }
    }
    for (const p of priors) {
      if (p.dtype === 'f32') continue; // the same packed GEMM as f16 once widened
      const r = await prefillTokS(sh, p);
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
