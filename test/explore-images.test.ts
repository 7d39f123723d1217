/**
 * The explorer's pictures: PNGs decoded back here (signature, header, every CRC, pixels),
 * spectrogram rows where the mel mapping puts known tones, waveform peaks, and the lyrics
 * alignment's focus and heatmap.
 */
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, encodePng } from '../lib/explore/png.js';
import { fft, fftSizeFor, rowOf, spectrogramPng } from '../lib/explore/spectrogram.js';
import { waveformPeaks } from '../lib/explore/peaks.js';
import { alignmentFocus, alignmentHeatmapPng } from '../lib/explore/alignment-view.js';
import { COLORMAP } from '../lib/explore/colormap.js';

/** A PNG reader for 8-bit RGB images, checking what a browser would. */
function decodePng(buf: Buffer): { width: number; height: number; rgb: Uint8Array } {
  expect([...buf.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  let o = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const types: string[] = [];
  while (o < buf.length) {
    const len = buf.readUInt32BE(o);
    const type = buf.toString('ascii', o + 4, o + 8);
    const data = buf.subarray(o + 8, o + 8 + len);
    expect(buf.readUInt32BE(o + 8 + len), `${type} CRC`).toBe(crc32(buf.subarray(o + 4, o + 8 + len)));
    types.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([...data.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
    }
    if (type === 'IDAT') idat.push(data);
    o += 12 + len;
  }
  expect(types[0]).toBe('IHDR');
  expect(types[types.length - 1]).toBe('IEND');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  expect(raw.length).toBe((stride + 1) * height);
  const rgb = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const left = x >= 3 ? rgb[y * stride + x - 3] : 0;
      const up = y > 0 ? rgb[(y - 1) * stride + x] : 0;
      rgb[y * stride + x] = f === 0 ? v : f === 1 ? (v + left) & 0xff : f === 2 ? (v + up) & 0xff : NaN;
    }
  }
  return { width, height, rgb };
}

/** Index of a pixel's colour in the colour map (its brightness 0..255). */
function level(img: { width: number; rgb: Uint8Array }, x: number, y: number): number {
  const o = (y * img.width + x) * 3;
  let best = 0;
  let bestD = Infinity;
  for (let i = 0; i < 256; i++) {
    const d = Math.abs(COLORMAP[i * 3] - img.rgb[o]) + Math.abs(COLORMAP[i * 3 + 1] - img.rgb[o + 1]) + Math.abs(COLORMAP[i * 3 + 2] - img.rgb[o + 2]);
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return best;
}

const sine = (hz: number, sr: number, n: number, from = 0) => Float32Array.from({ length: n }, (_, i) => (i >= from ? 0.5 * Math.sin((2 * Math.PI * hz * i) / sr) : 0));

describe('PNG', () => {
  it('round-trips pixels through a standard decoder', () => {
    const w = 7;
    const h = 5;
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + 11) & 0xff);
    const img = decodePng(encodePng(w, h, rgb));
    expect([img.width, img.height]).toEqual([w, h]);
    expect(Array.from(img.rgb)).toEqual(Array.from(rgb));
  });

  it('matches the CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('refuses bad sizes', () => {
    expect(() => encodePng(0, 1, new Uint8Array(0))).toThrow(/size/);
    expect(() => encodePng(2, 2, new Uint8Array(11))).toThrow(/12 bytes/);
  });
});

