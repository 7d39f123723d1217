/**
 * safetensors reading and writing.
 *
 * Layout: u64 LE header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`
 * (padded with spaces so the data starts 8-byte aligned), then the data region; offsets are
 * relative to its start and tensors are contiguous little-endian.
 *
 * Reading validates the header fully (sizes, bounds, overlaps) and never loads tensor data
 * unless asked (`readSafetensorsTensor`, positioned reads). Writing streams each tensor to
 * `path + '.tmp'` and renames at the end, so a failed conversion never leaves a half file.
 *
 * `DType` and `DTYPE_SIZES` use safetensors' dtype spelling and are shared by torch.ts.
 */
import * as fsp from 'node:fs/promises';
import { JukeboxError, shortJson } from '../errors.js';
import { withFileSource } from './zip.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_SIZES: Readonly<Record<DType, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export function isDType(v: unknown): v is DType {
  return typeof v === 'string' && Object.hasOwn(DTYPE_SIZES, v);
}

export interface SafetensorsTensorInfo {
  dtype: DType;
  shape: number[];
  /** Byte range relative to `dataOffset`. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  /** Absolute file offset of the data region. */
  dataOffset: number;
  metadata: Record<string, string>;
  /** In header order. */
  tensors: Map<string, SafetensorsTensorInfo>;
}

export interface SafetensorsWriteTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** The bytes, or a factory for a stream of them (called once, when the tensor is written). */
  source: Uint8Array | (() => AsyncIterable<Uint8Array>);
  nbytes: number;
}

// The reference implementation refuses headers over 100 MB; so do we.
const MAX_HEADER_BYTES = 100_000_000;

function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return withFileSource(path, (src) => {
    const fail = (what: string, code: 'ERR_CHECKPOINT_FORMAT' | 'ERR_CHECKPOINT_TRUNCATED' | 'ERR_DTYPE' = 'ERR_CHECKPOINT_FORMAT'): never => {
      throw new JukeboxError(code, `${path}: ${what}`);
    };
    if (src.size < 8) fail(`not a safetensors file: ${src.size} bytes, too short for the header length`, 'ERR_CHECKPOINT_TRUNCATED');
    const n64 = src.read(0, 8).readBigUInt64LE(0);
    if (n64 > BigInt(src.size - 8)) fail(`safetensors header length ${n64} is larger than the file (${src.size} bytes)`, 'ERR_CHECKPOINT_TRUNCATED');
    const n = Number(n64);
    if (n > MAX_HEADER_BYTES) fail(`safetensors header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(src.read(8, n).toString('utf8'));
    } catch (cause) {
      throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${path}: safetensors header is not valid JSON: ${(cause as Error).message}`, { cause });
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('safetensors header is not a JSON object');

    const dataOffset = 8 + n;
    const dataSize = src.size - dataOffset;
    const metadata: Record<string, string> = {};
    const tensors = new Map<string, SafetensorsTensorInfo>();
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('__metadata__ is not an object');
        for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
          if (typeof s !== 'string') fail(`__metadata__ value for ${shortJson(k)} is not a string`);
          Object.defineProperty(metadata, k, { value: s, enumerable: true, writable: true, configurable: true });
        }
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
      if (typeof t !== 'object' || t === null) fail(`tensor ${name}: entry is not an object`);
      if (!isDType(t!.dtype)) fail(`tensor ${name}: unsupported dtype ${shortJson(t!.dtype)}`, 'ERR_DTYPE');
      if (!validShape(t!.shape)) fail(`tensor ${name}: bad shape ${shortJson(t!.shape)}`);
      const offs = t!.data_offsets;
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
        fail(`tensor ${name}: bad data_offsets ${shortJson(offs)}`);
      }
      const dtype = t!.dtype as DType;
      const shape = t!.shape as number[];
      const [begin, end] = offs as [number, number];
      const expected = numel(shape) * DTYPE_SIZES[dtype];
      if (end - begin !== expected) fail(`tensor ${name}: data_offsets span ${end - begin} bytes but ${dtype}${shortJson(shape)} needs ${expected}`);
      if (end > dataSize) {
        fail(`tensor ${name}: data ends at byte ${dataOffset + end} but the file has ${src.size} bytes (truncated?)`, 'ERR_CHECKPOINT_TRUNCATED');
      }
      tensors.set(name, { dtype, shape, begin, end });
    }
    const sorted = [...tensors].filter(([, t]) => t.end > t.begin).sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < sorted.length; i++) {
      const [pn, p] = sorted[i - 1]!;
      const [cn, c] = sorted[i]!;
      if (c.begin < p.end) fail(`tensors ${pn} and ${cn} overlap (bytes ${c.begin}..${p.end})`);
    }
    return { path, dataOffset, metadata, tensors };
  });
}

