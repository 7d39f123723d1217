/**
 * `jukebox score`: run a prior over given tokens with teacher forcing in one of its three
 * ways — full forward, KV-cached decoding from the start, or a prefix prefilled (in chunks
 * or one pass) then decoding — and report bits per token, optionally dumping every
 * position's logits. The three modes give the same logits; the tests check them against the
 * original.
 */
import { JukeboxError } from './errors.js';
import type { Prior } from './prior/prior.js';
import type { PriorStructure } from './prior/structure.js';

/**
 * forward: one teacher-forced pass (the original's z_forward). cached: KV-cached decoding
 * from position 0 (the original's sample; a combined lyric model first prefills its lyric
 * tokens, as its sampler primes with them). chunked: `prefix` tokens prefilled, in chunks of
 * `chunk` (primed_sample's chunk_size), then cached decoding.
 */
export type ScoreMode = 'forward' | 'cached' | 'chunked';
/** ScoreMode plus the names the older form of the command used: sample = cached, primed = chunked. */
export type ScoreModeName = ScoreMode | 'sample' | 'primed';

export function scoreMode(name: ScoreModeName): ScoreMode {
  return name === 'sample' ? 'cached' : name === 'primed' ? 'chunked' : name;
}

export interface ScoreInput {
  /** n x T music codes (T = n_ctx), or `combined` for the single encoder-decoder model. */
  tokens?: Int32Array;
  /** n x len raw transformer tokens (1b_lyrics: lyric tokens then codes + n_vocab). */
  combined?: Int32Array;
  n: number;
  /** n rows of the original's label vector (incl. lyric tokens for lyric models). */
  y: Int32Array;
  /** Upsamplers: n x (n_ctx / cond_downsample) codes of the level above. */
  upper?: Int32Array;
  mode: ScoreModeName;
  /**
   * chunked mode: transformer positions known before decoding starts (for the combined
   * lyric model these count its lyric tokens too); cached mode decodes from 0 (1b: from
   * after the lyrics).
   */
  prefix?: number;
  /** cached/chunked: prefill in chunks of this size (default one pass). */
  chunk?: number;
  /** What to call tokens / y / upper in error messages (the CLI passes file names). */
  sources?: { tokens?: string; y?: string; upper?: string };
}

export interface ScoreResult {
  /** n x len x bins logits (position t predicts token t). */
  logits: Float32Array;
  /** Mean negative log2-likelihood per predicted token (the original's loss / ln 2). */
  bitsPerToken: number;
  /** The same over the music positions only (equal to bitsPerToken without combined lyrics). */
  musicBitsPerToken: number;
  len: number;
  bins: number;
}

/** Length of one label row y: [total_length, offset, sample_length, artist, genres, lyric tokens]. */
export function labelLength(s: PriorStructure): number {
  return 4 + s.labels.maxBowGenreSize + s.nTokens;
}

/**
 * The label rows used when none are given: what the original's Labeller makes for an
 * unknown artist and genre (both id 0, "unknown", in the v2 and v3 id files) and empty
 * lyrics (all padding, token 0), at offset 0 of a song as long as one window — raised to
 * the prior's shortest song (min_duration), since the timing signal of a top-level prior
 * only covers [min_duration, max_duration).
 */
export function defaultLabels(s: PriorStructure, n: number): Int32Array {
  const sampleLength = s.nCtx * s.rawToTokens;
  const minSong = s.timing && s.labels.minDuration !== null ? Math.ceil(s.labels.minDuration * s.labels.sr) : 0;
  const row = new Int32Array(labelLength(s));
  row.set([Math.max(sampleLength, minSong), 0, sampleLength, 0, 0]);
  row.fill(-1, 5, 4 + s.labels.maxBowGenreSize); // empty genre slots
  const y = new Int32Array(n * row.length);
  for (let b = 0; b < n; b++) y.set(row, b * row.length);
  return y;
}

/** Throws naming the first value of `data` (rows of `cols`) outside [lo, hi) and where it is. */
function checkRange(data: Int32Array, cols: number, lo: number, hi: number, what: string, why: string, code: 'ERR_CODES' | 'ERR_INVALID_ARGUMENT' = 'ERR_CODES', colOffset = 0): void {
  for (let i = 0; i < data.length; i++) {
    if (data[i] < lo || data[i] >= hi) {
      throw new JukeboxError(code, `${what}: value ${data[i]} at [${Math.floor(i / cols)}, ${colOffset + (i % cols)}] is outside [${lo}, ${hi}) (${why})`);
    }
  }
}

