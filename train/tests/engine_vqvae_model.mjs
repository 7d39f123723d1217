// Runs the engine's VQ-VAE on raw arrays for train/tests/test_vqvae_model.py (engine parity):
//   node engine_vqvae_model.mjs <model.safetensors> <dir> <n> <t> [<prefix>]
// reads <dir>/x.f32 (n clips of t float32 samples) and, per level, <dir>/z_l<L>.i32 (codes to
// decode, n rows); writes <dir>/<prefix>codes_l<L>.i32 (the engine's codes of x) and
// <dir>/<prefix>decode_l<L>.f32 (the engine's decode of z_l<L>). Imports the package's built
// dist/index.js relative to this file.
import { readFileSync, writeFileSync } from 'node:fs';

const { loadVQVAE } = await import(new URL('../../dist/index.js', import.meta.url).href);
const [model, dir, nArg, tArg, prefix = ''] = process.argv.slice(2);
const n = Number(nArg), t = Number(tArg);
const read = (f, T) => {
  const b = readFileSync(`${dir}/${f}`);
  return new T(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};
const concat = (parts, T) => {
  const out = new T(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const x = read('x.f32', Float32Array);
const clips = Array.from({ length: n }, (_, i) => x.subarray(i * t, (i + 1) * t));
const vq = await loadVQVAE(model);
try {
  const codes = await vq.encode(clips);
  for (let l = 0; l < vq.levels; l++) {
    writeFileSync(`${dir}/${prefix}codes_l${l}.i32`, Buffer.from(concat(codes[l], Int32Array).buffer));
    const z = read(`z_l${l}.i32`, Int32Array);
    const audio = await vq.decode({ n, t: z.length / n, data: z }, l);
    writeFileSync(`${dir}/${prefix}decode_l${l}.f32`, Buffer.from(concat(audio, Float32Array).buffer));
  }
} finally {
  vq.dispose();
}
