/**
 * One view over the two files a model can come from: a converted .safetensors (the
 * engine's own format: weights plus hyperparameters in the header metadata) or an original
 * PyTorch .pth.tar read by the safe unpickler. Either way each tensor is a byte range of
 * the file where possible, so native code can read it from a memory mapping.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { JukeboxError } from './errors.js';
import {
  DTYPE_SIZES,
  isContiguous,
  readSafetensorsHeader,
  readTensorData,
  readTorchCheckpoint,
  readSafetensorsTensor,
  type DType,
  type SafetensorsHeader,
  type TorchCheckpoint,
} from './checkpoint/index.js';
import type { Hparams } from './hparams/presets.js';
import { dequantizeInt8, halfBitsToFloat, INT8_SCALE_SUFFIX } from './checkpoint/dtype-convert.js';

export type ModelKind = 'vqvae' | 'prior';

/** Safetensors metadata keys this package writes. */
export const META = {
  format: 'format',
  kind: 'jukebox.kind',
  hparams: 'jukebox.hparams',
  vqvaeHparams: 'jukebox.vqvae_hparams',
  preset: 'jukebox.preset',
  source: 'jukebox.source',
  /** Artist/genre vocabulary of a prior (lib/labels/vocab.ts Vocabulary as JSON). */
  vocab: 'jukebox.vocab',
  /** The original's hyperparameters that do not shape the model (training, sampling, data), as JSON. */
  otherHparams: 'jukebox.hparams_other',
  /** Names in the checkpoint's hps that the original never had, as JSON (kept, never used). */
  unrecognisedHparams: 'jukebox.hparams_unrecognised',
  /** `convert --dtype`: the dtype asked for and the rule applied, as JSON. */
  dtype: 'jukebox.dtype',
} as const;
export const FORMAT_TAG = 'jukebox-node/1';

export interface WeightInfo {
  dtype: DType;
  shape: number[];
  nbytes: number;
  /** Absolute byte offset of the contiguous little-endian data, when it is one range. */
  fileOffset?: number;
  /** Reads the tensor as contiguous little-endian bytes. */
  read(): Buffer;
}

export interface ModelFile {
  path: string;
  format: 'safetensors' | 'torch-legacy' | 'torch-zip';
  tensors: Map<string, WeightInfo>;
  /** Safetensors header metadata ({} for torch files). */
  metadata: Record<string, string>;
  /** Torch files: the checkpoint's own `hps` entry, when present. */
  checkpointHps?: Record<string, unknown>;
  torch?: TorchCheckpoint;
  safetensors?: SafetensorsHeader;
}

/** A safetensors file starts with a little-endian u64 header length and then '{'. */
function looksLikeSafetensors(path: string, size: number): boolean {
  if (size < 9) return false;
  const head = Buffer.alloc(9);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  const len = head.readBigUInt64LE(0);
  return head[8] === 0x7b && len > 1n && len <= BigInt(size - 8);
}

