/**
 * NumPy .npy and .npz files: read what numpy writes (np.save, np.savez, np.savez_compressed)
 * and write what numpy reads back with np.load.
 *
 * An .npz is a zip archive of `<name>.npy` members: written STORED like np.savez, read
 * STORED or DEFLATED (np.savez_compressed) through lib/checkpoint/zip.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readZipEntries, zipStore } from './checkpoint/zip.js';
import { JukeboxError } from './errors.js';

export type NpyDtype = 'bool' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'float32' | 'float64';

export type NpyData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A C-ordered array. `bool` data is a Uint8Array of 0/1; 64-bit integers are BigInt arrays. */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

/** The dtypes writeNpz accepts. */
export type NpzWritableDtype = 'int32' | 'int64' | 'float32' | 'float64' | 'int16' | 'uint8';

export interface NpzWritableArray extends NpyArray {
  dtype: NpzWritableDtype;
}

interface DtypeInfo {
  kind: 'b' | 'i' | 'u' | 'f';
  size: number;
  ctor: { new (buffer: ArrayBuffer, offset?: number, length?: number): NpyData; readonly name: string };
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  bool: { kind: 'b', size: 1, ctor: Uint8Array },
  int8: { kind: 'i', size: 1, ctor: Int8Array },
  uint8: { kind: 'u', size: 1, ctor: Uint8Array },
  int16: { kind: 'i', size: 2, ctor: Int16Array },
  uint16: { kind: 'u', size: 2, ctor: Uint16Array },
  int32: { kind: 'i', size: 4, ctor: Int32Array },
  uint32: { kind: 'u', size: 4, ctor: Uint32Array },
  int64: { kind: 'i', size: 8, ctor: BigInt64Array },
  uint64: { kind: 'u', size: 8, ctor: BigUint64Array },
  float32: { kind: 'f', size: 4, ctor: Float32Array },
  float64: { kind: 'f', size: 8, ctor: Float64Array },
};

const WRITABLE: readonly NpzWritableDtype[] = ['int32', 'int64', 'float32', 'float64', 'int16', 'uint8'];

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

function bad(name: string, why: string): never {
  throw new JukeboxError('ERR_CODES', `${name} is not a NumPy file we can read: ${why}`);
}

function descrOf(dtype: NpyDtype): string {
  const { kind, size } = DTYPES[dtype];
  return `${size === 1 ? '|' : '<'}${kind}${size}`;
}

/** A descr such as '<i4', '>f8' or '|b1' to a dtype and whether the data is big-endian. */
function parseDescr(descr: string, name: string): { dtype: NpyDtype; bigEndian: boolean } {
  const m = /^([<>|=])([biuf])(\d+)$/.exec(descr);
  const dtype = m && (Object.keys(DTYPES) as NpyDtype[]).find((d) => DTYPES[d].kind === m[2] && DTYPES[d].size === Number(m[3]));
  if (!m || !dtype) return bad(name, `its dtype '${descr}' is not supported (only bool, integers and float32/float64)`);
  return { dtype, bigEndian: m[1] === '>' && DTYPES[dtype].size > 1 };
}