describe('spectrogram', () => {
  const sr = 22050;
  it('puts a tone in the mel row of its frequency, higher tones higher up', () => {
    const height = 200;
    const brightestRow = (hz: number) => {
      const img = decodePng(spectrogramPng(sine(hz, sr, sr), sr, { width: 50, height }).png);
      let best = -1;
      let bestV = -1;
      for (let y = 0; y < height; y++) {
        const v = level(img, 25, y);
        if (v > bestV) {
          bestV = v;
          best = y;
        }
      }
      return best;
    };
    const y1k = brightestRow(1000);
    expect(Math.abs(y1k - (height - 1 - rowOf(1000, sr, height)))).toBeLessThanOrEqual(2);
    const y5k = brightestRow(5000);
    expect(Math.abs(y5k - (height - 1 - rowOf(5000, sr, height)))).toBeLessThanOrEqual(2);
    expect(y5k).toBeLessThan(y1k);
  });

  it('matches a direct DFT', () => {
    for (const n of [1, 2, 8, 64]) {
      const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) + 0.3 * Math.cos(i * i));
      const y = Float64Array.from({ length: n }, (_, i) => Math.cos(i * 0.9));
      const re = Float64Array.from(x);
      const im = Float64Array.from(y);
      fft(re, im);
      for (let k = 0; k < n; k++) {
        let sr_ = 0;
        let si = 0;
        for (let t = 0; t < n; t++) {
          const a = (-2 * Math.PI * k * t) / n;
          sr_ += x[t] * Math.cos(a) - y[t] * Math.sin(a);
          si += x[t] * Math.sin(a) + y[t] * Math.cos(a);
        }
        expect(re[k]).toBeCloseTo(sr_, 9);
        expect(im[k]).toBeCloseTo(si, 9);
      }
    }
    expect(() => fft(new Float64Array(6), new Float64Array(6))).toThrow(/power of two/);
  });

  it('keeps neighbouring columns apart (frames are FFT-ed in pairs)', () => {
    // 11 columns of 2048 samples each, so the 1024-sample frames do not overlap; even
    // columns hold 1 kHz, odd ones 5 kHz, and the odd width leaves the last frame unpaired.
    const width = 11;
    const height = 100;
    const seg = 2048;
    const x = Float32Array.from({ length: width * seg }, (_, i) => {
      const hz = Math.floor(i / seg) % 2 === 0 ? 1000 : 5000;
      return 0.5 * Math.sin((2 * Math.PI * hz * i) / sr);
    });
    const img = decodePng(spectrogramPng(x, sr, { width, height }).png);
    const y1 = height - 1 - rowOf(1000, sr, height);
    const y5 = height - 1 - rowOf(5000, sr, height);
    for (let c = 0; c < width; c++) {
      const [own, other] = c % 2 === 0 ? [y1, y5] : [y5, y1];
      expect(level(img, c, own), `column ${c}`).toBeGreaterThan(220);
      expect(level(img, c, other), `column ${c}`).toBeLessThan(40);
    }
  });

  it('is dark before a tone starts and bright after', () => {
    // An odd width, so the last column is a frame without a partner in the paired FFT.
    const width = 99;
    const height = 64;
    const img = decodePng(spectrogramPng(sine(440, sr, 2 * sr, sr), sr, { width, height }).png);
    const y = height - 1 - rowOf(440, sr, height);
    // Columns whose 46 ms frame ends before the onset are silent in every row...
    for (let x = 0; x < 47; x++) for (let r = 0; r < height; r++) expect(level(img, x, r)).toBe(0);
    // ...and every column whose frame lies after it has the tone near full brightness.
    for (let x = 51; x < width; x++) expect(level(img, x, y)).toBeGreaterThan(200);
  });

  it('draws silence as a uniform dark image', () => {
    const img = decodePng(spectrogramPng(new Float32Array(sr), sr, { width: 40, height: 30 }).png);
    const first = Array.from(img.rgb.subarray(0, 3));
    for (let i = 0; i < img.rgb.length; i += 3) expect(Array.from(img.rgb.subarray(i, i + 3))).toEqual(first);
    expect(level(img, 0, 0)).toBe(0);
  });

  it('sizes itself to the clip: 60 px per second within 400..4000, 200 rows', () => {
    expect(spectrogramPng(new Float32Array(sr * 2), sr)).toMatchObject({ width: 400, height: 200 });
    expect(spectrogramPng(new Float32Array(sr * 10), sr)).toMatchObject({ width: 600, height: 200 });
    expect(fftSizeFor(44100)).toBe(2048);
    expect(fftSizeFor(22050)).toBe(1024);
  });

  it('draws 60 s of audio in well under a second', () => {
    const x = sine(300, sr, 60 * sr);
    const t0 = performance.now();
    const r = spectrogramPng(x, sr);
    expect(r.width).toBe(3600);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});

