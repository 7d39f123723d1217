/**
 * Spectrogram images for the explorer: one Hann-windowed FFT frame per pixel column (so any
 * clip length fills the same width), rows on the mel scale from 30 Hz to Nyquist with low
 * frequencies at the bottom (so the musically busy low octaves are not squashed into a few
 * rows), decibels relative to the clip's loudest cell over an 80 dB range, coloured with the
 * explorer's colour map.
 */
import { paint } from './colormap.js';
import { encodePng } from './png.js';

const MIN_HZ = 30;
const RANGE_DB = 80;

export const melOf = (hz: number) => 2595 * Math.log10(1 + hz / 700);
export const hzOf = (mel: number) => 700 * (10 ** (mel / 2595) - 1);

/** FFT size: the power of two nearest 46 ms (2048 at 44.1 kHz, 1024 at 22.05 kHz). */
export function fftSizeFor(sampleRate: number): number {
  return 2 ** Math.max(6, Math.round(Math.log2(0.046 * sampleRate)));
}

/** The mel row (0 = bottom) a frequency falls in. */
export function rowOf(hz: number, sampleRate: number, height: number): number {
  const lo = melOf(MIN_HZ);
  const hi = melOf(sampleRate / 2);
  return Math.min(height - 1, Math.max(0, Math.floor(((melOf(hz) - lo) / (hi - lo)) * height)));
}

/** In-place iterative radix-2 FFT of (re, im); n a power of two. */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b] * cr - im[b] * ci;
        const xi = re[b] * ci + im[b] * cr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
        const t = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = t;
      }
    }
  }
}

export function spectrogramPng(samples: Float32Array, sampleRate: number, opts: { width?: number; height?: number } = {}): { png: Buffer; width: number; height: number } {
  if (!(sampleRate > 0)) throw new Error(`sample rate must be positive, got ${sampleRate}`);
  const seconds = samples.length / sampleRate;
  const width = opts.width ?? Math.min(4000, Math.max(400, Math.round(seconds * 60)));
  const height = opts.height ?? 200;
  const nfft = fftSizeFor(sampleRate);
  const bins = nfft / 2 + 1;
  const hann = new Float64Array(nfft);
  for (let i = 0; i < nfft; i++) hann[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nfft);

  // The FFT bins each row covers; a row narrower than one bin takes its nearest bin.
  const binHz = sampleRate / nfft;
  const lo = melOf(MIN_HZ);
  const hi = melOf(sampleRate / 2);
  const rowBins: [number, number][] = [];
  for (let r = 0; r < height; r++) {
    const f0 = hzOf(lo + ((hi - lo) * r) / height);
    const f1 = hzOf(lo + ((hi - lo) * (r + 1)) / height);
    let k0 = Math.ceil(f0 / binHz);
    let k1 = Math.min(bins - 1, Math.floor(f1 / binHz));
    if (k1 < k0) k0 = k1 = Math.min(bins - 1, Math.round((f0 + f1) / 2 / binHz));
    rowBins.push([k0, k1]);
  }

  const db = new Float32Array(width * height);
  const re = new Float64Array(nfft);
  const im = new Float64Array(nfft);
  const power = new Float64Array(bins);
  let loudest = -Infinity;
  for (let x = 0; x < width; x++) {
    const centre = Math.floor(((x + 0.5) / width) * samples.length);
    const start = centre - nfft / 2;
    for (let i = 0; i < nfft; i++) {
      const j = start + i;
      re[i] = j >= 0 && j < samples.length ? samples[j] * hann[i] : 0;
      im[i] = 0;
    }
    fft(re, im);
    for (let k = 0; k < bins; k++) power[k] = re[k] * re[k] + im[k] * im[k];
    for (let r = 0; r < height; r++) {
      const [k0, k1] = rowBins[r];
      let p = 0;
      for (let k = k0; k <= k1; k++) if (power[k] > p) p = power[k];
      const v = 10 * Math.log10(p + 1e-30);
      db[r * width + x] = v;
      if (v > loudest) loudest = v;
    }
  }
  // Silence (or near it) stays dark instead of being normalised up to full brightness.
  const silent = loudest < -250;
  const rgb = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    const y = height - 1 - r;
    for (let x = 0; x < width; x++) paint(rgb, (y * width + x) * 3, silent ? 0 : (db[r * width + x] - loudest + RANGE_DB) / RANGE_DB);
  }
  return { png: encodePng(width, height, rgb), width, height };
}
