/**
 * `jukebox score`: run a prior over given tokens with teacher forcing in one of its three
 * ways — full forward, KV-cached decoding from a prefix, or chunked/one-pass prefill of a
 * prefix then decoding — and report bits per token, optionally dumping every position's
 * logits. The three modes give the same logits; the tests check them against the original.
 */
import { JukeboxError } from './errors.js';
import type { Prior } from './prior/prior.js';

export type ScoreMode = 'forward' | 'sample' | 'primed';

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
  mode: ScoreMode;
  /** primed mode: tokens known before decoding starts; sample mode decodes from 0 (1b: from the lyrics). */
  prefix?: number;
  /** primed mode: prefill in chunks of this size (default one pass). */
  chunk?: number;
}

export interface ScoreResult {
  /** n x len x bins logits (position t predicts token t). */
  logits: Float32Array;
  /** Mean negative log2-likelihood per predicted token (the original's loss / ln 2). */
  bitsPerToken: number;
  len: number;
  bins: number;
}

export async function scorePrior(prior: Prior, x: ScoreInput): Promise<ScoreResult> {
  const s = prior.structure;
  const n = x.n, L = s.prior.len, w = s.prior.width, bins = s.bins;
  const head = 4 + s.labels.maxBowGenreSize;
  const rowLen = head + s.nTokens;
  if (x.y.length !== n * rowLen) throw new JukeboxError('ERR_INVALID_ARGUMENT', `y must be ${n} rows of ${rowLen} labels`);
  const labels = new Int32Array(n * head);
  const lyrics = new Int32Array(n * s.nTokens);
  for (let b = 0; b < n; b++) {
    labels.set(x.y.subarray(b * rowLen, b * rowLen + head), b * head);
    lyrics.set(x.y.subarray(b * rowLen + head, (b + 1) * rowLen), b * s.nTokens);
  }
  // The transformer's tokens.
  let tokens: Int32Array;
  if (x.combined) {
    if (x.combined.length !== n * L) throw new JukeboxError('ERR_INVALID_ARGUMENT', `combined must be ${n} x ${L} tokens`);
    tokens = x.combined;
  } else {
    if (!x.tokens || x.tokens.length !== n * s.nCtx) throw new JukeboxError('ERR_INVALID_ARGUMENT', `tokens must be ${n} x ${s.nCtx} codes`);
    tokens = new Int32Array(n * L);
    const off = s.lyrics === 'combined' ? s.nTokens : 0;
    for (let b = 0; b < n; b++) {
      if (off) tokens.set(lyrics.subarray(b * s.nTokens, (b + 1) * s.nTokens), b * L);
      for (let t = 0; t < s.nCtx; t++) tokens[b * L + off + t] = x.tokens[b * s.nCtx + t] + (off ? s.nVocab : 0);
    }
  }
  // Conditioning.
  const { yCond, xCond: timing } = prior.labels(labels, n);
  let xCond = timing ?? undefined;
  if (s.upsampler) {
    if (!x.upper) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'an upsampler needs the codes of the level above (upper)');
    xCond = await prior.condition(x.upper, n);
  }
  if (s.lyrics === 'combined' && xCond) {
    const padded = new Float32Array(n * L * w);
    for (let b = 0; b < n; b++) padded.set(xCond.subarray(b * s.nCtx * w, (b + 1) * s.nCtx * w), (b * L + s.nTokens) * w);
    xCond = padded;
  }
  const encoderKv = s.lyrics === 'encoder' ? await prior.encodeLyrics(lyrics, n) : undefined;

  let logits: Float32Array;
  if (x.mode === 'forward') {
    logits = (await prior.forward({ tokens, n, yCond, xCond, encoderKv })).logits;
  } else {
    const prefix = x.mode === 'sample' ? (s.lyrics === 'combined' ? s.nTokens : 0) : (x.prefix ?? 0);
    if (!(prefix >= 0 && prefix <= L)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `prefix must be in [0, ${L}]`);
    const out = await prior.sample({
      n, tokens, prefix, prefillChunk: x.chunk, yCond, xCond, encoderKv, forced: tokens, recordLogits: true, recordPrefixLogits: true,
    });
    logits = new Float32Array(n * L * bins);
    for (let b = 0; b < n; b++) {
      logits.set(out.prefixLogits!.subarray(b * prefix * bins, (b + 1) * prefix * bins), b * L * bins);
      logits.set(out.logits!.subarray(b * (L - prefix) * bins, (b + 1) * (L - prefix) * bins), (b * L + prefix) * bins);
    }
  }
  // bits per token of the given tokens under the logits (log-softmax in float64)
  let nll = 0;
  for (let i = 0; i < n * L; i++) {
    const row = logits.subarray(i * bins, (i + 1) * bins);
    let mx = -Infinity;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    nll += Math.log(z) + mx - row[tokens[i]];
  }
  return { logits, bitsPerToken: nll / (n * L) / Math.LN2, len: L, bins };
}
