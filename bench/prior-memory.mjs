// node --expose-gc bench/prior-memory.mjs: resident memory of a 5b_lyrics-shaped prior (official widths
// and attention layout, BENCH_LAYERS of its 79 layers, random fp16 weights in a converted
// .safetensors) during a decode step, against its weight bytes plus KV cache. The weights
// are memory-mapped, so they count once, as file pages, and nothing is copied to fp32.
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorKeys, priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { readSafetensorsHeader, writeSafetensors } from '../dist/checkpoint/index.js';

const LAYERS = Number(process.env.BENCH_LAYERS ?? 20);
const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-mem-'));
try {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset('prior_5b_lyrics'), prior_depth: LAYERS }, vq, '5b_lyrics');
  const file = join(tmp, 'p.safetensors');
  let bytes = 0;
  // Big matrices fp16 (as the official 5B files), everything else fp32.
  await writeSafetensors(file, [...priorKeys(s)].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const half = /\.(c_attn|c_enc_kv|c_proj|c_fc)\.w$|prime_state_proj\.w$/.test(name);
    const data = half ? new Uint16Array(n).fill(0x2000) : new Float32Array(n).fill(name.includes('ln') ? 1 : 0.001);
    bytes += data.byteLength;
    return { name, dtype: half ? 'F16' : 'F32', shape, nbytes: data.byteLength, source: new Uint8Array(data.buffer) };
  }), {});
  const h = readSafetensorsHeader(file);
  // Let the arrays used for writing go before measuring (run with --expose-gc).
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc?.();
  const before = rssMB();
  const prior = new (native().Prior)({ file, ...priorPlan(s, (k) => { const t = h.tensors.get(k); return { offset: h.dataOffset + t.begin, nbytes: t.end - t.begin, dtype: t.dtype }; }) });
  const w = s.prior.width, L = s.prior.len;
  const tokens = new Int32Array(L);
  await prior.sample({ n: 1, tokens, prefix: 0, end: 2, yCond: new Float32Array(w), xCond: new Float32Array(L * w), encoderKv: new Float32Array(s.nTokens * w), seed: 1 });
  const after = rssMB();
  // KV cache: per layer type (see csrc/model/kv_cache.h), fp32, one sample.
  const bc = L / s.prior.blocks, st = s.prior.state;
  const rows = { 1: bc, 2: L, 3: 2 * bc, 6: s.nTokens, 0: L, 7: 0 };
  const kv = s.prior.attnFuncs.reduce((a, f) => a + 2 * rows[f] * st * 4, 0);
  // the window's conditioning inputs the session copies (x_cond), fp32
  const inputs = L * w * 4;
  console.log(`5b_lyrics-shaped prior, ${LAYERS} of 79 layers, fp16 weights: ${(bytes / 2 ** 20).toFixed(0)} MiB of weights, KV cache ${(kv / 2 ** 20).toFixed(0)} MiB (allocated; a step touches only what it reads), window inputs ${(inputs / 2 ** 20).toFixed(0)} MiB`);
  console.log(`resident memory grew by ${(after - before).toFixed(0)} MiB during load + decode = ${((100 * (after - before) * 2 ** 20) / (bytes + kv + inputs)).toFixed(0)}% of weights + KV + inputs`);
  prior.dispose();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
