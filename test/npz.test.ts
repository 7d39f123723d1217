import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy, encodeNpz, parseNpy, parseNpz, readNpz, writeNpz, type NpyArray, type NpzWritableArray } from '../lib/npz.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/npz', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-npz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));

/** What make_npz.py's MIXED holds, as we expect to read it. */
const MIXED: Record<string, { dtype: NpyArray['dtype']; shape: number[]; values: (number | bigint)[] }> = {
  codes_i4: { dtype: 'int32', shape: [2, 8], values: Array.from({ length: 16 }, (_, i) => i - 8) },
  codes_i8: { dtype: 'int64', shape: [5], values: [-(2n ** 40n), -1n, 0n, 1n, 2n ** 40n] },
  big_i8: { dtype: 'int64', shape: [5], values: [-(2n ** 40n), -1n, 0n, 1n, 2n ** 40n] },
  big_f4: { dtype: 'float32', shape: [3], values: [1.5, -2.25, Math.fround(1e-3)] },
  big_u2: { dtype: 'uint16', shape: [3], values: [1, 258, 65535] },
  f4: { dtype: 'float32', shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25] },
  f8_scalar: { dtype: 'float64', shape: [], values: [Math.PI] },
  i2: { dtype: 'int16', shape: [4], values: [-32768, -1, 0, 32767] },
  u1: { dtype: 'uint8', shape: [3], values: [0, 1, 255] },
  i1: { dtype: 'int8', shape: [3], values: [-128, 0, 127] },
  u4: { dtype: 'uint32', shape: [2], values: [0, 4294967295] },
  u8: { dtype: 'uint64', shape: [2], values: [0n, 2n ** 64n - 1n] },
  bool: { dtype: 'bool', shape: [3], values: [1, 0, 1] },
  empty: { dtype: 'float32', shape: [0, 3], values: [] },
  cube: { dtype: 'float64', shape: [2, 3, 4], values: Array.from({ length: 24 }, (_, i) => i) },
};

/** The arrays make_npz.py wrote to written.npz with np.savez. */
const WRITTEN: Record<string, NpzWritableArray> = {
  codes: { dtype: 'int32', shape: [1, 5], data: Int32Array.from([0, 1, 2, 3, 4], (v) => v * 100 - 7) },
  long: { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([-(2n ** 40n), -1n, 0n, 2n ** 40n]) },
  audio: { dtype: 'float32', shape: [3], data: Float32Array.from([0.5, -1, 0.25]) },
  scalar: { dtype: 'float64', shape: [], data: Float64Array.from([-2.5]) },
  pcm: { dtype: 'int16', shape: [2, 1, 2], data: Int16Array.from([-32768, 0, 7, 32767]) },
  nothing: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) },
  deep: { dtype: 'float32', shape: [...Array(15).fill(1), 2], data: Float32Array.from([0.5, -0.5]) },
};

function expectCodesError(fn: () => unknown, ...fragments: string[]): void {
  expect(fn).toThrow(expect.objectContaining({ code: 'ERR_CODES' }));
  for (const f of fragments) expect(fn).toThrow(f);
}

/** CRC-32 (IEEE), bit by bit: an independent check of the table-driven one in lib/npz.ts. */
function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** .npy bytes with a hand-written header, laid out like numpy's. */
function npy(header: string, data: Uint8Array = new Uint8Array(0), version = 1): Buffer {
  const prefix = version === 1 ? 10 : 12;
  const padded = header + ' '.repeat(64 - ((prefix + header.length + 1) % 64)) + '\n';
  const head = Buffer.alloc(prefix);
  Buffer.from('\x93NUMPY', 'latin1').copy(head);
  head[6] = version;
  if (version === 1) head.writeUInt16LE(padded.length, 8);
  else head.writeUInt32LE(padded.length, 8);
  return Buffer.concat([head, Buffer.from(padded, 'latin1'), data]);
}

