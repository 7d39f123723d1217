// npm run bench:prior-memory (node --expose-gc bench/prior-memory.mjs): resident memory of a
// 5b_lyrics-shaped prior (official widths and attention layout, random weights in a
// converted .safetensors) during a decode step, against its weight bytes plus KV cache.
//
// BENCH_DTYPE=int8 (the default): the layout `jukebox convert --dtype int8` writes (the
// transformer matrices and x_out int8 with per-output-channel F32 scales beside them,
// embeddings fp16, vectors fp32), all 79 layers (~5.9 GB of file): the int8 weights are
// memory-mapped and read in place, never expanded to fp32, so resident memory must stay
// within 15% of the int8 weight bytes plus the KV cache. The file is written tensor by
// tensor from generated data (streaming, nothing built in fp32 first) and needs that much
// free disk and memory. BENCH_DTYPE=f16: the official files' layout (projection matrices
// fp16, the rest fp32), BENCH_LAYERS of them (default 20).
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../dist/native.js';
import { preset } from '../dist/hparams/presets.js';
import { priorStructure } from '../dist/prior/structure.js';
import { priorKeys, priorPlan } from '../dist/prior/layout.js';
import { vqvaeHparams } from '../dist/vqvae/hparams.js';
import { writeSafetensors } from '../dist/checkpoint/index.js';
import { INT8_SCALE_SUFFIX, int8Axis, int8ScaleShape } from '../dist/checkpoint/dtype-convert.js';
import { nativeWeight, openModelFile } from '../dist/model-file.js';

const DTYPE = process.env.BENCH_DTYPE ?? 'int8';
const FULL = preset('prior_5b_lyrics').prior_depth;
const LAYERS = Number(process.env.BENCH_LAYERS ?? (DTYPE === 'int8' ? FULL : 20));
const status = () => readFileSync('/proc/self/status', 'utf8');
const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(status())[1]) / 1024;
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-mem-'));

// 1 MiB of pseudo-random bytes, repeated: the values do not matter here, only that every
// page is real data (a zero page could be shared).
const noise = Buffer.alloc(1 << 20);
for (let i = 0, s = 1; i < noise.length; i++) noise[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
function filled(nbytes, pattern) {
  const b = Buffer.allocUnsafe(nbytes);
  b.fill(pattern);
  return b;
}

try {
  const vq = vqvaeHparams(preset('vqvae'), 'vqvae');
  const s = priorStructure({ ...preset('prior_5b_lyrics'), prior_depth: LAYERS }, vq, '5b_lyrics');
  const file = join(tmp, 'p.safetensors');
  let bytes = 0, int8Bytes = 0;
  const tensors = [];
  for (const [name, shape] of priorKeys(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const axis = int8Axis(name);
    if (DTYPE === 'int8' && axis !== undefined) {
      const ss = int8ScaleShape(shape, axis);
      const scales = new Float32Array(ss[0] * ss[1]).fill(0.01 / 127);
      tensors.push({ name: name + INT8_SCALE_SUFFIX, dtype: 'F32', shape: ss, nbytes: scales.byteLength, source: new Uint8Array(scales.buffer) });
      // int8 values in [-128, 127]: the noise bytes reinterpreted (the kernels take any)
      tensors.push({ name, dtype: 'I8', shape, nbytes: n, source: async function* () { yield filled(n, noise); } });
      bytes += n + scales.byteLength;
      int8Bytes += n;
      continue;
    }
    const half = DTYPE === 'int8' ? shape.length >= 2 && !name.endsWith('start_token') : /\.(c_attn|c_enc_kv|c_proj|c_fc)\.w$|prime_state_proj\.w$/.test(name);
    const nbytes = half ? 2 * n : 4 * n;
    const pattern = half ? Buffer.from([0x00, 0x20]) : Buffer.from(new Float32Array([name.includes('ln') ? 1 : 0.001]).buffer);
    tensors.push({ name, dtype: half ? 'F16' : 'F32', shape, nbytes, source: async function* () { yield filled(nbytes, pattern); } });
    bytes += nbytes;
  }
  await writeSafetensors(file, tensors, {});
  const mf = openModelFile(file);
  // Let the buffers used for writing go before measuring (run with --expose-gc).
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc?.();
  const before = rssMB();
  const prior = new (native().Prior)({ file, ...priorPlan(s, (k) => nativeWeight(mf, k)) });
  const w = s.prior.width, L = s.prior.len;
  const tokens = new Int32Array(L);
  await prior.sample({ n: 1, tokens, prefix: 0, end: 2, yCond: new Float32Array(w), xCond: new Float32Array(L * w), encoderKv: new Float32Array(s.nTokens * w), seed: 1 });
  const after = rssMB();
  const fileMB = Number(/RssFile:\s+(\d+)/.exec(status())?.[1] ?? NaN) / 1024;
  // KV cache: per layer type (see csrc/model/kv_cache.h), fp32, one sample.
  const bc = L / s.prior.blocks, st = s.prior.state;
  const rows = { 1: bc, 2: L, 3: 2 * bc, 6: s.nTokens, 0: L, 7: 0 };
  const kv = s.prior.attnFuncs.reduce((a, f) => a + 2 * rows[f] * st * 4, 0);
  // the window's conditioning inputs the session copies (x_cond), fp32
  const inputs = L * w * 4;
  const MiB = (b) => (b / 2 ** 20).toFixed(0);
  const grown = (after - before) * 2 ** 20;
  console.log(`5b_lyrics-shaped prior, ${LAYERS} of ${FULL} layers, ${DTYPE} weights: ${MiB(bytes)} MiB of weights in the file${DTYPE === 'int8' ? ` (${MiB(int8Bytes)} MiB of them int8)` : ''}, KV cache ${MiB(kv)} MiB (allocated; a step touches only what it reads), window inputs ${MiB(inputs)} MiB`);
  console.log(`resident memory grew by ${MiB(grown)} MiB during load + decode (file-backed now ${fileMB.toFixed(0)} MiB) = ${((100 * grown) / (bytes + kv + inputs)).toFixed(0)}% of weights + KV + inputs, ${((100 * grown) / (bytes + kv)).toFixed(0)}% of weights + KV`);
  if (DTYPE === 'int8') {
    const ok = grown <= 1.15 * (bytes + kv);
    console.log(`${ok ? 'ok' : 'FAIL'}: within 15% of the int8 weight bytes plus KV cache (limit ${MiB(1.15 * (bytes + kv))} MiB); an fp32 copy of the int8 matrices alone would add ${MiB(4 * int8Bytes)} MiB`);
    if (!ok) process.exitCode = 1;
  }
  prior.dispose();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
