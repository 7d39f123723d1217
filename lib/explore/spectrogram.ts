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

const fftTables = new Map<number, { rev: Uint32Array; cos: Float64Array; sin: Float64Array }>();

/**
 * In-place iterative radix-2 FFT of (re, im); n a power of two. The bit-reversal order and
 * twiddles are computed once per size (a spectrogram runs thousands of same-size FFTs).
 */
export function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if (n < 1 || (n & (n - 1)) !== 0 || im.length !== n) throw new Error(`FFT size must be a power of two with re and im alike, got ${n} and ${im.length}`);
  let tab = fftTables.get(n);
  if (!tab) {
    const bits = Math.log2(n);
    const rev = new Uint32Array(n);
    for (let i = 1; i < n; i++) rev[i] = (rev[i >> 1] >> 1) | ((i & 1) << (bits - 1));
    const cos = new Float64Array(n >> 1);
    const sin = new Float64Array(n >> 1);
    for (let k = 0; k < n >> 1; k++) {
      cos[k] = Math.cos((2 * Math.PI * k) / n);
      sin[k] = -Math.sin((2 * Math.PI * k) / n);
    }
    tab = { rev, cos, sin };
    fftTables.set(n, tab);
  }
  const { rev, cos, sin } = tab;
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (i < j) {
      let t = re[i];
      re[i] = re[j];
      re[j] = t;
      t = im[i];
      im[i] = im[j];
      im[j] = t;
    }
  }
  for (let half = 1; half < n; half <<= 1) {
    const step = n / (half << 1);
    for (let i = 0; i < n; i += half << 1) {
      for (let k = 0; k < half; k++) {
        const a = i + k;
        const b = a + half;
        const wr = cos[k * step];
        const wi = sin[k * step];
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
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
  // The Hann-windowed frame centred at column x's time, zero-padded past the clip's ends.
  const frame = (x: number, out: Float64Array) => {
    if (x >= width) return out.fill(0);
    const start = Math.floor(((x + 0.5) / width) * samples.length) - nfft / 2;
    for (let i = 0; i < nfft; i++) {
      const j = start + i;
      out[i] = j >= 0 && j < samples.length ? samples[j] * hann[i] : 0;
    }
  };
  const rows = (x: number) => {
    for (let r = 0; r < height; r++) {
      const [k0, k1] = rowBins[r];
      let p = 0;
      for (let k = k0; k <= k1; k++) if (power[k] > p) p = power[k];
      const v = 10 * Math.log10(p + 1e-30);
      db[r * width + x] = v;
      if (v > loudest) loudest = v;
    }
  };
  // The frames are real, so two go through one complex FFT (A as re, B as im) and are
  // separated by symmetry: A[k] = (Z[k] + conj Z[n-k]) / 2, B[k] = (Z[k] - conj Z[n-k]) / 2i.
  for (let x = 0; x < width; x += 2) {
    frame(x, re);
    frame(x + 1, im);
    fft(re, im);
    for (let k = 0; k < bins; k++) {
      const m = (nfft - k) & (nfft - 1);
      const ar = re[k] + re[m];
      const ai = im[k] - im[m];
      power[k] = (ar * ar + ai * ai) / 4;
    }
    rows(x);
    if (x + 1 >= width) break;
    for (let k = 0; k < bins; k++) {
      const m = (nfft - k) & (nfft - 1);
      const br = im[k] + im[m];
      const bi = re[m] - re[k];
      power[k] = (br * br + bi * bi) / 4;
    }
    rows(x + 1);
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
