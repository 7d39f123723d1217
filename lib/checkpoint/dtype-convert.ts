/**
 * Weight dtypes chosen at convert time (`jukebox convert --dtype f32|f16|bf16`): element
 * conversion between the float formats a checkpoint stores, rounding to nearest-even as
 * PyTorch's `.half()` / `.bfloat16()` do, and the rule for which tensors change.
 *
 * The rule follows the official fp16 checkpoints (reference §e: after fp16_params the 5b
 * priors' Conv1D weights are fp16, everything else fp32): tensors of two or more dimensions
 * (matrices, conv kernels, embeddings, codebooks) take the requested dtype; vectors (biases,
 * LayerNorm gains) keep theirs, since they are a rounding error of the file's size and feed
 * every output. `f32` widens everything.
 */
import { JukeboxError } from '../errors.js';
import { DTYPE_SIZES, type DType } from './safetensors.js';

export type WeightDtype = 'f32' | 'f16' | 'bf16';
export const WEIGHT_DTYPES: readonly WeightDtype[] = ['f32', 'f16', 'bf16'];
const TARGET: Record<WeightDtype, DType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export function isWeightDtype(v: unknown): v is WeightDtype {
  return typeof v === 'string' && (WEIGHT_DTYPES as readonly string[]).includes(v);
}

/** The dtype a tensor of this shape and stored dtype is written in for `--dtype want`. */
export function targetDtype(stored: DType, shape: readonly number[], want: WeightDtype | undefined): DType {
  if (want === undefined) return stored;
  if (stored !== 'F32' && stored !== 'F16' && stored !== 'BF16' && stored !== 'F64') return stored; // not a float weight
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