function pyShape(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function checkShape(shape: number[], what: string): number {
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what}: shape [${shape.join(', ')}] must hold non-negative integers`);
    }
    count *= d;
  }
  return count;
}

/**
 * Encode one array as .npy bytes, laid out exactly as numpy >= 1.24 writes it: format 1.0, the
 * header dict with sorted keys, spaces that let the first dimension grow to 21 digits in
 * place, then spaces and a newline so that the data starts at a multiple of 64 bytes.
 */
export function encodeNpy(array: NpzWritableArray, what = 'array'): Buffer {
  const { dtype, shape, data } = array;
  if (!WRITABLE.includes(dtype)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what}: dtype ${String(dtype)} cannot be written (use one of ${WRITABLE.join(', ')})`);
  }
  const info = DTYPES[dtype];
  if (!(data instanceof info.ctor)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what}: dtype ${dtype} needs a ${info.ctor.name}, got ${data?.constructor?.name}`);
  }
  // numpy 1.x reads at most 32 dimensions; this also keeps the header far below 64 KiB.
  if (shape.length > 32) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what}: ${shape.length} dimensions exceed numpy's 32`);
  const count = checkShape(shape, what);
  if (count !== data.length) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what}: shape [${shape.join(', ')}] holds ${count} values but data has ${data.length}`);
  }
  let header = `{'descr': '${descrOf(dtype)}', 'fortran_order': False, 'shape': ${pyShape(shape)}, }`;
  if (shape.length > 0) header += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';

  const out = Buffer.alloc(10 + header.length + data.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = 1; // format version 1.0
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  // Typed arrays are in the host's byte order, little-endian on every platform Node supports.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Decode .npy bytes; `name` is used in error messages. */
export function parseNpy(buf: Uint8Array, name: string): NpyArray {
  if (buf.length < 10 || NPY_MAGIC.some((b, i) => buf[i] !== b)) bad(name, 'it does not start with the .npy magic string');
  const major = buf[6];
  if (major < 1 || major > 3) bad(name, `its .npy format version ${major}.${buf[7]} is unknown`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (buf.length < prefix) bad(name, 'it ends inside its header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = prefix + headerLength;
  if (dataStart > buf.length) bad(name, 'it ends inside its header');
  const header = Buffer.from(buf.buffer, buf.byteOffset + prefix, headerLength).toString(major === 3 ? 'utf8' : 'latin1');

  // The header is a Python dict literal; these three keys are all numpy ever writes.
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header);
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr) bad(name, /['"]descr['"]\s*:\s*\[/.test(header) ? 'structured dtypes are not supported' : 'its header has no descr');
  if (!fortran || !shapeText) bad(name, `its header is malformed: ${header.trim()}`);
  const dims = shapeText[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (dims.some((d) => !/^\d+L?$/.test(d))) bad(name, `its shape (${shapeText[1]}) is malformed`);
  const shape = dims.map((d) => Number.parseInt(d, 10));
  // Fortran order changes the layout only when more than one dimension is longer than 1.
  if (fortran[1] === 'True' && shape.filter((d) => d !== 1).length > 1) {
    bad(name, 'it is stored in Fortran order; save it with np.ascontiguousarray first');
  }
  const { dtype, bigEndian } = parseDescr(descr[1], name);
  const { size, ctor } = DTYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count * size)) bad(name, `its shape (${shape.join(', ')}) is too large`);
  const byteLength = count * size;
  if (dataStart + byteLength > buf.length) {
    bad(name, `it is truncated: shape (${shape.join(', ')}) of ${dtype} needs ${byteLength} bytes of data, the file has ${buf.length - dataStart}`);
  }
  // Copy into a fresh buffer: the data may sit at any offset of the file (typed arrays need
  // aligned views) and big-endian data is swapped in place.
  const bytes = new Uint8Array(buf.subarray(dataStart, dataStart + byteLength));
  if (bigEndian) {
    for (let i = 0; i < byteLength; i += size) {
      for (let a = i, b = i + size - 1; a < b; a++, b--) {
        const t = bytes[a];
        bytes[a] = bytes[b];
        bytes[b] = t;
      }
    }
  }
  return { dtype, shape, data: new ctor(bytes.buffer, 0, count) };
}

// ---- npz ----------------------------------------------------------------------------------

/** Encode arrays as an .npz archive (np.savez layout: STORED `<key>.npy` members). */
export function encodeNpz(arrays: Record<string, NpzWritableArray>): Buffer {
  const keys = Object.keys(arrays);
  if (keys.length === 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'writeNpz needs at least one array');
  if (keys.length > 0xffff) throw new JukeboxError('ERR_INVALID_ARGUMENT', `writeNpz: ${keys.length} arrays exceed the 65535 a zip without zip64 can hold`);
  return zipStore(
    keys.map((key) => {
      if (key === '') throw new JukeboxError('ERR_INVALID_ARGUMENT', 'writeNpz: array names must not be empty');
      return { name: `${key}.npy`, data: encodeNpy(arrays[key], `writeNpz '${key}'`) };
    }),
  );
}

/** Decode an .npz archive; keys are the member names without `.npy`, as np.load gives them. */
export function parseNpz(buf: Uint8Array, name: string): Record<string, NpyArray> {
  let members: Map<string, Buffer>;
  try {
    members = readZipEntries(buf, name);
  } catch (e) {
    // A damaged archive is a bad codes file to the caller, whatever the zip layer calls it.
    if (e instanceof JukeboxError) throw new JukeboxError('ERR_CODES', `${name}: not a readable .npz (${e.message})`, { cause: e });
    throw e;
  }
  const out: Record<string, NpyArray> = {};
  for (const [member, data] of members) {
    const key = member.endsWith('.npy') ? member.slice(0, -4) : member;
    out[key] = parseNpy(data, `${name}:${member}`);
  }
  return out;
}

export function writeNpz(path: string, arrays: Record<string, NpzWritableArray>): void {
  const bytes = encodeNpz(arrays);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export function readNpz(path: string): Record<string, NpyArray> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseNpz(bytes, path);
}