describe('readNpz on files numpy wrote', () => {
  for (const file of ['mixed.npz', 'mixed_compressed.npz']) {
    it(`reads every dtype, both byte orders and odd shapes from ${file}`, () => {
      const arrays = readNpz(join(FIXTURES, file));
      expect(Object.keys(arrays).sort()).toEqual(Object.keys(MIXED).sort());
      for (const [key, want] of Object.entries(MIXED)) {
        const got = arrays[key];
        expect({ key, dtype: got.dtype, shape: got.shape }).toEqual({ key, dtype: want.dtype, shape: want.shape });
        expect(Array.from(got.data as ArrayLike<number | bigint>)).toEqual(want.values);
      }
      expect(arrays.big_i8.data).toBeInstanceOf(BigInt64Array);
      expect(arrays.f4.data).toBeInstanceOf(Float32Array);
    });
  }

  it('reads a zip64 archive (zip64 extra fields and end records)', () => {
    const arrays = readNpz(join(FIXTURES, 'zip64.npz'));
    expect(Array.from(arrays.a.data as Int32Array)).toEqual([0, 1, 2]);
    expect(Array.from(arrays.b.data as Float64Array)).toEqual([0.5, 1.5]);
  });

  it('reads .npy format versions 2.0 and 3.0', () => {
    for (const file of ['v2.npy', 'v3.npy']) {
      const a = parseNpy(fixture(file), file);
      expect(a).toEqual({ dtype: 'int32', shape: [3, 2], data: Int32Array.from([0, 1, 2, 3, 4, 5]) });
    }
  });

  it('refuses Fortran-ordered arrays with a clear message', () => {
    expectCodesError(() => readNpz(join(FIXTURES, 'fortran.npz')), 'fortran.npz:f.npy', 'Fortran order');
  });

  it('accepts fortran_order True when it does not change the layout (1-D)', () => {
    const a = parseNpy(npy("{'descr': '<i2', 'fortran_order': True, 'shape': (3,), }", Buffer.from([1, 0, 2, 0, 3, 0])), 'x.npy');
    expect(Array.from(a.data as Int16Array)).toEqual([1, 2, 3]);
  });
});

