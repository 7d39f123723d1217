/**
 * Minimal zip support for PyTorch checkpoints and NumPy .npz files.
 *
 * Reading works on a `RandomAccess` (a file descriptor via `FileSource`, or a buffer via
 * `bufferSource`) with positioned reads only, so a multi-GB checkpoint's storages are located
 * (each entry's `dataOffset`) without being read. ZIP64 end records and extra fields are
 * understood (checkpoints over 4 GiB use them). Entry data can be read into memory with
 * `readZipEntry` for STORED and DEFLATE entries; anything else is a clear error.
 *
 * Writing (`zipStore`) builds a small in-memory archive of STORED entries, which is all an .npz
 * needs. `readZipEntries` is the matching in-memory reader.
 *
 * The positioned-read helpers (`FileSource`, `withFileSource`, `bufferSource`) also serve torch.ts and
 * safetensors.ts.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { JukeboxError } from '../errors.js';
import type { ByteSource } from './pickle.js';

/** A ByteSource with a name for error messages. */
export interface RandomAccess extends ByteSource {
  readonly label: string;
  read(position: number, length: number): Buffer;
}

/** Positioned reads on an open file descriptor (the caller owns and closes `fd`). */
export class FileSource implements RandomAccess {
  readonly size: number;
  constructor(
    readonly fd: number,
    readonly label: string,
  ) {
    this.size = fs.fstatSync(fd).size;
  }

  /** Exactly `length` bytes at `position`; ERR_CHECKPOINT_TRUNCATED when the file is shorter. */
  read(position: number, length: number): Buffer {
    if (position < 0 || length < 0 || position + length > this.size) {
      throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${this.label}: file ends before byte ${position + length} (it has ${this.size} bytes)`);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, position + done);
      if (n === 0) throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${this.label}: file shrank while reading at byte ${position + done}`);
      done += n;
    }
    return buf;
  }
}

/** Open `path`, run `fn` on it, close it; a file that cannot be opened is ERR_IO. */
export function withFileSource<T>(path: string, fn: (src: FileSource) => T): T {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (cause) {
    throw new JukeboxError('ERR_IO', `${path}: cannot open: ${(cause as Error).message}`, { cause });
  }
  try {
    return fn(new FileSource(fd, path));
  } finally {
    fs.closeSync(fd);
  }
}

