/**
 * Weight dtypes chosen at convert time (`jukebox convert --dtype f32|f16|bf16|int8`): element
 * conversion between the float formats a checkpoint stores, rounding to nearest-even as
 * PyTorch's `.half()` / `.bfloat16()` do, and the rule for which tensors change.
 *
 * The rule follows the official fp16 checkpoints (reference §e: after fp16_params the 5b
 * priors' Conv1D weights are fp16, everything else fp32): tensors of two or more dimensions
 * (matrices, conv kernels, embeddings, codebooks) take the requested dtype; vectors (biases,
 * LayerNorm gains) keep theirs, since they are a rounding error of the file's size and feed
 * every output. `f32` widens everything.
 *
 * `int8` is weight-only quantisation of the prior's transformer matrices (attn c_attn,
 * c_proj, c_enc_kv, mlp c_fc, c_proj, of the prior and of the lyric encoder) and of
 * prior.x_out: symmetric, one fp32 scale per output channel, scale = max|w| / 127, q =
 * round(w / scale) to nearest (ties to even, as torch.round), clamped to [-127, 127]; a
 * channel of zeros gets scale 0 (and q = 0). The dequantised weight is q * scale (fp32).
 * The scales are stored beside the weight as the F32 tensor `<key>.__scale`
 * (INT8_SCALE_SUFFIX), shaped to broadcast against it: [1, out] for the Conv1D weights
 * stored (in, out), [bins, 1] for x_out stored (bins, width) like nn.Linear. Everything
 * else keeps its stored dtype: embeddings (x_emb, pos_emb, label embeddings: their rows are
 * gathered, not multiplied), vectors, the upsampler conditioner's convolutions, and every
 * VQ-VAE tensor (a VQ-VAE converted with --dtype int8 comes out as stored).
 */
import { JukeboxError } from '../errors.js';
import { DTYPE_SIZES, type DType } from './safetensors.js';

export type WeightDtype = 'f32' | 'f16' | 'bf16' | 'int8';
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['f32', 'f16', 'bf16', 'int8'];
const TARGET: Record<Exclude<WeightDtype, 'int8'>, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** Name of an int8 weight's scale tensor: `<key>${INT8_SCALE_SUFFIX}`. */
export const INT8_SCALE_SUFFIX = '.__scale';

const INT8_CONV1D = /(^|\.)transformer\._attn_mods\.\d+\.(attn\.(c_attn|c_proj|c_enc_kv)|mlp\.(c_fc|c_proj))\.w$/;

/**
 * For the keys `--dtype int8` quantises, the axis of the stored tensor its output channels
 * run along (the axis the scales follow): 1 for the transformers' Conv1D weights (in, out),
 * 0 for prior.x_out.weight (bins, width). Undefined for every other key.
 */
export function int8Axis(key: string): 0 | 1 | undefined {
  if (INT8_CONV1D.test(key)) return 1;
  if (key === 'prior.x_out.weight') return 0;
  return undefined;
}

/** The shape of the scale tensor of an int8 weight of `shape` with channels along `axis`. */
export function int8ScaleShape(shape: readonly number[], axis: 0 | 1): number[] {
  return axis === 1 ? [1, shape[1]!] : [shape[0]!, 1];
}

export function isWeightDtype(v: unknown): v is WeightDtype {
  return typeof v === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(v);
}

/**
 * The dtype a tensor of this shape and stored dtype is written in for `--dtype want`
 * (`key`: the tensor's name, which decides what int8 applies to).
 */
