/**
 * Bounds for every hyperparameter that shapes a model, checked before anything is sized from
 * them. A file's metadata or a checkpoint's `hps` is untrusted input: `depth` 2^31 or 1e300
 * (an integer to JavaScript), a multiplier of 1e9 or a huge `downs_t` would otherwise make
 * the layout loops, label tables or native buffers grow until the process dies. Each limit is
 * far above every official model (named in the comment beside it) and is named in the error.
 */
import { JukeboxError, shortJson } from '../errors.js';
import type { Hparams } from './presets.js';

export const LIMITS = {
  levels: 8, // official VQ-VAE: 3
  downs: 16, // per level; official 3, 2, 2
  stride: 64, // official 2
  hop: 1 << 20, // samples per code at the top level; official 128
  channels: 1 << 16, // any conv/transformer width; official up to 4800 (prior), 1024 (cond)
  codebook: 1 << 20, // l_bins; official 2048
  codebookElements: 1 << 28, // l_bins x emb_width
  convDepth: 256, // residual blocks per stack; official VQ-VAE 4, conditioner 16
  dilationGrowth: 1 << 10, // official 3
  dilation: 2 ** 30, // largest dilation a stack reaches; the native convs index in 64 bits
  multiplier: 64, // m_conv, m_attn, m_mlp, hvqvae_multipliers; official <= 2
  sampleRate: 768_000, // sr; official 44100
  transformerDepth: 1024, // prior_depth / prime_depth; official 79 / 18
  heads: 1024, // official 8
  context: 1 << 17, // n_ctx (+ lyric tokens); official 8192
  tokens: 1 << 16, // n_tokens and n_vocab; official 512 and 80
  labelBins: 1 << 20, // genre / artist embeddings; official 604 x 7898
  timeBins: 1 << 16, // t_bins; official 128
  bowGenres: 1024, // max_bow_genre_size; official 5
  duration: 86_400, // min/max_duration in seconds; official 600
  /** Parameters a prior's structure implies (official 5b_lyrics: 5.6e9). */
  priorParameters: 2 ** 36,
} as const;

function fail(source: string, msg: string): never {
  throw new JukeboxError('ERR_HPARAMS', `${source}: ${msg}`);
}

/** An integer in [min, max]; `limit` names the bound in the error. */
export function boundedInt(h: Hparams, key: string, source: string, min: number, max: number): number {
  const v = h[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(source, `hyperparameter ${key} must be an integer in [${min}, ${max}], got ${shortJson(v)}${typeof v === 'number' && v > max ? ` (the limit is ${max})` : ''}`);
  }
  return v;
}

/** A finite number in (0, max] (or [0, max] with allowZero). */
export function boundedNumber(h: Hparams, key: string, source: string, max: number, allowZero = false): number {
  const v = h[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || (allowZero ? v < 0 : v <= 0) || v > max) {
    fail(source, `hyperparameter ${key} must be a finite number in ${allowZero ? '[' : '('}0, ${max}], got ${shortJson(v)}`);
  }
  return v;
}

/** A list of exactly `len` integers, each in [min, max]. */
export function boundedIntList(h: Hparams, key: string, source: string, len: number, min: number, max: number, what = 'one per level'): number[] {
  const v = h[key];
  if (!Array.isArray(v) || v.length !== len || !v.every((x) => Number.isSafeInteger(x) && x >= min && x <= max)) {
    const shown = Array.isArray(v) && v.length > 8 ? `a list of ${v.length}` : shortJson(v);
    fail(source, `hyperparameter ${key} must be a list of ${len} integers in [${min}, ${max}] (${what}), got ${shown}`);
  }
  return [...(v as number[])];
}

/** A product of sizes that must stay under `max` (what it would cost, named in the error). */
export function checkProduct(source: string, what: string, value: number, max: number): void {
  if (!(value <= max)) fail(source, `${what} comes to ${value.toExponential(3)}, above the limit of ${max.toExponential(3)}`);
}

/** The largest dilation of a residual stack: growth ** (d % cycle) over its depth. */
export function maxDilation(depth: number, growth: number, cycle: number | null): number {
  if (depth === 0) return 1;
  const top = Math.min(depth, cycle ?? depth) - 1;
  return growth ** top;
}