/** One tensor's bytes (for small tensors: tests, codebooks); the header must come from this file. */
export function readSafetensorsTensor(header: SafetensorsHeader, name: string): Buffer {
  const t = header.tensors.get(name);
  if (!t) throw new JukeboxError('ERR_MISSING_KEY', `${header.path}: no tensor named ${name}`);
  return withFileSource(header.path, (src) => src.read(header.dataOffset + t.begin, t.end - t.begin));
}

/**
 * Write a safetensors file. Tensors are laid out by decreasing element size (stable otherwise),
 * as the reference writer does, so every tensor is naturally aligned for zero-copy use.
 */
export async function writeSafetensors(path: string, tensors: readonly SafetensorsWriteTensor[], metadata: Record<string, string> = {}): Promise<void> {
  const bad = (what: string): never => {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${path}: ${what}`);
  };
  const names = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__' || names.has(t.name)) bad(`tensor name ${shortJson(t.name)} is reserved or repeated`);
    names.add(t.name);
    if (!isDType(t.dtype)) bad(`tensor ${t.name}: unsupported dtype ${String(t.dtype)}`);
    if (!validShape(t.shape)) bad(`tensor ${t.name}: bad shape ${shortJson(t.shape)}`);
    if (t.nbytes !== numel(t.shape) * DTYPE_SIZES[t.dtype]) bad(`tensor ${t.name}: nbytes ${t.nbytes} does not match ${t.dtype}${shortJson(t.shape)}`);
    if (t.source instanceof Uint8Array && t.source.byteLength !== t.nbytes) bad(`tensor ${t.name}: source has ${t.source.byteLength} bytes, expected ${t.nbytes}`);
  }
  for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') bad(`metadata ${k} is not a string`);

  const ordered = [...tensors].sort((a, b) => DTYPE_SIZES[b.dtype] - DTYPE_SIZES[a.dtype]);
  const header: Record<string, unknown> = {};
  const define = (k: string, value: unknown): void => {
    Object.defineProperty(header, k, { value, enumerable: true, writable: true, configurable: true });
  };
  if (Object.keys(metadata).length > 0) define('__metadata__', metadata);
  let offset = 0;
  for (const t of ordered) {
    define(t.name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.nbytes] });
    offset += t.nbytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));

  const tmp = `${path}.tmp`;
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'w');
    await fh.write(prefix);
    await fh.write(json);
    for (const t of ordered) {
      let written = 0;
      const chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = t.source instanceof Uint8Array ? [t.source] : t.source();
      for await (const chunk of chunks) {
        if (written + chunk.byteLength > t.nbytes) bad(`tensor ${t.name}: source yields more than ${t.nbytes} bytes`);
        await writeAll(fh, chunk);
        written += chunk.byteLength;
      }
      if (written !== t.nbytes) bad(`tensor ${t.name}: source yielded ${written} bytes, expected ${t.nbytes}`);
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof JukeboxError) throw e;
    throw new JukeboxError('ERR_IO', `${path}: writing safetensors failed: ${(e as Error).message}`, { cause: e });
  }
}

async function writeAll(fh: fsp.FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}