export function targetDtype(stored: DType, shape: readonly number[], want: WeightDtype | undefined, key?: string): DType {
  if (want === undefined) return stored;
  if (stored !== 'F32' && stored !== 'F16' && stored !== 'BF16' && stored !== 'F64') return stored; // not a float weight
  if (want === 'int8') return key !== undefined && shape.length === 2 && int8Axis(key) !== undefined ? 'I8' : stored;
  if (want === 'f32' || shape.length >= 2) return TARGET[want];
  return stored === 'F64' ? 'F32' : stored; // a vector keeps its dtype (fp64 ones narrow to fp32)
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even; overflow to inf, NaN kept quiet. */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit-1 mantissa right, rounding to even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // a carry out of the mantissa moves the exponent, which is the right result (up to inf)
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** float32 -> bfloat16 bits, round to nearest even; NaN kept quiet. */
export function floatToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** One run of little-endian elements from `from` to `to` (whole elements only). */
export function convertElements(bytes: Uint8Array, from: DType, to: DType, label: string): Buffer {
  if (from === to) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const inSize = DTYPE_SIZES[from];
  if (bytes.byteLength % inSize !== 0) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${label}: ${bytes.byteLength} bytes is not a whole number of ${from} elements`);
  const n = bytes.byteLength / inSize;
  // Aligned copies, so typed-array views work whatever offset the chunk came at.
  const src = new Uint8Array(bytes);
  const values = new Float32Array(n);
  const view = new DataView(src.buffer);
  if (from === 'F32') values.set(new Float32Array(src.buffer));
  else if (from === 'F64') for (let i = 0; i < n; i++) values[i] = view.getFloat64(8 * i, true);
  else if (from === 'F16') for (let i = 0; i < n; i++) values[i] = halfBitsToFloat(view.getUint16(2 * i, true));
  else if (from === 'BF16') {
    const u = new Uint32Array(values.buffer);
    for (let i = 0; i < n; i++) u[i] = view.getUint16(2 * i, true) << 16;
  } else throw new JukeboxError('ERR_DTYPE', `${label}: cannot convert ${from} weights`);
  if (to === 'F32') return Buffer.from(values.buffer);
  const out = new Uint16Array(n);
  if (to === 'F16') for (let i = 0; i < n; i++) out[i] = floatToHalfBits(values[i]!);
  else if (to === 'BF16') for (let i = 0; i < n; i++) out[i] = floatToBf16Bits(values[i]!);
  else throw new JukeboxError('ERR_DTYPE', `${label}: cannot convert to ${to}`);
  return Buffer.from(out.buffer);
}

/** IEEE half bits -> number (exact). */
export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Chunks of `from` elements re-encoded as `to`. Incoming chunks may split an element; the
 * remainder is carried to the next chunk.
 */
export async function* convertStream(chunks: AsyncIterable<Uint8Array>, from: DType, to: DType, label: string): AsyncGenerator<Buffer> {
  const size = DTYPE_SIZES[from];
  let carry: Uint8Array = new Uint8Array(0);
  for await (const chunk of chunks) {
    const joined = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    const whole = joined.byteLength - (joined.byteLength % size);
    if (whole > 0) yield convertElements(joined.subarray(0, whole), from, to, label);
    carry = joined.subarray(whole);
  }
  if (carry.length) throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${label}: its data ends inside a ${from} element`);
}

/** A stream of `from` elements as Float32Arrays of whole elements (aligned copies). */
async function* floatValues(chunks: AsyncIterable<Uint8Array>, from: DType, label: string): AsyncGenerator<Float32Array> {
  for await (const b of convertStream(chunks, from, 'F32', label)) {
    yield b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Float32Array(new Uint8Array(b).buffer);
  }
}

/**
 * Pass 1 of int8 quantisation: the scale of every output channel, max|w| / 127 (fp32) over a
 * row-major (rows, cols) tensor streamed as `from` elements, channels along `axis`. A
 * non-finite weight cannot be quantised and is an error.
 */
export async function int8Scales(chunks: AsyncIterable<Uint8Array>, from: DType, shape: readonly number[], axis: 0 | 1, label: string): Promise<Float32Array> {
  const [rows, cols] = [shape[0]!, shape[1]!];
  const max = new Float64Array(axis === 1 ? cols : rows);
  let i = 0;
  for await (const v of floatValues(chunks, from, label)) {
    for (let e = 0; e < v.length; e++, i++) {
      const a = Math.abs(v[e]!);
      if (!Number.isFinite(a)) throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${label}: element ${i} is ${v[e]}; a non-finite weight cannot be quantised to int8`);
      const c = axis === 1 ? i % cols : Math.floor(i / cols);
      if (a > max[c]!) max[c] = a;
    }
  }
  if (i !== rows * cols) throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${label}: ${i} elements, expected ${rows * cols}`);
  const scales = new Float32Array(max.length);
  for (let c = 0; c < max.length; c++) scales[c] = max[c]! / 127;
  return scales;
}

/** round(x) to nearest, ties to even (as torch.round / rint). */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One weight quantised with its channel's scale: round(w / s) clamped to [-127, 127]; 0 when s is 0. */
export function quantizeInt8(w: number, scale: number): number {
  if (scale === 0) return 0;
  const q = roundEven(w / scale);
  return q > 127 ? 127 : q < -127 ? -127 : q;
}

/** Pass 2: the int8 values of the same stream, with the scales of pass 1. */
export async function* int8Quantize(chunks: AsyncIterable<Uint8Array>, from: DType, shape: readonly number[], axis: 0 | 1, scales: Float32Array, label: string): AsyncGenerator<Buffer> {
  const cols = shape[1]!;
  let i = 0;
  for await (const v of floatValues(chunks, from, label)) {
    const out = new Int8Array(v.length);
    for (let e = 0; e < v.length; e++, i++) out[e] = quantizeInt8(v[e]!, scales[axis === 1 ? i % cols : Math.floor(i / cols)]!);
    yield Buffer.from(out.buffer);
  }
}

/** An int8 tensor (with its scales) back to fp32, `q * scale` rounded once: the value the engine computes with. */
export function dequantizeInt8(q: Int8Array, shape: readonly number[], scales: Float32Array, axis: 0 | 1): Float32Array {
  const cols = shape[1]!;
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scales[axis === 1 ? i % cols : Math.floor(i / cols)]!;
  return out;
}
