// Random weights for the benchmarks: prior tensors written through writeSafetensors
// (bench/prior-bench.mjs, bench/cuda-model-bench.mjs) and VQ-VAE plans (bench/vqvae-bench.mjs,
// bench/cuda-model-bench.mjs). What they time does not depend on the values, only on their
// dtype and shapes, and the activations must stay finite through any depth.
import { INT8_SCALE_SUFFIX, int8Axis, int8ScaleShape } from '../dist/checkpoint/dtype-convert.js';
import { halfToFloat } from '../dist/model-file.js';

// Random fp16 bits around +-0.01 (exponent 0x20); LayerNorm weights 1.0, biases 0. For f32
// the same values widened, for bf16 truncated to bf16; for int8 the matrices int8 would quantise get random int8 values
// with scales 0.01 / 127 (the same magnitude), everything else stays fp16. Each tensor is
// generated when the writer asks for it, so the file never exists in memory.
export function randomTensors(key, shape, dtype) {
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
  if (dtype === 'bf16') {
    // the same values rounded toward zero to bf16 (the top half of each fp32)
    return [{
      name: key, dtype: 'BF16', shape, nbytes: 2 * n,
      source: async function* () {
        const h = halves();
        const f = new Float32Array(1);
        const u = new Uint32Array(f.buffer);
        const b = new Uint16Array(n);
        for (let i = 0; i < n; i++) {
          f[0] = halfToFloat(h[i]);
          b[i] = u[0] >>> 16;
        }
        yield new Uint8Array(b.buffer);
      },
    }];
  }
  return [{ name: key, dtype: 'F16', shape, nbytes: 2 * n, source: async function* () { yield new Uint8Array(halves().buffer); } }];
}

/** xorshift32 in [-0.5, 0.5): the benchmarks' own generator (no Math.random: runs repeat). */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000 - 0.5;
  };
}

/** n values rand() * scale. */
export function randArray(n, scale, rand) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * scale;
  return a;
}

/**
 * A VQ-VAE plan for `new addon.VQVAE(...)` from a layout (vqvaeLayout), random weights
 * scaled by 1/sqrt(fan-in) so activations stay O(1) through the residual stacks; extra
 * fields (e.g. backend) are added to it.
 */
export function randomVQVAEPlan(layout, rand, extra = {}) {
  const convSpec = (c) => ({ ...c, weight: randArray(c.cin * c.cout * c.kernel, Math.sqrt(3 / (c.cin * c.kernel)), rand), bias: randArray(c.cout, 0.01, rand) });
  const stack = (s) => ({
    inChannels: s.inChannels,
    outChannels: s.outChannels,
    layers: s.layers.map((l) => (l.kind === 'conv' ? { kind: 'conv', conv: convSpec(l.conv) } : { kind: 'res', a: convSpec(l.a), b: convSpec(l.b), scale: l.scale })),
  });
  return {
    hopLengths: layout.hopLengths,
    encoders: layout.encoders.map(stack),
    decoders: layout.decoders.map(stack),
    codebooks: layout.codebooks.map((c) => ({ bins: c.bins, width: c.width, weight: randArray(c.bins * c.width, 1, rand) })),
    ...extra,
  };
}