describe('waveform peaks', () => {
  it('gives each column the extremes of its samples', () => {
    const ramp = Float32Array.from({ length: 1000 }, (_, i) => i / 500 - 1);
    const p = waveformPeaks(ramp, 10);
    expect(p.min).toHaveLength(10);
    expect(p.min[0]).toBe(-1);
    expect(p.max[0]).toBeCloseTo(99 / 500 - 1, 4);
    expect(p.max[9]).toBeCloseTo(999 / 500 - 1, 4);
    for (let c = 1; c < 10; c++) expect(p.min[c]).toBeGreaterThan(p.min[c - 1]);
  });

  it('gives a sine its full swing, rounded to 4 decimals for JSON', () => {
    const x = sine(50, 8000, 8000);
    const p = waveformPeaks(x, 25);
    for (let c = 0; c < 25; c++) {
      expect(p.max[c]).toBeCloseTo(0.5, 3);
      expect(p.min[c]).toBeCloseTo(-0.5, 3);
      for (const v of [p.min[c], p.max[c]]) expect(Math.abs(v * 1e4 - Math.round(v * 1e4))).toBeLessThan(1e-6);
    }
  });

  it('handles fewer samples than columns, clipping and empty input', () => {
    const p = waveformPeaks(Float32Array.from([0.5, -2]), 4);
    expect(p.max).toEqual([0.5, 0.5, -1, -1]);
    expect(waveformPeaks(new Float32Array(0), 3)).toEqual({ min: [0, 0, 0], max: [0, 0, 0] });
    expect(() => waveformPeaks(new Float32Array(1), 0)).toThrow();
  });
});

describe('alignment view', () => {
  const T = 120;
  const L = 30;
  const diagonal = () => {
    const w = new Float32Array(T * L);
    for (let t = 0; t < T; t++) w[t * L + Math.floor((t * L) / T)] = 1;
    return w;
  };

  it('focus follows the diagonal, and is -1 where nothing is attended', () => {
    const w = diagonal();
    w.fill(0, 100 * L, T * L);
    const f = alignmentFocus(w, T, L, 1);
    for (let t = 0; t < 100; t++) expect(f[t]).toBe(Math.floor((t * L) / T));
    for (let t = 100; t < T; t++) expect(f[t]).toBe(-1);
    // Smoothed over 9 tokens the focus stays within a character of the diagonal.
    const g = alignmentFocus(diagonal(), T, L, 9);
    for (let t = 0; t < T; t++) expect(Math.abs(g[t] - Math.floor((t * L) / T))).toBeLessThanOrEqual(1);
  });

  it('smoothing outvotes a single stray token', () => {
    const w = new Float32Array(T * L);
    for (let t = 0; t < T; t++) w[t * L + 3] = 0.6;
    w[50 * L + 20] = 0.9;
    expect(alignmentFocus(w, T, L, 1)[50]).toBe(20);
    expect(alignmentFocus(w, T, L, 5)[50]).toBe(3);
    // Windows past the clip's length (or nonsense) still answer: one overall focus, or none.
    expect(new Set(alignmentFocus(w, T, L, 1e9))).toEqual(new Set([3]));
    expect(alignmentFocus(w, T, L, NaN)[50]).toBe(20);
  });

  it('heatmap: time across, first character at the top', () => {
    const w = new Float32Array(T * L);
    for (let t = 0; t < T; t++) w[t * L] = 1;
    const r = alignmentHeatmapPng(w, T, L);
    expect([r.width, r.height]).toEqual([T, L]);
    const img = decodePng(r.png);
    expect(level(img, 10, 0)).toBe(255);
    expect(level(img, 10, L - 1)).toBe(0);
    const small = alignmentHeatmapPng(diagonal(), T, L, { width: 12, maxHeight: 10 });
    expect([small.width, small.height]).toEqual([12, 10]);
    const simg = decodePng(small.png);
    // The diagonal survives the max-resampling: top left and bottom right are lit.
    expect(level(simg, 0, 0)).toBe(255);
    expect(level(simg, 11, 9)).toBe(255);
    expect(level(simg, 11, 0)).toBe(0);
  });

  it('refuses weights of the wrong size', () => {
    expect(() => alignmentFocus(new Float32Array(5), 2, 3, 1)).toThrow(/2 x 3/);
    expect(() => alignmentHeatmapPng(new Float32Array(6), 3, 3)).toThrow(/3 x 3/);
  });
});
