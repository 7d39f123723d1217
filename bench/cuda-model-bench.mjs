// The CUDA model path (the library's prior_window / vqvae_decode, as `--backend cuda` runs
// them), timed from Node on random-weight models of the official shapes, next to the device's
// copy bandwidth measured in the same run (by build/cuda/jukebox-cuda-bench):
//  - decode tokens/s at batch 1, 4 and 16 for the 5b_lyrics top-prior stack and the
//    upsampler stack (BENCH_LAYERS layers timed, projected to the full depth), the bytes a
//    step reads (every weight once, fp16, plus the KV rows attention reads at mid-window,
//    fp32 caches) over the step time as a share of the copy bandwidth;
//  - prefill tokens/s of a level-0 window's re-prefill (7168 of 8192 positions, batch 1);
//  - the VQ-VAE level-0 decoder's real-time factor (official shape);
//  - the projected seconds of compute per second of 5b_lyrics audio at batch 1: top level
//    344.5 tokens per audio second (44.1 kHz / 128) on the 5b_lyrics stack, levels 1 and 0
//    1378.1 + 5512.5 on the upsampler stack, plus the VQ-VAE decode (prefill not counted; the
//    hop-1/2 upsampler windows re-prefill half a window each, BENCHMARKS.md).
// Byte counts (../shared/keys, m_mlp = 1): a 5b_lyrics layer holds c_attn 4800x3600 +
// c_proj 1200x4800 + c_fc and mlp c_proj 4800x4800 = 69.12 M weights (an enc-dec layer's
// c_attn is 4800x1200: 57.6 M); an upsampler layer 11.06 M (w 1920, state 480).
//
// Runs through whichever CUDA library the addon loads (JUKEBOX_CUDA_LIB); with the emulation
// build it checks that every path runs (BENCH_QUICK=1 makes it small) and says the figures
// time the CPU emulator, not a GPU.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { backendInfo } from '../dist/index.js';
import { native, packageRoot } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorKeys, priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { vqvaeLayout } from '../dist/vqvae/layout.js';
import { readSafetensorsHeader, writeSafetensors } from '../dist/checkpoint/index.js';
import { randomTensors, randomVQVAEPlan, rng } from './random-weights.mjs';

const QUICK = process.env.BENCH_QUICK === '1';
const LAYERS = Number(process.env.BENCH_LAYERS ?? (QUICK ? 1 : 8));
const BATCHES = QUICK ? [1] : [1, 4, 16];
const STEPS = QUICK ? [2, 4] : [8, 40];
const addon = native();
const support = addon.cudaModelSupport();
const info = backendInfo().cuda;
if (!support.ok) {
  console.log(`bench:cuda (model path): nothing to measure here: ${support.reason}`);
  process.exit(0);
}
const emulated = support.emulated;
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-cuda-bench-'));

function deviceCopyBandwidth() {
  if (emulated) return null;
  const exe = join(packageRoot, 'build', 'cuda', 'jukebox-cuda-bench');
  if (!existsSync(exe)) return null;
  const r = spawnSync(exe, ['1'], { encoding: 'utf8' });
  const m = /copy bandwidth \(device to device, read \+ write\): (\d+) GB\/s/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : null;
}

async function randomPrior(hp, layers) {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset(hp), prior_depth: layers }, vq, hp);
  const file = join(tmp, `${hp}.safetensors`);
  await writeSafetensors(file, [...priorKeys(s)].flatMap(([k, shape]) => randomTensors(k, shape, 'f16')), {});
  const header = readSafetensorsHeader(file);
  const ref = (key) => {
    const t = header.tensors.get(key);
    return { offset: header.dataOffset + t.begin, nbytes: t.end - t.begin, dtype: t.dtype };
  };
  return { s, plan: { file, ...priorPlan(s, ref) } };
}

/** Weights a step reads (fp16) and the KV rows attention reads at position `pos` (fp32). */
function bytesPerStep(s, n, pos) {
  const p = s.prior, w = p.width, st = p.state, bc = p.len / p.blocks;
  let bytes = 0;
  for (const f of p.attnFuncs) {
    const attn = f === 6 ? w * st : w * 3 * st;
    bytes += 2 * (attn + st * w + 2 * w * p.mlp);
    const rows = f === 0 ? pos + 1 : f === 1 ? (pos % bc) + 1 : f === 2 ? Math.floor(pos / bc) + 1 : f === 3 ? bc : f === 6 ? p.encLen : f === 7 ? Math.min(pos + 1, p.primeLen) : 0;
    bytes += n * 2 * rows * st * 4;
  }
  return bytes;
}

