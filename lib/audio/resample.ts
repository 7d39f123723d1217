/**
 * Band-limited resampling that reproduces what the original Jukebox gets from
 * `librosa.load(path, sr=44100)`: librosa 0.7.2 calls resampy (0.2.x) with its 'kaiser_best'
 * filter, a Kaiser-windowed sinc with 64 zero crossings tabulated at 2^9 points per crossing
 * and read with linear interpolation between table entries.
 *
 * The table is computed here from the formula resampy used to build the kaiser_best.npz it
 * shipped until 0.3 (our table matches that file to within 1e-15), and the loop follows
 * resampy 0.2's `resample_f` step by step, quirks included: when downsampling, the table
 * stride is truncated to an integer (`int(scale * 512)`) and the output scaled by the ratio;
 * output times are accumulated one increment at a time. The truncated stride costs some
 * quality when downsampling (at 48 -> 44.1 kHz an alias floor near -61 dB and a +0.001 dB
 * gain error), but it is what the original's prompts went through.
 *
 * The one difference: sums are kept in float64, where resampy 0.2 accumulated into its output
 * array's dtype. Against resampy run in float64 our output is bit-identical (after rounding to
 * float32); against librosa's float32 run it differs by at most ~1.2e-6 over a 3-minute track.
 * (resampy >= 0.3 changed the filter behind 'kaiser_best' and the timing; even with the old
 * filter its output differs from 0.2's by up to ~1e-3.)
 */
import { JukeboxError } from '../errors.js';

const NUM_ZEROS = 64;
const NUM_TABLE = 1 << 9; // table entries per zero crossing ("precision = 9")
const KAISER_BETA = 14.769656459379492;
const ROLLOFF = 0.9475937167399596;

/** Modified Bessel function of the first kind, order 0, by its power series (converges fast for x <= 15). */
function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

let cachedWindow: Float64Array | undefined;

/** Right wing of the filter, 64 * 512 + 1 entries from t = 0 to the 64th zero crossing. */
function kaiserBestWindow(): Float64Array {
  if (cachedWindow) return cachedWindow;
  const n = NUM_ZEROS * NUM_TABLE;
  const win = new Float64Array(n + 1);
  const i0Beta = besselI0(KAISER_BETA);
  for (let i = 0; i <= n; i++) {
    // resampy: rolloff * np.sinc(rolloff * linspace(0, 64, n + 1)) * kaiser(2n + 1, beta)[n:]
    const x = (ROLLOFF * i) / NUM_TABLE;
    const sinc = i === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const r = i / n;
    win[i] = ROLLOFF * sinc * (besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0Beta);
  }
  cachedWindow = win;
  return win;
}

/**
 * The filter table re-laid out for one stride. resampy reads entries offset, offset + step,
 * offset + 2*step, ... for an offset in [0, step]; scattered over 512 KiB, those reads miss
 * the cache (and with step = 512 they all fall in one cache set). Here row `offset` holds
 * exactly those entries, each as the pair (win, delta), so every wing is a sequential scan.
 * The values are the ones resampy computes: the window times the gain, then its differences.
 */
interface Polyphase {
  step: number;
  gain: number;
  /** Row `o` starts at o * rowLength and holds pairs for entries o + i*step, i < counts[o]. */
  pairs: Float64Array;
  counts: Int32Array;
  rowLength: number;
}

let cachedPolyphase: Polyphase | undefined;

function polyphase(step: number, gain: number): Polyphase {
  if (cachedPolyphase && cachedPolyphase.step === step && cachedPolyphase.gain === gain) return cachedPolyphase;
  const base = kaiserBestWindow();
  const nWin = base.length;
  const win = gain === 1 ? base : base.map((v) => v * gain);
  const perRow = Math.ceil(nWin / step);
  const rowLength = 2 * perRow;
  const pairs = new Float64Array((step + 1) * rowLength);
  const counts = new Int32Array(step + 1);
  for (let o = 0; o <= step; o++) {
    // resampy's bound on taps per wing: (nwin - offset) // index_step
    const count = Math.trunc((nWin - o) / step);
    counts[o] = count;
    for (let i = 0, j = o, q = o * rowLength; i < count; i++, j += step, q += 2) {
      pairs[q] = win[j];
      pairs[q + 1] = j + 1 < nWin ? win[j + 1] - win[j] : 0;
    }
  }
  cachedPolyphase = { step, gain, pairs, counts, rowLength };
  return cachedPolyphase;
}