describe('writeNpz', () => {
  it("writes .npy members byte-identical to numpy's np.savez", () => {
    const numpyZip = fixture('written.npz'); // STORED: each member's bytes appear verbatim
    for (const [key, array] of Object.entries(WRITTEN)) {
      const member = encodeNpy(array);
      expect((10 + member.readUInt16LE(8)) % 64).toBe(0);
      expect(numpyZip.indexOf(member), key).toBeGreaterThan(0);
    }
  });

  it('round-trips every writable dtype through a file', () => {
    const path = join(tmp, 'roundtrip.npz');
    writeNpz(path, WRITTEN);
    const back = readNpz(path);
    expect(Object.keys(back)).toEqual(Object.keys(WRITTEN));
    for (const [key, array] of Object.entries(WRITTEN)) expect(back[key]).toEqual(array);
  });

  it('writes a zip that other readers accept: local headers, CRCs, central directory', () => {
    const zip = encodeNpz({ codes: WRITTEN.codes, 'naïve': WRITTEN.audio });
    expect(zip.readUInt32LE(0)).toBe(0x04034b50);
    expect(zip.readUInt32LE(zip.length - 22)).toBe(0x06054b50);
    expect(zip.readUInt16LE(zip.length - 12)).toBe(2);
    expect(Object.keys(parseNpz(zip, 'mem.npz'))).toEqual(['codes', 'naïve']);
    expect(zip.readUInt32LE(14)).toBe(crc32(encodeNpy(WRITTEN.codes)));
    expect(zip.readUInt16LE(zip.indexOf('na\u00efve', 0, 'utf8') - 24)).toBe(0x0800); // UTF-8 name flag
  });

  it('writes views of larger buffers correctly', () => {
    const big = Float32Array.from([9, 1, 2, 3, 9]);
    const view = big.subarray(1, 4);
    const back = parseNpz(encodeNpz({ v: { dtype: 'float32', shape: [3], data: view } }), 'v.npz');
    expect(Array.from(back.v.data as Float32Array)).toEqual([1, 2, 3]);
  });

  it('rejects bad arrays with ERR_INVALID_ARGUMENT', () => {
    const bad = (arrays: Record<string, unknown>) =>
      expect(() => encodeNpz(arrays as Record<string, NpzWritableArray>)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    bad({});
    bad({ a: { dtype: 'int32', shape: [3], data: new Int32Array(2) } });
    bad({ a: { dtype: 'int32', shape: [2], data: new Float32Array(2) } });
    bad({ a: { dtype: 'int64', shape: [2], data: new Int32Array(2) } });
    bad({ a: { dtype: 'uint16', shape: [2], data: new Uint16Array(2) } });
    bad({ a: { dtype: 'int32', shape: [-1], data: new Int32Array(0) } });
    bad({ a: { dtype: 'int32', shape: [1.5], data: new Int32Array(1) } });
    bad({ '': { dtype: 'int32', shape: [0], data: new Int32Array(0) } });
  });
});

describe('malformed files give clear errors', () => {
  const good = encodeNpz({ codes: WRITTEN.codes });

  it('not a zip, truncated zip, corrupt data, unknown compression', () => {
    expectCodesError(() => parseNpz(Buffer.from('definitely not a zip file, just text'), 'text.npz'), 'text.npz', 'not a zip archive');
    expectCodesError(() => parseNpz(good.subarray(0, good.length - 30), 'cut.npz'), 'cut.npz');
    const corrupt = Buffer.from(good);
    corrupt[30 + 'codes.npy'.length + 130] ^= 0xff; // a data byte of the member
    expectCodesError(() => parseNpz(corrupt, 'crc.npz'), 'crc.npz', 'codes.npy', 'CRC');
    const bzip = Buffer.from(good);
    const cd = bzip.readUInt32LE(bzip.length - 6);
    bzip.writeUInt16LE(12, cd + 10);
    expectCodesError(() => parseNpz(bzip, 'bz.npz'), 'bz.npz', 'codes.npy', 'method 12');
  });

  it('a corrupt deflate stream', () => {
    const zip = Buffer.from(fixture('mixed_compressed.npz'));
    const dataStart = 30 + zip.readUInt16LE(26) + zip.readUInt16LE(28);
    zip.fill(0xff, dataStart, dataStart + 8);
    expectCodesError(() => parseNpz(zip, 'z.npz'), 'z.npz:');
  });

  it('.npy: bad magic, unknown version, truncated header or data, bad header fields', () => {
    const ok = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
    const cases: [Buffer, string][] = [
      [Buffer.from('NUMPY?'), 'magic'],
      [Object.assign(npy(ok, Buffer.alloc(8)), { 6: 9 }), 'version 9.0'],
      [npy(ok, Buffer.alloc(8)).subarray(0, 40), 'ends inside its header'],
      [npy(ok, Buffer.alloc(5)), 'truncated'],
      [npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(8)), "'<c8' is not supported"],
      [npy("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(2)), "'<f2' is not supported"],
      [npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(8)), "'|O' is not supported"],
      [npy("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", Buffer.alloc(4)), 'structured'],
      [npy("{'descr': '<i4', 'shape': (1,), }", Buffer.alloc(4)), 'malformed'],
      [npy("{'descr': '<i4', 'fortran_order': False, 'shape': (x,), }", Buffer.alloc(4)), 'shape'],
      [npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2), }", Buffer.alloc(16)), 'Fortran order'],
      [npy(ok, Buffer.alloc(8), 2).subarray(0, 11), 'ends inside its header'],
    ];
    for (const [bytes, fragment] of cases) expectCodesError(() => parseNpy(bytes, 'a.npy'), 'a.npy', fragment);
  });

  it('a member that is not .npy inside an archive', () => {
    const zip = encodeNpz({ codes: WRITTEN.codes });
    const member = encodeNpy(WRITTEN.codes);
    const broken = Buffer.from(zip);
    broken.write('XX', zip.indexOf(member) + 1, 'latin1'); // breaks the magic (and the CRC)
    expectCodesError(() => parseNpz(broken, 'm.npz'), 'm.npz', 'codes.npy');
  });

  it('DEFLATED members written by other tools', () => {
    // A hand-made zip holding one deflated .npy, to check our reader does not depend on numpy's layout.
    const member = encodeNpy(WRITTEN.pcm);
    const packed = deflateRawSync(member);
    const name = Buffer.from('pcm.npy');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc32(member), 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(member.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    local.copy(central, 6, 4, 28);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(46 + name.length, 12);
    end.writeUInt32LE(30 + name.length + packed.length, 16);
    const zip = Buffer.concat([local, name, packed, central, name, end]);
    expect(parseNpz(zip, 'd.npz').pcm).toEqual(WRITTEN.pcm);
  });

  it('unreadable paths give ERR_IO', () => {
    expect(() => readNpz(join(tmp, 'missing.npz'))).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
    expect(() => writeNpz(join(tmp, 'no-dir', 'x.npz'), { codes: WRITTEN.codes })).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
    writeFileSync(join(tmp, 'empty.npz'), '');
    expectCodesError(() => readNpz(join(tmp, 'empty.npz')), 'empty.npz');
  });
});