export function bufferSource(buf: Uint8Array, label: string): RandomAccess {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    label,
    size: b.length,
    read(position, length) {
      if (position < 0 || length < 0 || position + length > b.length) {
        throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${label}: data ends before byte ${position + length} (it has ${b.length} bytes)`);
      }
      return b.subarray(position, position + length);
    },
  };
}

export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE; others are listed but cannot be read. */
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  /** Absolute offset of the entry's (possibly compressed) data. */
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const EOCD_SIZE = 22;
const LOCATOR64_SIZE = 20;
const MAX_COMMENT = 0xffff;
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

function formatError(src: RandomAccess, what: string): JukeboxError {
  return new JukeboxError('ERR_CHECKPOINT_FORMAT', `${src.label}: ${what}`);
}

function u64(b: Buffer, at: number, src: RandomAccess, what: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(src, `zip ${what} ${v} is out of range`);
  return Number(v);
}

/** Locate the end-of-central-directory record: it is the last thing in a complete archive. */
function findEocd(src: RandomAccess): { pos: number; rec: Buffer } {
  const tailLen = Math.min(src.size, EOCD_SIZE + MAX_COMMENT);
  const tail = src.read(src.size - tailLen, tailLen);
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    // Stored data can contain the signature by chance; a real record's comment reaches EOF exactly.
    if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tailLen) {
      return { pos: src.size - tailLen + i, rec: tail.subarray(i, i + EOCD_SIZE) };
    }
  }
  throw new JukeboxError(
    'ERR_CHECKPOINT_TRUNCATED',
    `${src.label}: zip end-of-central-directory record not found (the file is truncated or not a zip archive)`,
  );
}

/** Central directory position and entry count, from the ZIP64 record when there is one. */
function directoryBounds(src: RandomAccess): { count: number; offset: number; size: number; end: number } {
  const { pos, rec } = findEocd(src);
  if (rec.readUInt16LE(4) !== 0 || rec.readUInt16LE(6) !== 0) throw formatError(src, 'multi-disk zip archives are not supported');
  let count = rec.readUInt16LE(10);
  let size = rec.readUInt32LE(12);
  let offset = rec.readUInt32LE(16);
  let end = pos;
  const locPos = pos - LOCATOR64_SIZE;
  const loc = locPos >= 0 ? src.read(locPos, LOCATOR64_SIZE) : undefined;
  if (loc && loc.readUInt32LE(0) === SIG_LOCATOR64) {
    const recPos = u64(loc, 8, src, 'ZIP64 record offset');
    if (recPos + 56 > locPos) throw formatError(src, 'ZIP64 end record lies outside the file');
    const r64 = src.read(recPos, 56);
    if (r64.readUInt32LE(0) !== SIG_EOCD64) throw formatError(src, 'bad ZIP64 end-of-central-directory signature');
    count = u64(r64, 32, src, 'entry count');
    size = u64(r64, 40, src, 'central directory size');
    offset = u64(r64, 48, src, 'central directory offset');
    end = recPos;
  } else if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw formatError(src, 'zip needs ZIP64 records but has none');
  }
  if (offset + size > end) throw formatError(src, 'zip central directory lies outside the file');
  if (size > MAX_CENTRAL_DIRECTORY) throw formatError(src, `zip central directory of ${size} bytes is too large`);
  return { count, offset, size, end };
}

/** Apply the ZIP64 extended-information extra field (id 1) to the saturated 32-bit fields. */
function applyZip64Extra(extra: Buffer, e: ZipEntry, src: RandomAccess): void {
  for (let i = 0; i + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(i);
    const len = extra.readUInt16LE(i + 2);
    const body = extra.subarray(i + 4, i + 4 + len);
    if (body.length !== len) throw formatError(src, `zip entry ${e.name}: extra field overruns its record`);
    if (id === 0x0001) {
      let p = 0;
      const next = (what: string): number => {
        if (p + 8 > body.length) throw formatError(src, `zip entry ${e.name}: ZIP64 extra field lacks the ${what}`);
        const v = u64(body, p, src, what);
        p += 8;
        return v;
      };
      if (e.uncompressedSize === 0xffffffff) e.uncompressedSize = next('uncompressed size');
      if (e.compressedSize === 0xffffffff) e.compressedSize = next('compressed size');
      if (e.localHeaderOffset === 0xffffffff) e.localHeaderOffset = next('local header offset');
      return;
    }
    i += 4 + len;
  }
}

/** All entries of an archive, by name, with their data offsets resolved from the local headers. */
export function readZipDirectory(src: RandomAccess): Map<string, ZipEntry> {
  const { count, offset, size, end } = directoryBounds(src);
  const cd = src.read(offset, size);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw formatError(src, `zip central directory entry ${k} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw formatError(src, `zip central directory entry ${k} overruns the directory`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    const e: ZipEntry = {
      name,
      method: cd.readUInt16LE(p + 10),
      crc32: cd.readUInt32LE(p + 16),
      compressedSize: cd.readUInt32LE(p + 20),
      uncompressedSize: cd.readUInt32LE(p + 24),
      localHeaderOffset: cd.readUInt32LE(p + 42),
      dataOffset: 0,
    };
    applyZip64Extra(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen), e, src);
    p += 46 + nameLen + extraLen + commentLen;
    if (flags & 1) throw formatError(src, `zip entry ${name} is encrypted`);
    if (entries.has(name)) throw formatError(src, `zip has two entries named ${name}`);
    e.dataOffset = localDataOffset(src, e, end);
    entries.set(name, e);
  }
  return entries;
}

/** The local header's own name/extra lengths decide where data starts (torch pads the extra). */
function localDataOffset(src: RandomAccess, e: ZipEntry, end: number): number {
  if (e.localHeaderOffset + 30 > end) throw formatError(src, `zip entry ${e.name}: local header lies outside the archive`);
  const h = src.read(e.localHeaderOffset, 30);
  if (h.readUInt32LE(0) !== SIG_LOCAL) throw formatError(src, `zip entry ${e.name}: bad local header signature`);
  const dataOffset = e.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  if (dataOffset + e.compressedSize > end) {
    throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${src.label}: zip entry ${e.name} runs past the end of the archive data`);
  }
  return dataOffset;
}

/** An entry's bytes in memory (STORED or DEFLATE), CRC-checked; refuses entries over `maxBytes`. */
export function readZipEntry(src: RandomAccess, e: ZipEntry, maxBytes = 1 << 30): Buffer {
  if (e.uncompressedSize > maxBytes) throw formatError(src, `zip entry ${e.name} (${e.uncompressedSize} bytes) is too large to read into memory`);
  const raw = src.read(e.dataOffset, e.compressedSize);
  let data: Buffer;
  if (e.method === 0) {
    if (e.compressedSize !== e.uncompressedSize) throw formatError(src, `zip entry ${e.name}: STORED sizes disagree`);
    data = raw;
  } else if (e.method === 8) {
    try {
      // maxOutputLength bounds a lying header (zip bomb) to the declared size.
      data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.uncompressedSize) });
    } catch (cause) {
      throw new JukeboxError('ERR_CHECKPOINT_FORMAT', `${src.label}: zip entry ${e.name} does not inflate: ${(cause as Error).message}`, { cause });
    }
    if (data.length !== e.uncompressedSize) throw formatError(src, `zip entry ${e.name} inflates to ${data.length} bytes, expected ${e.uncompressedSize}`);
  } else {
    throw formatError(src, `zip entry ${e.name} uses compression method ${e.method}; only STORED (0) and DEFLATE (8) are supported`);
  }
  if (crc32(data) !== e.crc32) throw formatError(src, `zip entry ${e.name} fails its CRC check`);
  return data;
}

/**
 * Every entry of an in-memory archive (e.g. an .npz), by name. What the entries declare is
 * added up from the directory before anything is inflated, so an archive whose members
 * declare gigabytes (4 x 256 MB) is refused at once; a member that inflates past what it
 * declares is cut off by readZipEntry.
 */
export function readZipEntries(buf: Uint8Array, label = 'zip archive', maxTotalBytes = 512 * 1024 * 1024): Map<string, Buffer> {
  const src = bufferSource(buf, label);
  const dir = readZipDirectory(src);
  const total = [...dir.values()].reduce((n, e) => n + e.uncompressedSize, 0);
  if (total > maxTotalBytes) {
    throw formatError(src, `its ${dir.size} member(s) declare ${total} bytes uncompressed, above the ${maxTotalBytes}-byte limit for reading into memory`);
  }
  const out = new Map<string, Buffer>();
  for (const [name, e] of dir) out.set(name, readZipEntry(src, e, maxTotalBytes));
  return out;
}

/** A STORED (uncompressed) zip archive of `entries`, in order; no ZIP64, so under 4 GiB. */
export function zipStore(entries: readonly { name: string; data: Uint8Array }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const { name, data } of entries) {
    if (names.has(name)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `zipStore: duplicate entry name ${name}`);
    names.add(name);
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > 0xffff) throw new JukeboxError('ERR_INVALID_ARGUMENT', `zipStore: entry name too long`);
    const crc = crc32(data);
    const utf8Flag = /^[\x20-\x7e]*$/.test(name) ? 0 : 0x0800;
    // Fixed DOS date 1980-01-01 00:00 keeps the output reproducible.
    const common = (b: Buffer, at: number): void => {
      b.writeUInt16LE(20, at); // version needed: 2.0
      b.writeUInt16LE(utf8Flag, at + 2);
      b.writeUInt16LE(0, at + 4); // STORED
      b.writeUInt16LE(0, at + 6); // time
      b.writeUInt16LE(0x21, at + 8); // date
      b.writeUInt32LE(crc, at + 10);
      b.writeUInt32LE(data.length, at + 14);
      b.writeUInt32LE(data.length, at + 18);
      b.writeUInt16LE(nameBytes.length, at + 22);
    };
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    common(local, 4);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(SIG_CENTRAL, 0);
    central.writeUInt16LE(20, 4); // version made by
    common(central, 6);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const cdSize = centrals.reduce((n, b) => n + b.length, 0);
  if (entries.length > 0xfffe || offset + cdSize > 0xfffffffe) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'zipStore: archive too large for a non-ZIP64 zip');
  }
  const eocd = Buffer.alloc(EOCD_SIZE);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, eocd]);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (zip / PNG polynomial); zlib.crc32 needs Node >= 20.15, we support 20.0. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