/**
 * Resample `x` from `srIn` to `srOut` Hz. Returns a copy when the rates are equal.
 *
 * The output has ceil(n * srOut / srIn) samples, as librosa returns. resampy itself computes
 * floor(n * srOut / srIn) of them and librosa pads with zeros, so when the product is not a
 * whole number the last sample is 0 here too.
 */
export function resample(x: Float32Array, srIn: number, srOut: number): Float32Array {
  for (const [label, sr] of [['input', srIn], ['output', srOut]] as const) {
    if (!Number.isFinite(sr) || sr <= 0) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `resample: the ${label} sample rate must be a positive number, got ${sr}`);
    }
  }
  if (srIn === srOut) return x.slice();
  const nIn = x.length;
  if (nIn === 0) return new Float32Array(0);
  const ratio = srOut / srIn;
  const nFiltered = Math.floor(nIn * ratio);
  if (nFiltered < 1) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `resample: ${nIn} sample(s) are too few to resample from ${srIn} to ${srOut} Hz`);
  }
  const y = new Float32Array(Math.ceil(nIn * ratio));

  // When downsampling, the filter is stretched to cut off at the new Nyquist frequency (its
  // table stride shrinks, truncated to an integer as resampy does) and its gain scaled.
  const scale = Math.min(1, ratio);
  if (scale * NUM_TABLE < 1) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `resample: downsampling by more than ${NUM_TABLE}x (${srIn} to ${srOut} Hz) is not supported`);
  }
  const { step, pairs, counts, rowLength } = polyphase(Math.trunc(scale * NUM_TABLE), ratio < 1 ? ratio : 1);
  const timeIncrement = 1 / ratio;

  // The output time is accumulated, not computed as t * timeIncrement, because resampy 0.2
  // does so and it shows: the rounding drift (4e-4 input samples after 3 minutes at 48 kHz)
  // and, mostly, which side of an integer an exact sample time lands on (the two wings use
  // the truncated stride differently) change the output by up to ~1e-3. Adding the same
  // doubles in the same order reproduces it exactly.
  let time = 0;
  for (let t = 0; t < nFiltered; t++, time += timeIncrement) {
    const n = Math.trunc(time);
    const frac = scale * (time - n);

    // Left wing: x[n], x[n-1], ... from table position frac outwards.
    let indexFrac = frac * NUM_TABLE;
    let offset = Math.trunc(indexFrac);
    let acc = wing(pairs, offset * rowLength, Math.min(n + 1, counts[offset]), indexFrac - offset, x, n, -1);

    // Right wing: x[n+1], x[n+2], ... from the mirrored position scale - frac.
    indexFrac = (scale - frac) * NUM_TABLE;
    offset = Math.trunc(indexFrac);
    acc += wing(pairs, offset * rowLength, Math.min(nIn - n - 1, counts[offset]), indexFrac - offset, x, n + 1, 1);

    y[t] = acc;
  }
  return y;
}

/**
 * sum over i < count of (win + eta * delta)[i] * x[start + i * dir], the table read
 * sequentially from `row`. Four partial sums hide the latency of the additions.
 */
function wing(pairs: Float64Array, row: number, count: number, eta: number, x: Float32Array, start: number, dir: 1 | -1): number {
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let i = 0;
  let q = row;
  let p = start;
  for (; i + 3 < count; i += 4, q += 8, p += 4 * dir) {
    a0 += (pairs[q] + eta * pairs[q + 1]) * x[p];
    a1 += (pairs[q + 2] + eta * pairs[q + 3]) * x[p + dir];
    a2 += (pairs[q + 4] + eta * pairs[q + 5]) * x[p + 2 * dir];
    a3 += (pairs[q + 6] + eta * pairs[q + 7]) * x[p + 3 * dir];
  }
  for (; i < count; i++, q += 2, p += dir) a0 += (pairs[q] + eta * pairs[q + 1]) * x[p];
  return a0 + a1 + (a2 + a3);
}