async function benchPrior(label, hp) {
  const fullDepth = preset(hp).prior_depth;
  const { s, plan } = await randomPrior(hp, LAYERS);
  const L = s.prior.len, w = s.prior.width, enc = s.prior.encLen ?? 0;
  const rows = [];
  for (const n of BATCHES) {
    const prior = new addon.Prior({ ...plan, backend: 'cuda', samples: n });
    const tokens = new Int32Array(n * L);
    const cond = { yCond: new Float32Array(n * w), xCond: new Float32Array(n * L * w), encoderKv: enc ? new Float32Array(n * enc * w) : undefined };
    const mid = QUICK ? 16 : L / 2;
    // Steps from mid-window (the KV runs an average step reads); two lengths, so their
    // difference is the steps alone without the window's set-up and prefill.
    const run = async (steps) => {
      const t0 = performance.now();
      await prior.sample({ n, tokens, prefix: mid, end: mid + steps, ...cond, temperature: 1, seed: 1 });
      return (performance.now() - t0) / 1000;
    };
    await run(STEPS[0]);
    let perStep = Infinity;
    for (let rep = 0; rep < (QUICK ? 1 : 3); rep++) perStep = Math.min(perStep, ((await run(STEPS[1])) - (await run(STEPS[0]))) / (STEPS[1] - STEPS[0]));
    perStep = Math.max(perStep, 1e-9);
    const bytes = bytesPerStep(s, n, mid);
    rows.push({ n, tokS: (n * LAYERS) / (perStep * fullDepth), gbs: bytes / perStep / 1e9, deviceMiB: prior.backend().deviceBytes / 2 ** 20 });
    prior.dispose();
  }
  // prefill: a level-0 window's re-prefill, 7/8 of the context, batch 1
  const prior = new addon.Prior({ ...plan, backend: 'cuda', samples: 1 });
  const prefix = QUICK ? 8 : (7 * L) / 8;
  const t0 = performance.now();
  await prior.sample({ n: 1, tokens: new Int32Array(L), prefix, end: prefix, yCond: new Float32Array(w), xCond: new Float32Array(L * w), encoderKv: enc ? new Float32Array(enc * w) : undefined, seed: 1 });
  const prefillTokS = prefix / (((performance.now() - t0) / 1000) * (fullDepth / LAYERS));
  prior.dispose();
  return { label, rows, prefillTokS, fullDepth };
}

async function benchVQVAE() {
  const layout = vqvaeLayout(vqvaeHparams(preset('vqvae'), 'vqvae'));
  const vq = new addon.VQVAE(randomVQVAEPlan(layout, rng(7), { backend: 'cuda' }));
  const seconds = QUICK ? 0.05 : 10;
  const t = Math.round((seconds * 44100) / layout.hopLengths[0]);
  const codes = Int32Array.from({ length: t }, (_, i) => (i * 7919) % layout.codebooks[0].bins);
  await vq.decode(codes, 1, t, 0);
  let best = Infinity;
  for (let r = 0; r < (QUICK ? 1 : 3); r++) {
    const t0 = performance.now();
    await vq.decode(codes, 1, t, 0);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  vq.dispose();
  return { rtf: (t * layout.hopLengths[0]) / 44100 / best, secondsPerAudioSecond: best / ((t * layout.hopLengths[0]) / 44100) };
}

try {
  const bw = deviceCopyBandwidth();
  const dev = info.devices.find((d) => d.supported);
  console.log(`CUDA model path: ${dev ? dev.name : 'no device name'}; ${info.library}${emulated ? ' (the emulation build: these figures time the CPU emulator, not a GPU)' : ''}`);
  console.log(`device copy bandwidth measured now: ${bw === null ? 'n/a (needs build/cuda/jukebox-cuda-bench on a GPU)' : `${bw} GB/s`}; ${LAYERS} layers timed, projected to the full depth; random fp16 weights, fp32 KV caches`);
  const results = [];
  for (const [label, hp] of [['5b_lyrics top (w 4800)', 'prior_5b_lyrics'], ['upsampler (w 1920)', 'upsampler_level_0']]) {
    const r = await benchPrior(label, hp);
    results.push(r);
    for (const o of r.rows) {
      const share = bw ? ` = ${((100 * o.gbs) / bw).toFixed(0)}% of copy bandwidth` : '';
      console.log(`  ${label}, batch ${String(o.n).padStart(2)}: ${o.tokS.toFixed(2)} tokens/s over ${r.fullDepth} layers; ${o.gbs.toFixed(1)} GB/s read per step${share}; ${o.deviceMiB.toFixed(0)} MiB on the device (${LAYERS} layers)`);
    }
    console.log(`  ${label}: prefill ${r.prefillTokS.toFixed(0)} tokens/s (batch 1, ${QUICK ? 8 : 7168} positions in one pass)`);
  }
  const vq = await benchVQVAE();
  console.log(`  VQ-VAE level-0 decoder (official shape): ${vq.rtf.toFixed(1)}x real time`);
  const top = results[0].rows.find((o) => o.n === 1), up = results[1].rows.find((o) => o.n === 1);
  const topS = 344.5 / top.tokS, upS = (1378.1 + 5512.5) / up.tokS;
  console.log(`projected compute per second of 5b_lyrics audio at batch 1: ${(topS + upS + vq.secondsPerAudioSecond).toFixed(2)} s (top ${topS.toFixed(2)} s + upsamplers ${upS.toFixed(2)} s + VQ-VAE ${vq.secondsPerAudioSecond.toFixed(3)} s; prefill not counted)${emulated ? ' [emulated: not a GPU figure]' : ''}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