export function openModelFile(path: string): ModelFile {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new JukeboxError('ERR_IO', `${path} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof JukeboxError) throw e;
    throw new JukeboxError('ERR_IO', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (looksLikeSafetensors(path, size)) {
    const header = readSafetensorsHeader(path);
    const tensors = new Map<string, WeightInfo>();
    for (const [name, t] of header.tensors) {
      tensors.set(name, {
        dtype: t.dtype,
        shape: t.shape,
        nbytes: t.end - t.begin,
        fileOffset: header.dataOffset + t.begin,
        read: () => readSafetensorsTensor(header, name),
      });
    }
    return { path, format: 'safetensors', tensors, metadata: header.metadata, safetensors: header };
  }
  const ckpt = readTorchCheckpoint(path);
  const tensors = new Map<string, WeightInfo>();
  for (const [name, t] of ckpt.stateDict) {
    const size = DTYPE_SIZES[t.dtype];
    const nbytes = t.shape.reduce((a, b) => a * b, 1) * size;
    tensors.set(name, {
      dtype: t.dtype,
      shape: t.shape,
      nbytes,
      fileOffset: isContiguous(t) ? t.storage.fileOffset + t.storageOffset * size : undefined,
      read: () => readTensorData(path, t),
    });
  }
  return {
    path,
    format: ckpt.format === 'legacy' ? 'torch-legacy' : 'torch-zip',
    tensors,
    metadata: {},
    checkpointHps: ckpt.hps,
    torch: ckpt,
  };
}

/** What a file holds, judged from its keys (or its metadata for converted files). */
export function detectKind(file: ModelFile): ModelKind | undefined {
  const k = file.metadata[META.kind];
  if (k === 'vqvae' || k === 'prior') return k;
  const names = [...file.tensors.keys()];
  if (names.some((n) => n.startsWith('encoders.') || n.startsWith('bottleneck.'))) return 'vqvae';
  if (names.some((n) => n.startsWith('prior.') || n.startsWith('y_emb.') || n.startsWith('conditioner_blocks.'))) return 'prior';
  return undefined;
}

/** Hyperparameters stored in a converted file's metadata. */
export function storedHparams(file: ModelFile, key: string = META.hparams): Hparams | undefined {
  const raw = file.metadata[key];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Hparams;
  } catch (e) {
    throw new JukeboxError('ERR_HPARAMS', `${file.path}: metadata "${key}" is not a JSON object (${(e as Error).message})`);
  }
}

/** A byte range of the file native code memory-maps; int8 weights carry their scales' range too. */
export interface NativeFileWeight {
  offset: number;
  nbytes: number;
  dtype: DType;
  /** I8 only: the F32 tensor `<name>.__scale`, shape [1, cols] (per column) or [rows, 1] (per row). */
  scales?: { offset: number; nbytes: number; dtype: DType; shape: number[] };
}

/**
 * How native code gets a weight: the byte range in the file it memory-maps (any dtype,
 * read in place), or, for a strided view of a .pth.tar storage, a gathered float32 copy.
 * An int8 weight (`convert --dtype int8`) comes with the range of its scale tensor; the
 * native side checks the scales' shape and values again (csrc/napi/weight_store.cc).
 */
export function nativeWeight(file: ModelFile, name: string): NativeFileWeight | Float32Array {
  const w = file.tensors.get(name);
  if (!w) throw new JukeboxError('ERR_MISSING_KEY', `${file.path}: missing weight "${name}"`);
  if (w.fileOffset === undefined) return readFloat32(file, name);
  const ref: NativeFileWeight = { offset: w.fileOffset, nbytes: w.nbytes, dtype: w.dtype };
  if (w.dtype === 'I8') {
    const s = file.tensors.get(name + INT8_SCALE_SUFFIX);
    if (!s || s.fileOffset === undefined) {
      throw new JukeboxError('ERR_MISSING_KEY', `${file.path}: weight "${name}" is int8 but its scales "${name}${INT8_SCALE_SUFFIX}" are missing`);
    }
    ref.scales = { offset: s.fileOffset, nbytes: s.nbytes, dtype: s.dtype, shape: s.shape };
  }
  return ref;
}

/** Float32 copy of a floating-point tensor (F32, F16, BF16), or of an int8 one dequantised with its scales. */
export function readFloat32(file: ModelFile, name: string): Float32Array {
  const w = file.tensors.get(name);
  if (!w) throw new JukeboxError('ERR_MISSING_KEY', `${file.path}: missing weight "${name}"`);
  const buf = w.read();
  const n = w.nbytes / DTYPE_SIZES[w.dtype];
  const out = new Float32Array(n);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (w.dtype === 'F32') {
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (w.dtype === 'F16') {
    for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  } else if (w.dtype === 'BF16') {
    const u = new Uint32Array(1), f = new Float32Array(u.buffer);
    for (let i = 0; i < n; i++) {
      u[0] = view.getUint16(2 * i, true) << 16;
      out[i] = f[0];
    }
  } else if (w.dtype === 'I8' && w.shape.length === 2 && file.tensors.get(name + INT8_SCALE_SUFFIX)?.dtype === 'F32') {
    const st = file.tensors.get(name + INT8_SCALE_SUFFIX)!;
    const scales = readFloat32(file, name + INT8_SCALE_SUFFIX);
    const axis = st.shape[0] === 1 && st.shape[1] === w.shape[1] ? 1 : 0;
    if (scales.length !== w.shape[axis]) {
      throw new JukeboxError('ERR_SHAPE_MISMATCH', `${file.path}: "${name}${INT8_SCALE_SUFFIX}" has shape [${st.shape.join(', ')}]; expected [1, ${w.shape[1]}] or [${w.shape[0]}, 1]`);
    }
    out.set(dequantizeInt8(new Int8Array(buf.buffer, buf.byteOffset, buf.byteLength), w.shape, scales, axis));
  } else {
    throw new JukeboxError('ERR_DTYPE', `${file.path}: weight "${name}" has dtype ${w.dtype}; expected a float type (or I8 with its scales)`);
  }
  return out;
}

/** IEEE half bits -> number (one home: lib/checkpoint/dtype-convert.ts). */
export const halfToFloat = halfBitsToFloat;