export async function scorePrior(prior: Prior, x: ScoreInput): Promise<ScoreResult> {
  const s = prior.structure;
  const n = x.n, L = s.prior.len, bins = s.bins;
  const mode = scoreMode(x.mode);
  const src = { tokens: x.sources?.tokens ?? (x.combined ? 'combined' : 'tokens'), y: x.sources?.y ?? 'y', upper: x.sources?.upper ?? 'upper' };
  const head = 4 + s.labels.maxBowGenreSize;
  const rowLen = labelLength(s);
  if (x.y.length !== n * rowLen) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${src.y} must be ${n} rows of ${rowLen} labels`);
  const labels = new Int32Array(n * head);
  const lyrics = new Int32Array(n * s.nTokens);
  for (let b = 0; b < n; b++) {
    labels.set(x.y.subarray(b * rowLen, b * rowLen + head), b * head);
    lyrics.set(x.y.subarray(b * rowLen + head, (b + 1) * rowLen), b * s.nTokens);
  }
  // Out-of-range tokens would index past an embedding table; say which input holds them.
  if (s.nTokens) checkRange(lyrics, s.nTokens, 0, s.nVocab, `${src.y} (lyric tokens)`, `the lyric vocabulary has ${s.nVocab} tokens`, 'ERR_INVALID_ARGUMENT', head);
  // The transformer's tokens.
  let tokens: Int32Array;
  if (x.combined) {
    if (x.combined.length !== n * L) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${src.tokens} must be ${n} x ${L} tokens`);
    checkRange(x.combined, L, 0, bins, src.tokens, `the transformer has ${bins} output bins`);
    tokens = x.combined;
  } else {
    if (!x.tokens || x.tokens.length !== n * s.nCtx) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${src.tokens} must be ${n} x ${s.nCtx} codes`);
    checkRange(x.tokens, s.nCtx, 0, s.lBins, src.tokens, `the VQ-VAE has ${s.lBins} codes per level`);
    tokens = new Int32Array(n * L);
    const off = s.lyrics === 'combined' ? s.nTokens : 0;
    for (let b = 0; b < n; b++) {
      if (off) tokens.set(lyrics.subarray(b * s.nTokens, (b + 1) * s.nTokens), b * L);
      for (let t = 0; t < s.nCtx; t++) tokens[b * L + off + t] = x.tokens[b * s.nCtx + t] + (off ? s.nVocab : 0);
    }
  }
  // Conditioning, computed natively from the int32 rows (labels, upper codes, lyric tokens).
  let upper: Int32Array | undefined;
  if (s.upsampler) {
    if (!x.upper) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'an upsampler needs the codes of the level above (upper)');
    const upLen = s.nCtx / s.condDownsample;
    if (x.upper.length !== n * upLen) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${src.upper} must be ${n} x ${upLen} codes of level ${s.level + 1}`);
    checkRange(x.upper, upLen, 0, s.lBins, src.upper, `the VQ-VAE has ${s.lBins} codes per level`);
    upper = x.upper;
  }
  const cond = { labels, upper, lyrics: s.lyrics === 'encoder' ? lyrics : undefined };

  let logits: Float32Array;
  if (mode === 'forward') {
    logits = await prior.forwardWindow({ tokens, n, ...cond });
  } else {
    const prefix = mode === 'cached' ? (s.lyrics === 'combined' ? s.nTokens : 0) : (x.prefix ?? 0);
    if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= L)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `prefix must be an integer in [0, ${L}]`);
    if (x.chunk !== undefined && !(Number.isInteger(x.chunk) && x.chunk >= 1)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `chunk must be a positive integer, got ${x.chunk}`);
    const out = await prior.sampleWindow({
      n, tokens, prefix, prefillChunk: x.chunk, ...cond, forced: tokens, recordLogits: true, recordPrefixLogits: true,
    });
    logits = new Float32Array(n * L * bins);
    for (let b = 0; b < n; b++) {
      logits.set(out.prefixLogits!.subarray(b * prefix * bins, (b + 1) * prefix * bins), b * L * bins);
      logits.set(out.logits!.subarray(b * (L - prefix) * bins, (b + 1) * (L - prefix) * bins), (b * L + prefix) * bins);
    }
  }
  // bits per token of the given tokens under the logits (log-softmax in float64)
  const musicFrom = s.lyrics === 'combined' ? s.nTokens : 0;
  let nll = 0, musicNll = 0;
  for (let i = 0; i < n * L; i++) {
    const row = logits.subarray(i * bins, (i + 1) * bins);
    let mx = -Infinity;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    const e = Math.log(z) + mx - row[tokens[i]];
    nll += e;
    if (i % L >= musicFrom) musicNll += e;
  }
  return {
    logits,
    bitsPerToken: nll / (n * L) / Math.LN2,
    musicBitsPerToken: musicNll / (n * (L - musicFrom)) / Math.LN2,
    len: L,
    bins,
  };
}
