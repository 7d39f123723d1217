/**
 * Sampling one level in windows (jukebox/sample.py sample_level / sample_single_window;
 * reference §d.2-d.5): each window keeps the codes already there as its prefix (prefilled
 * in one block-sparse pass), draws the rest with the KV-cached decoder in one native call,
 * and is conditioned on that window's labels (offset, timing, lyric window) and, for the
 * upsamplers, on the upper level's codes under it.
 */
import { JukeboxError } from '../errors.js';
import type { Prior } from '../prior/prior.js';
import { levelWindows } from './schedule.js';

export interface WindowLabels {
  /** n rows of [total_length, offset, sample_length, artist, genre x max_bow_genre_size]. */
  y: Int32Array;
  /** n rows of n_tokens lyric tokens (lyric models). */
  lyrics?: Int32Array;
}

export interface LevelProgress {
  window: number;
  windows: number;
  token: number;
  tokens: number;
}

export interface SampleLevelOptions {
  prior: Prior;
  n: number;
  /** Tokens this level must end with. */
  total: number;
  hopFraction: number;
  /** Labels of the window starting at token `start` of this level. */
  labelsFor(start: number): WindowLabels;
  /** Upsamplers: each sample's codes of the level above (at least total / cond_downsample). */
  upper?: Int32Array[];
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  /** Distinguishes this level's random streams from the other levels'. */
  level: number;
  /** Index of the first sample (so a batch split draws what the whole batch would). */
  sampleOffset?: number;
  signal?: AbortSignal;
  onProgress?(p: LevelProgress): void;
  /** Called with every sample's codes after each window that added tokens (resume files). */
  onWindow?(codes: Int32Array[], window: number, windows: number): void | Promise<void>;
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Samples the level and returns every sample's codes (`existing` extended to `total`). */
export async function sampleLevel(o: SampleLevelOptions, existing: Int32Array[]): Promise<Int32Array[]> {
  const { prior, n } = o;
  const s = prior.structure;
  const nCtx = s.nCtx, L = s.prior.len;
  if (existing.length !== n) throw new JukeboxError('ERR_INVALID_ARGUMENT', `expected codes for ${n} samples, got ${existing.length}`);
  const lengths = new Set(existing.map((c) => c.length));
  if (lengths.size !== 1) throw new JukeboxError('ERR_CODES', `level ${o.level}: the samples' existing codes differ in length`);
  if (s.upsampler && o.total < nCtx) {
    throw new JukeboxError(
      'ERR_INVALID_ARGUMENT',
      `level ${o.level} needs at least one full window (${nCtx} tokens, ${((nCtx * s.rawToTokens) / s.labels.sr).toFixed(2)} s); asked for ${o.total}`,
    );
  }
  let codes: Int32Array[] = existing.map((c) => c.slice());
  const windows = levelWindows(o.total, nCtx, o.hopFraction);
  const lyricOffset = s.lyrics === 'combined' ? s.nTokens : 0;
  for (let wi = 0; wi < windows.length; wi++) {
    const { start, length } = windows[wi];
    const cur = Math.max(0, Math.min(codes[0].length - start, length));
    if (length - cur <= 0) continue; // already sampled (continue / resume)
    const labels = o.labelsFor(start);
    let upper: Int32Array | undefined;
    if (s.upsampler) {
      const down = s.condDownsample;
      upper = new Int32Array(n * (nCtx / down));
      for (let b = 0; b < n; b++) {
        const slice = o.upper![b].subarray(start / down, (start + nCtx) / down);
        if (slice.length !== nCtx / down) throw new JukeboxError('ERR_CODES', `level ${o.level + 1} codes are too short to condition window ${start}`);
        upper.set(slice, b * (nCtx / down));
      }
    }
    // The window's tokens: [lyric tokens][music codes (+ n_vocab)] for the combined model.
    const tokens = new Int32Array(n * L);
    for (let b = 0; b < n; b++) {
      if (lyricOffset) tokens.set(labels.lyrics!.subarray(b * s.nTokens, (b + 1) * s.nTokens), b * L);
      const prefix = codes[b].subarray(start, start + cur);
      for (let t = 0; t < cur; t++) tokens[b * L + lyricOffset + t] = prefix[t] + (lyricOffset ? s.nVocab : 0);
    }
    // One native call: the conditioning (labels, timing, the upper level's codes, the lyric
    // encoder) is computed by the engine from these int32 rows, then the window is sampled.
    const out = await prior.sampleWindow({
      n,
      tokens,
      labels: labels.y,
      upper,
      lyrics: s.lyrics === 'encoder' ? labels.lyrics : undefined,
      prefix: lyricOffset + cur,
      end: lyricOffset + length,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed,
      stream: (o.level << 24) | wi,
      sampleOffset: o.sampleOffset ?? 0,
      signal: o.signal,
      onProgress: (token, tokensTotal) => o.onProgress?.({ window: wi, windows: windows.length, token, tokens: tokensTotal }),
    });
    codes = codes.map((c, b) => {
      const fresh = out.tokens.slice(b * L + lyricOffset + cur, b * L + lyricOffset + length);
      // prior_postprocess: a lyric token drawn into a music slot becomes code 0.
      if (lyricOffset) for (let t = 0; t < fresh.length; t++) fresh[t] = Math.max(0, fresh[t] - s.nVocab);
      return concat(c.subarray(0, start + cur), fresh);
    });
    await o.onWindow?.(codes, wi, windows.length);
  }
  return codes;
}
