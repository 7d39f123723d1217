import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isJukeboxError } from '../lib/errors.js';
import { downmix, loadAudio, writeAudio } from '../lib/audio/decode.js';
import { resample } from '../lib/audio/resample.js';
import { encodeWav, parseWav } from '../lib/audio/wav.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/audio', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-audio-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function readF32(name: string): Float32Array {
  const b = readFileSync(join(FIXTURES, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

/** Deterministic pseudo-random samples in [-1, 1). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, from = 0, to = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function expectAudioError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isJukeboxError(caught, 'ERR_AUDIO_FORMAT'), String(caught)).toBe(true);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

// ---- hand-built WAV files ----------------------------------------------------------------

function chunk(id: string, body: Uint8Array | number[], declaredSize?: number): Buffer {
  const b = Buffer.from(body as Uint8Array);
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(declaredSize ?? b.length, 4);
  return Buffer.concat([head, b, b.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function riff(chunks: Buffer[], magic = 'RIFF', form = 'WAVE'): Buffer {
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(12);
  head.write(magic, 0, 'latin1');
  head.writeUInt32LE(magic === 'RIFF' ? body.length + 4 : 0xffffffff, 4);
  head.write(form, 8, 'latin1');
  return Buffer.concat([head, body]);
}

interface FmtSpec {
  tag: number;
  channels: number;
  rate?: number;
  bits: number;
  blockAlign?: number;
  extensible?: { validBits: number; subTag: number; guidTail?: number[] };
}

const GUID_TAIL = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

function fmt(spec: FmtSpec): Buffer {
  const rate = spec.rate ?? 44100;
  const blockAlign = spec.blockAlign ?? spec.channels * Math.ceil(spec.bits / 8);
  const b = Buffer.alloc(spec.extensible ? 40 : 16);
  b.writeUInt16LE(spec.tag, 0);
  b.writeUInt16LE(spec.channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * blockAlign) % 2 ** 32, 8); // byte rate: ignored by readers
  b.writeUInt16LE(blockAlign, 12);
  b.writeUInt16LE(spec.bits, 14);
  if (spec.extensible) {
    b.writeUInt16LE(22, 16);
    b.writeUInt16LE(spec.extensible.validBits, 18);
    b.writeUInt32LE(0, 20);
    b.writeUInt16LE(spec.extensible.subTag, 24);
    Buffer.from(spec.extensible.guidTail ?? GUID_TAIL).copy(b, 26);
  }
  return chunk('fmt ', b);
}

function wav(spec: FmtSpec, data: Uint8Array | number[]): Buffer {
  return riff([fmt(spec), chunk('data', data)]);
}

function int16Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeInt16LE(v, 2 * i));
  return b;
}

// ---- WAV ---------------------------------------------------------------------------------

describe('parseWav: sample formats', () => {
  it('8-bit unsigned PCM is (v - 128) / 128', () => {
    const w = parseWav(wav({ tag: 1, channels: 1, bits: 8 }, [0, 128, 255, 64, 192]));
    expect(Array.from(w.channels[0])).toEqual([-1, 0, 127 / 128, -0.5, 0.5]);
    expect(w).toMatchObject({ format: 'pcm', bitsPerSample: 8, sampleRate: 44100 });
  });

  it('16-bit PCM is v / 32768', () => {
    const w = parseWav(wav({ tag: 1, channels: 1, bits: 16 }, int16Bytes([-32768, -1, 0, 1, 32767, 16384])));
    expect(Array.from(w.channels[0])).toEqual([-1, -1 / 32768, 0, 1 / 32768, 32767 / 32768, 0.5]);
  });

  it('24-bit PCM is v / 2^23, sign-extended from the top byte', () => {
    const bytes = [0x00, 0x00, 0x80, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x56, 0x34, 0x12];
    const w = parseWav(wav({ tag: 1, channels: 1, bits: 24 }, bytes));
    const expected = [-8388608, 8388607, -1, 1, 0x123456].map((v) => Math.fround(v / 8388608));
    expect(Array.from(w.channels[0])).toEqual(expected);
    expect(w.bitsPerSample).toBe(24);
  });

  it('32-bit PCM is v / 2^31 rounded to float32', () => {
    const b = Buffer.alloc(16);
    [-2147483648, 2147483647, -1, 1 << 30].forEach((v, i) => b.writeInt32LE(v, 4 * i));
    const w = parseWav(wav({ tag: 1, channels: 1, bits: 32 }, b));
    expect(Array.from(w.channels[0])).toEqual([-1, 1, Math.fround(-1 / 2 ** 31), 0.5]);
  });

  it('IEEE float 32 and 64 pass through (64-bit rounded to float32), unclamped', () => {
    const f32 = Buffer.alloc(12);
    [1.5, -3, 0.1].forEach((v, i) => f32.writeFloatLE(v, 4 * i));
    expect(Array.from(parseWav(wav({ tag: 3, channels: 1, bits: 32 }, f32)).channels[0])).toEqual([1.5, -3, Math.fround(0.1)]);
    const f64 = Buffer.alloc(16);
    [0.1, -2.5].forEach((v, i) => f64.writeDoubleLE(v, 8 * i));
    const w = parseWav(wav({ tag: 3, channels: 1, bits: 64 }, f64));
    expect(Array.from(w.channels[0])).toEqual([Math.fround(0.1), -2.5]);
    expect(w).toMatchObject({ format: 'float', bitsPerSample: 64 });
  });

  it('de-interleaves channels', () => {
    const w = parseWav(wav({ tag: 1, channels: 3, bits: 16 }, int16Bytes([1, 2, 3, 4, 5, 6])));
    expect(w.channels.map((c) => Array.from(c, (v) => v * 32768))).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
  });

  it('WAVE_FORMAT_EXTENSIBLE with PCM and float sub-formats', () => {
    const pcm = parseWav(wav({ tag: 0xfffe, channels: 2, bits: 24, extensible: { validBits: 24, subTag: 1 } }, [0, 0, 0x80, 0, 0, 0x40]));
    expect(pcm.channels.map((c) => c[0])).toEqual([-1, 0.5]);
    expect(pcm.format).toBe('pcm');
    const f = Buffer.alloc(4);
    f.writeFloatLE(-0.75, 0);
    const flt = parseWav(wav({ tag: 0xfffe, channels: 1, bits: 32, extensible: { validBits: 32, subTag: 3 } }, f));
    expect(flt).toMatchObject({ format: 'float', bitsPerSample: 32 });
    expect(flt.channels[0][0]).toBe(-0.75);
    // 20 valid bits in a 24-bit container are left-justified and scaled as 24-bit, as libsndfile does.
    const p20 = parseWav(wav({ tag: 0xfffe, channels: 1, bits: 24, extensible: { validBits: 20, subTag: 1 } }, [0x00, 0x00, 0xc0]));
    expect(p20.channels[0][0]).toBe(-0.5);
  });

  it('skips unknown chunks, including odd-sized ones with their pad byte', () => {
    const f = fmt({ tag: 1, channels: 1, bits: 8 });
    const buf = riff([chunk('junk', [1, 2, 3]), f, chunk('LIST', [9]), chunk('data', [0, 255, 128]), chunk('id3 ', [7, 7, 7])]);
    expect(buf.length % 2).toBe(0);
    expect(Array.from(parseWav(buf).channels[0])).toEqual([-1, 127 / 128, 0]);
    // data before fmt is allowed too
    expect(parseWav(riff([chunk('data', [128]), f])).channels[0][0]).toBe(0);
  });

  it('cuts a data chunk that runs past the end of the file to the whole frames present', () => {
    const spec = fmt({ tag: 1, channels: 2, bits: 16 });
    const buf = riff([spec, chunk('data', int16Bytes([1, 2, 3, 4, 5]), 1000)]);
    const w = parseWav(buf);
    expect(w.channels[0].length).toBe(2);
    expect(Array.from(w.channels[1], (v) => v * 32768)).toEqual([2, 4]);
  });

  it('reads RF64 with the data size in ds64', () => {
    const ds64 = Buffer.alloc(28);
    ds64.writeBigUInt64LE(0n, 0);
    ds64.writeBigUInt64LE(4n, 8); // data size
    ds64.writeBigUInt64LE(2n, 16); // sample count
    const buf = riff([chunk('ds64', ds64), fmt({ tag: 1, channels: 1, bits: 16 }), chunk('data', int16Bytes([16384, -16384]), 0xffffffff)], 'RF64');
    expect(Array.from(parseWav(buf).channels[0])).toEqual([0.5, -0.5]);
  });
});

describe('parseWav: errors name the file and the problem', () => {
  const name = 'bad.wav';
  const okFmt = { tag: 1, channels: 1, bits: 16 };
  const cases: [string, Buffer, string[]][] = [
    ['not RIFF', Buffer.from('hello, this is not audio at all'), ['RIFF/WAVE']],
    ['too short', Buffer.from('RIFF'), ['4 bytes']],
    ['RIFF but not WAVE', riff([chunk('data', [0, 0])], 'RIFF', 'AVI '), ['RIFF/WAVE']],
    ['big-endian RIFX', riff([chunk('data', [0, 0])], 'RIFX'), ['RIFX']],
    ['no fmt chunk', riff([chunk('data', [0, 0])]), ['no fmt chunk']],
    ['no data chunk', riff([fmt(okFmt), chunk('LIST', [1, 2])]), ['no data chunk']],
    ['A-law', wav({ tag: 6, channels: 1, bits: 8 }, [1, 2]), ['A-law', '0x0006']],
    ['MS ADPCM', wav({ tag: 2, channels: 1, bits: 4, blockAlign: 256 }, [1, 2]), ['ADPCM', '0x0002']],
    ['unknown codec', wav({ tag: 0x1234, channels: 1, bits: 16 }, [1, 2]), ['0x1234']],
    ['extensible A-law', wav({ tag: 0xfffe, channels: 1, bits: 8, extensible: { validBits: 8, subTag: 6 } }, [1]), ['A-law']],
    ['extensible odd GUID', wav({ tag: 0xfffe, channels: 1, bits: 16, extensible: { validBits: 16, subTag: 1, guidTail: Array(14).fill(7) } }, [1, 2]), ['GUID']],
    ['zero channels', wav({ tag: 1, channels: 0, bits: 16, blockAlign: 2 }, [1, 2]), ['0 channels']],
    ['zero sample rate', wav({ tag: 1, channels: 1, bits: 16, rate: 0 }, [1, 2]), ['0 Hz']],
    ['absurd sample rate', wav({ tag: 1, channels: 1, bits: 16, rate: 0xffffffff }, [1, 2]), ['4294967295 Hz']],
    ['block size disagrees with channels', wav({ tag: 1, channels: 2, bits: 16, blockAlign: 3 }, [1, 2, 3]), ['block size of 3']],
    ['16-bit float', wav({ tag: 3, channels: 1, bits: 16 }, [1, 2]), ['16-bit float']],
    ['fmt chunk too short', riff([chunk('fmt ', Buffer.alloc(14)), chunk('data', [0, 0])]), ['14 bytes']],
    ['truncated fmt chunk', riff([chunk('fmt ', Buffer.alloc(8), 16)]), ['truncated']],
    ['empty data chunk', riff([fmt(okFmt), chunk('data', [])]), ['empty']],
    ['no complete frame', riff([fmt({ tag: 1, channels: 2, bits: 16 }), chunk('data', [1, 2], 400)]), ['holds 2 bytes, less than one 4-byte sample frame']],
  ];
  for (const [label, buf, fragments] of cases) {
    it(label, () => expectAudioError(() => parseWav(buf, name), name, ...fragments));
  }
});

describe('encodeWav', () => {
  const FRAMES = 1000;
  for (const channels of [1, 2, 3, 6]) {
    it(`f32 round-trips ${channels} channel(s) exactly, with a fact chunk and an 18-byte fmt`, () => {
      const chans = Array.from({ length: channels }, (_, c) => noise(FRAMES, c + 1).map((v) => v * 2)); // beyond [-1, 1] too
      const buf = encodeWav(chans, 48000, 'f32');
      expect(buf.length).toBe(12 + 8 + 18 + 12 + 8 + FRAMES * channels * 4);
      expect(buf.toString('latin1', 36, 42)).toBe('\0\0fact');
      expect(buf.readUInt32LE(16)).toBe(18);
      expect(buf.readUInt16LE(20)).toBe(3);
      expect(buf.readUInt32LE(46)).toBe(FRAMES);
      const w = parseWav(buf);
      expect(w).toMatchObject({ sampleRate: 48000, format: 'float', bitsPerSample: 32 });
      expect(w.channels).toEqual(chans);
    });

    it(`s16 round-trips ${channels} channel(s) of k/32767 to k/32768`, () => {
      const ints = Array.from({ length: channels }, (_, c) => Int16Array.from(noise(FRAMES, 10 + c), (v) => Math.round(v * 32767)));
      const chans = ints.map((c) => Float32Array.from(c, (k) => k / 32767));
      const buf = encodeWav(channels === 1 ? chans[0] : chans, 22050, 's16');
      expect(buf.length).toBe(44 + FRAMES * channels * 2);
      const w = parseWav(buf);
      expect(w).toMatchObject({ sampleRate: 22050, format: 'pcm', bitsPerSample: 16 });
      expect(w.channels).toEqual(ints.map((c) => Float32Array.from(c, (k) => k / 32768)));
    });
  }

  it('s16 clamps to [-1, 1], scales by 32767, rounds half to even, and maps NaN to 0', () => {
    // Find a float32 x whose product with 32767 is a tie between an even and an odd integer.
    const tie = Math.fround(1000.5 / 32767);
    expect(Math.fround(tie * 32767)).toBe(1000.5);
    const input = Float32Array.from([1.5, -1.5, 1, -1, 0.5, -0.5, tie, -tie, NaN, Infinity, -Infinity, 0]);
    const buf = encodeWav(input, 8000, 's16');
    const raw = Array.from({ length: input.length }, (_, i) => buf.readInt16LE(44 + 2 * i));
    expect(raw).toEqual([32767, -32767, 32767, -32767, 16384, -16384, 1000, -1000, 0, 32767, -32767, 0]);
  });

  it('f32 never clamps', () => {
    const input = Float32Array.from([1.5, -2, 3.25, 1e6]);
    expect(parseWav(encodeWav(input, 44100, 'f32')).channels[0]).toEqual(input);
  });

  it('rejects bad arguments', () => {
    const bad = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    bad(() => encodeWav([], 44100, 's16'));
    bad(() => encodeWav([new Float32Array(2), new Float32Array(3)], 44100, 's16'));
    bad(() => encodeWav(new Float32Array(2), 0, 's16'));
    bad(() => encodeWav(new Float32Array(2), 44100.5, 'f32'));
    bad(() => encodeWav(new Float32Array(2), 44100, 'u8' as 's16'));
  });

  it('encodes and parses 5 minutes of stereo 44.1 kHz quickly', () => {
    const frames = 44100 * 300;
    const chans = [noise(frames, 1), noise(frames, 2)];
    for (const format of ['s16', 'f32'] as const) {
      let t = performance.now();
      const buf = encodeWav(chans, 44100, format);
      const encodeMs = performance.now() - t;
      t = performance.now();
      const w = parseWav(buf);
      const parseMs = performance.now() - t;
      console.log(`5 min stereo ${format}: encode ${encodeMs.toFixed(0)} ms, parse ${parseMs.toFixed(0)} ms`);
      expect(w.channels[1].length).toBe(frames);
      expect(encodeMs + parseMs).toBeLessThan(3000); // ~0.3 s on a 2-core CI machine; generous for noisy runners
    }
  });
});

// ---- resampling ------------------------------------------------------------------------

describe('resample', () => {
  it('reproduces resampy 0.2.2 kaiser_best (48 kHz -> 44.1 kHz), zero-padded to librosa length', () => {
    const y = resample(readF32('chirp48k.f32.bin'), 48000, 44100);
    const ref = readF32('chirp48k_to_44k.f32.bin');
    expect(y.length).toBe(22051); // ceil(24001 * 0.91875); resampy computes floor = 22050
    expect(y[22050]).toBe(0);
    expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual(1e-7); // measured: 0 (bit-identical)
    // librosa runs resampy on float32, accumulating in float32: a little further off.
    expect(maxAbsDiff(y, readF32('chirp48k_to_44k_librosa.f32.bin'))).toBeLessThan(2e-6); // measured 6e-7
  });

  it('reproduces resampy 0.2.2 kaiser_best (22.05 kHz -> 44.1 kHz)', () => {
    const y = resample(readF32('chirp22k.f32.bin'), 22050, 44100);
    const ref = readF32('chirp22k_to_44k.f32.bin');
    expect(y.length).toBe(22050);
    expect(maxAbsDiff(y, ref)).toBeLessThanOrEqual(1e-7); // measured: 0
  });

  /** Amplitude (by least squares) and the residual of fitting a sine of frequency f to y. */
  function fitSine(y: Float32Array, sr: number, f: number, from: number, to: number): { amp: number; residual: number } {
    let ss = 0, cc = 0, sc = 0, ys = 0, yc = 0;
    for (let i = from; i < to; i++) {
      const s = Math.sin((2 * Math.PI * f * i) / sr);
      const c = Math.cos((2 * Math.PI * f * i) / sr);
      ss += s * s; cc += c * c; sc += s * c; ys += y[i] * s; yc += y[i] * c;
    }
    const det = ss * cc - sc * sc;
    const a = (ys * cc - yc * sc) / det;
    const b = (yc * ss - ys * sc) / det;
    let r = 0;
    for (let i = from; i < to; i++) {
      r = Math.max(r, Math.abs(y[i] - a * Math.sin((2 * Math.PI * f * i) / sr) - b * Math.cos((2 * Math.PI * f * i) / sr)));
    }
    return { amp: Math.hypot(a, b), residual: r };
  }

  function sine(sr: number, f: number, n: number, amp = 0.5): Float32Array {
    return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * f * i) / sr));
  }

  // Upsampling is essentially exact. Downsampling inherits a resampy quirk that we reproduce on
  // purpose: the table stride is truncated (int(0.91875 * 512) = 470, not 470.4), which puts a
  // small gain error (+0.001 dB at 48 -> 44.1 kHz, +0.02 dB at 44.1 -> 16 kHz), a ~1e-4
  // modulation residue and a ~-61 dB alias floor into resampy 0.2.2's output (measured
  // against resampy itself).
  const passband: [srIn: number, srOut: number, maxDb: number, maxResidual: number][] = [
    [22050, 44100, 1e-5, 1e-6],
    [32000, 44100, 1e-4, 1e-6],
    [48000, 44100, 3e-3, 4e-4],
    [96000, 44100, 6e-3, 2e-4],
  ];
  for (const [srIn, srOut, maxDb, maxResidual] of passband) {
    it(`keeps a passband sine's frequency and amplitude (${srIn} -> ${srOut})`, () => {
      for (const f of [100, 1000, 5000, 9000]) {
        const y = resample(sine(srIn, f, srIn), srIn, srOut);
        const { amp, residual } = fitSine(y, srOut, f, 2000, y.length - 2000);
        expect(Math.abs(20 * Math.log10(amp / 0.5))).toBeLessThan(maxDb);
        expect(residual).toBeLessThan(maxResidual);
      }
    });
  }

  it('attenuates content above the new Nyquist frequency (resampy 0.2.2: 60.6 to 61.1 dB)', () => {
    for (const f of [22500, 23000, 23900]) {
      const y = resample(sine(48000, f, 48000), 48000, 44100);
      let peak = 0;
      for (let i = 2000; i < y.length - 2000; i++) peak = Math.max(peak, Math.abs(y[i]));
      const db = 20 * Math.log10(peak / 0.5);
      expect(db).toBeLessThan(-60);
      expect(db).toBeGreaterThan(-62); // and no better: the alias floor is resampy's, reproduced
    }
  });

  it("preserves DC (to 1e-7 upsampling; downsampling has resampy's small gain error)", () => {
    const cases: [number, number, number][] = [[22050, 44100, 1e-7], [8000, 44100, 1e-7], [48000, 44100, 1e-4], [44100, 16000, 1e-3]];
    for (const [srIn, srOut, tol] of cases) {
      const y = resample(new Float32Array(srIn).fill(0.25), srIn, srOut);
      expect(maxAbsDiff(y, new Float32Array(y.length).fill(0.25), 500, y.length - 500)).toBeLessThan(tol);
    }
  });

  it('returns ceil(n * srOut / srIn) samples', () => {
    expect(resample(new Float32Array(1000), 48000, 44100).length).toBe(919);
    expect(resample(new Float32Array(48000), 48000, 44100).length).toBe(44100);
    expect(resample(new Float32Array(11025), 22050, 44100).length).toBe(22050);
    expect(resample(new Float32Array(7), 44100, 16000).length).toBe(3);
    expect(resample(new Float32Array(0), 48000, 44100).length).toBe(0);
  });

  it('copies when the rates are equal', () => {
    const x = noise(100, 3);
    const y = resample(x, 44100, 44100);
    expect(y).toEqual(x);
    expect(y).not.toBe(x);
  });

  it('rejects bad rates and inputs too short to resample', () => {
    for (const [a, b] of [[0, 44100], [44100, -1], [NaN, 44100], [44100, Infinity]]) {
      expect(() => resample(new Float32Array(10), a, b)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    expect(() => resample(new Float32Array(1), 48000, 44100)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(() => resample(new Float32Array(100000), 1_000_000, 1000)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('resamples 3 minutes at 48 kHz to 44.1 kHz in a few seconds', () => {
    const x = noise(48000 * 180, 5);
    const t = performance.now();
    const y = resample(x, 48000, 44100);
    const ms = performance.now() - t;
    console.log(`resample 3 min 48k -> 44.1k: ${ms.toFixed(0)} ms`);
    expect(y.length).toBe(44100 * 180);
    expect(ms).toBeLessThan(15000); // ~2 s on a 2-core CI machine
  });
});

// ---- loading and writing -----------------------------------------------------------------

describe('loadAudio', () => {
  function writeTmp(name: string, bytes: Uint8Array): string {
    const p = join(tmp, name);
    writeFileSync(p, bytes);
    return p;
  }

  it('downmixes stereo to exactly 0.5*L + 0.5*R and reports the source', async () => {
    const L = noise(4410, 7);
    const R = noise(4410, 8);
    const p = writeTmp('stereo.wav', encodeWav([L, R], 44100, 'f32'));
    const a = await loadAudio(p, { sampleRate: 44100, mono: true });
    expect(a).toMatchObject({ sampleRate: 44100, sourceSampleRate: 44100, sourceChannels: 2, durationSeconds: 0.1 });
    expect(a.samples).toEqual(Float32Array.from(L, (l, i) => 0.5 * l + 0.5 * R[i]));
  });

  it('averages more channels in float32, channel by channel, like np.mean', () => {
    const chans = [noise(500, 1), noise(500, 2), noise(500, 3)];
    const expected = Float32Array.from({ length: 500 }, (_, i) => {
      const sum = Math.fround(Math.fround(chans[0][i] + chans[1][i]) + chans[2][i]);
      return sum / 3;
    });
    expect(downmix(chans)).toEqual(expected);
  });

  it('resamples to the requested rate with resample()', async () => {
    const x = noise(4800, 9);
    const p = writeTmp('mono48k.wav', encodeWav(x, 48000, 'f32'));
    const a = await loadAudio(p, { sampleRate: 44100 });
    expect(a).toMatchObject({ sourceSampleRate: 48000, sourceChannels: 1, sampleRate: 44100 });
    expect(a.samples).toEqual(resample(x, 48000, 44100));
    expect(a.durationSeconds).toBeCloseTo(4410 / 44100, 12);
  });

  it('names the file in errors: missing, empty, unknown, unsupported', async () => {
    await expect(loadAudio(join(tmp, 'nope.wav'), { sampleRate: 44100 })).rejects.toMatchObject({ code: 'ERR_IO', message: expect.stringContaining('nope.wav') });
    const cases: [string, Uint8Array, string][] = [
      ['empty.wav', new Uint8Array(0), 'an empty file'],
      ['text.wav', Buffer.from('just some text, not audio'), 'starts with bytes 6a 75 73 74'],
      ['movie.m4a', Buffer.from('\0\0\0\x20ftypM4A \0\0\0\0'), 'MP4/M4A'],
      ['speex.ogg', Buffer.concat([Buffer.from('OggS\0\x02'), Buffer.alloc(20), Buffer.from([1, 8]), Buffer.from('Speex   ')]), 'neither Vorbis nor Opus'],
      ['empty-data.wav', riff([fmt({ tag: 1, channels: 1, bits: 16 }), chunk('data', [])]), 'empty'],
      ['one-sample.wav', wav({ tag: 1, channels: 1, bits: 16, rate: 48000 }, [0, 0]), 'too few to resample'],
    ];
    for (const [name, bytes, fragment] of cases) {
      const p = writeTmp(name, bytes);
      await expect(loadAudio(p, { sampleRate: 44100 })).rejects.toMatchObject({
        code: 'ERR_AUDIO_FORMAT',
        message: expect.stringMatching(new RegExp(`${name}.*${fragment.replace(/[/]/g, '\\/')}`)),
      });
    }
  });

  it('rejects a bad sample rate', async () => {
    await expect(loadAudio(join(FIXTURES, 'tone.wav'), { sampleRate: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('loadAudio: compressed formats through the optional decoders', async () => {
  const installed = async (pkg: string): Promise<boolean> => import(pkg).then(() => true, () => false);
  const wavTone = (await loadAudio(join(FIXTURES, 'tone.wav'), { sampleRate: 22050 })).samples;

  /** Signal-to-noise ratio of `y` against the WAV source, away from the edges. */
  function snrDb(y: Float32Array): number {
    let s = 0, e = 0;
    for (let i = 1000; i < wavTone.length - 1000; i++) {
      s += wavTone[i] ** 2;
      e += (y[i] - wavTone[i]) ** 2;
    }
    return 10 * Math.log10(s / e);
  }

  const formats: [file: string, pkg: string, label: string, sourceRate: number, minSnrDb: number][] = [
    ['tone.flac', '@wasm-audio-decoders/flac', 'FLAC', 22050, Infinity],
    ['tone.ogg', '@wasm-audio-decoders/ogg-vorbis', 'Ogg Vorbis', 22050, 30], // measured 38 dB
    ['tone.opus', 'ogg-opus-decoder', 'Ogg Opus', 48000, 30], // measured 40 dB
    ['tone.mp3', 'mpg123-decoder', 'MP3', 22050, 20], // measured 26 dB
  ];
  for (const [file, pkg, label, sourceRate, minSnrDb] of formats) {
    const has = await installed(pkg);
    it.skipIf(!has)(`decodes ${file} with ${pkg} (skipped when that optional package is absent)`, async () => {
      const a = await loadAudio(join(FIXTURES, file), { sampleRate: 22050 });
      expect(a).toMatchObject({ sourceSampleRate: sourceRate, sourceChannels: 2, sampleRate: 22050 });
      expect(a.samples.length).toBe(wavTone.length);
      if (minSnrDb === Infinity) expect(a.samples).toEqual(wavTone); // lossless: exactly the WAV's samples
      else expect(snrDb(a.samples)).toBeGreaterThan(minSnrDb);
    });
    it.skipIf(has)(`explains that ${file} needs ${pkg} (skipped when that package is installed)`, async () => {
      await expect(loadAudio(join(FIXTURES, file), { sampleRate: 22050 })).rejects.toMatchObject({
        code: 'ERR_AUDIO_FORMAT',
        message: `${join(FIXTURES, file)} is ${label}; decoding it needs the optional package ${pkg} (npm install ${pkg}), or convert it to WAV first`,
      });
    });
  }
});

describe('writeAudio', () => {
  it('writes a WAV file that parses back', async () => {
    const x = Float32Array.from([0.5, -0.25, 2]);
    const p = join(tmp, 'out.wav');
    await writeAudio(p, x, 44100, 'f32');
    expect(parseWav(readFileSync(p)).channels[0]).toEqual(x);
    await writeAudio(p, x, 44100, 's16');
    expect(Array.from(parseWav(readFileSync(p)).channels[0], (v) => v * 32768)).toEqual([16384, -8192, 32767]);
  });

  it('refuses other extensions and reports unwritable paths', async () => {
    await expect(writeAudio(join(tmp, 'out.mp3'), new Float32Array(1), 44100, 's16')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(writeAudio(join(tmp, 'no-such-dir', 'out.wav'), new Float32Array(1), 44100, 's16')).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});
