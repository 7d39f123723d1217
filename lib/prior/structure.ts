/**
 * A prior's structure from its hyperparameters and its VQ-VAE's, the way the original
 * builds it (jukebox/make_models.py make_prior, prior/prior.py SimplePrior; reference §a.4,
 * §c): which conditioning it has, how lyrics enter, the transformer's dimensions and the
 * attention type of every layer.
 */
import { JukeboxError, shortJson } from '../errors.js';
import { checkProduct, LIMITS, maxDilation } from '../hparams/bounds.js';
import type { Hparams } from '../hparams/presets.js';
import { hopLengths, type VQVAEHparams } from '../vqvae/hparams.js';

export interface TransformerStructure {
  width: number;
  depth: number;
  heads: number;
  /** n_state = int(m_attn * width) */
  state: number;
  /** int(m_mlp * width) */
  mlp: number;
  /** Context of the full forward (lyrics + music for the single encoder-decoder). */
  len: number;
  blocks: number;
  attnFuncs: number[];
  /** 1, or 1/depth when res_scale is set. */
  resScale: number;
  /** Attention type 7 keys: the original's _prime_len = (prime_len // blocks + 1) * blocks. */
  primeLen: number;
  /** Attention type 6 keys: encoder positions. */
  encLen: number;
}

export interface PriorStructure {
  level: number;
  levels: number;
  /** Music codebook size. */
  lBins: number;
  /** Raw audio samples per token at this level. */
  rawToTokens: number;
  /** Music tokens per window (n_ctx). */
  nCtx: number;
  /** Upsampler: conditioned on the codes of level + 1 through the conditioner stack. */
  upsampler: boolean;
  /** Upsampler: tokens of this level per token of the level above. */
  condDownsample: number;
  /** Timing signal (top level only): include_time_signal = not x_cond. */
  timing: boolean;
  lyrics: 'none' | 'encoder' | 'combined';
  nTokens: number;
  nVocab: number;
  /** Output vocabulary of the transformer: l_bins, or n_vocab + l_bins when combined. */
  bins: number;
  mergedDecoder: boolean;
  prior: TransformerStructure;
  /** 5b_lyrics: the separate lyric encoder. */
  encoder?: TransformerStructure;
  labels: {
    genreBins: number;
    artistBins: number;
    tBins: number;
    maxBowGenreSize: number;
    minDuration: number | null;
    maxDuration: number | null;
    sr: number;
    v3: boolean;
  };
  cond?: {
    width: number;
    depth: number;
    mConv: number;
    growth: number;
    cycle: number | null;
    /** Resnet1D res_scale: 1/sqrt(depth) when cond_res_scale. */
    resScale: number;
    down: number;
    stride: number;
    container: 'model' | 'blocks';
  };
}

/** attn_order -> attention type of layer d (jukebox/transformer/transformer.py). */
export function attnFunc(order: number, d: number): number {
  switch (order) {
    case 0: return 0;
    case 1: return [1, 2][d % 2];
    case 2: return [1, 2, 3][d % 3];
    case 3: return [1, 4][d % 2];
    case 4: return [1, 5][d % 2];
    case 5: return [1, 4, 1, 1][d % 4];
    case 6: return [1, 2, 3, 6][d % 4];
    case 7: return [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 6][d % 16];
    case 8: return [1, 2, 3, 1, 2, 3, 1, 2, 3, 6][d % 10];
    case 9: return [1, 2, 3, 0][d % 4];
    case 10: {
      const pattern = [1, 2, 3, 1, 2, 3, 1, 2, 3];
      for (let i = 0; i < 7; i++) pattern.push(1, 2, 3, 1, 2, 3, 1, 2, 3, 6);
      return pattern[d % 79];
    }
    case 11: return d % 16 === 15 ? [6, 6, 0][d % 3] : [1, 2, 3][d % 3];
    case 12: return d % 16 === 15 ? [7, 7, 0][d % 3] : [1, 2, 3][d % 3];
    default:
      throw new JukeboxError('ERR_HPARAMS', `attn_order ${order} does not exist in the original (0-12)`);
  }
}

function num(h: Hparams, key: string, source: string, opts: { int?: boolean; min?: number; max?: number; nullable?: boolean } = {}): number {
  const v = h[key];
  if (v === null && opts.nullable) return NaN;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.int && !Number.isSafeInteger(v)) || (opts.min !== undefined && v < opts.min) || v > max) {
    const range = opts.min !== undefined ? ` in [${opts.min}, ${max}]` : ` <= ${max}`;
    throw new JukeboxError('ERR_HPARAMS', `${source}: hyperparameter ${key} must be ${opts.int ? 'an integer' : 'a finite number'}${range}, got ${shortJson(v)}${typeof v === 'number' && v > max ? ` (the limit is ${max})` : ''}`);
  }
  return v;
}

function transformer(
  h: Hparams,
  p: '' | 'prime_',
  source: string,
  len: number,
  extra: { primeLen?: number; encLen?: number },
): TransformerStructure {
  const width = num(h, `${p === '' ? 'prior_' : p}width`, source, { int: true, min: 1, max: LIMITS.channels });
  const depth = num(h, `${p === '' ? 'prior_' : p}depth`, source, { int: true, min: 1, max: LIMITS.transformerDepth });
  const heads = num(h, `${p}heads`, source, { int: true, min: 1, max: LIMITS.heads });
  const order = num(h, `${p}attn_order`, source, { int: true, min: 0, max: 12 });
  const blocksRaw = h[`${p}blocks`];
  const state = Math.trunc(num(h, `${p}m_attn`, source, { min: 0, max: LIMITS.multiplier }) * width);
  const mlp = Math.trunc(num(h, `${p}m_mlp`, source, { min: 0, max: LIMITS.multiplier }) * width);
  if (state < heads || state % heads !== 0) throw new JukeboxError('ERR_HPARAMS', `${source}: n_state ${state} (${p}m_attn x width) is not a positive multiple of ${p}heads ${heads}`);
  if (mlp < 1) throw new JukeboxError('ERR_HPARAMS', `${source}: the MLP width ${mlp} (${p}m_mlp x width) must be at least 1`);
  checkProduct(source, `the ${p === '' ? 'prior' : 'lyric encoder'}'s MLP and attention width`, Math.max(state, mlp), LIMITS.channels * LIMITS.multiplier);
  const attnFuncs = Array.from({ length: depth }, (_, d) => attnFunc(order, d));
  for (const f of attnFuncs) {
    if (f === 4 || f === 5) {
      throw new JukeboxError('ERR_HPARAMS', `${source}: ${p}attn_order ${order} uses summary attention (type ${f}), which no official model uses and this engine does not implement`);
    }
  }
  const needsBlocks = attnFuncs.some((f) => f === 1 || f === 2 || f === 3 || f === 7);
  let blocks: number;
  if (blocksRaw === null || blocksRaw === undefined) {
    if (needsBlocks) throw new JukeboxError('ERR_HPARAMS', `${source}: ${p}blocks is required by ${p}attn_order ${order}`);
    blocks = 1;
  } else {
    blocks = num(h, `${p}blocks`, source, { int: true, min: 1, max: LIMITS.context });
  }
  if (len % blocks !== 0) throw new JukeboxError('ERR_HPARAMS', `${source}: context ${len} is not a multiple of ${p}blocks ${blocks}`);
  if (h[`${p}pos_init`] === true) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: ${p}pos_init = true (factorised position embeddings) is not supported`);
  }
  const primeLen = extra.primeLen !== undefined ? (Math.floor(extra.primeLen / blocks) + 1) * blocks : 0;
  return {
    width, depth, heads, state, mlp, len, blocks, attnFuncs,
    resScale: h[`${p}res_scale`] === true ? 1 / depth : 1,
    primeLen,
    encLen: extra.encLen ?? 0,
  };
}

export function priorStructure(h: Hparams, vq: VQVAEHparams, source: string): PriorStructure {
  const level = num(h, 'level', source, { int: true, min: 0 });
  if (level >= vq.levels) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: prior level ${level} but its VQ-VAE has levels 0..${vq.levels - 1}`);
  }
  if (h.copy_input === true) throw new JukeboxError('ERR_HPARAMS', `${source}: copy_input priors are not supported`);
  if (h.labels === false) throw new JukeboxError('ERR_HPARAMS', `${source}: priors without labels (labels = false) are not supported`);
  const hops = hopLengths(vq);
  const nCtx = num(h, 'n_ctx', source, { int: true, min: 1, max: LIMITS.context });
  const upsampler = level !== vq.levels - 1;
  const useTokens = h.use_tokens === true && num(h, 'n_tokens', source, { int: true, min: 0, max: LIMITS.tokens }) > 0;
  const single = h.single_enc_dec === true;
  const nTokens = useTokens ? (h.n_tokens as number) : 0;
  const nVocab = useTokens ? num(h, 'n_vocab', source, { int: true, min: 1, max: LIMITS.tokens }) : 0;
  const lyrics = !useTokens ? 'none' : single ? 'combined' : 'encoder';
  if (lyrics === 'combined' && nTokens + nCtx > LIMITS.context) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: n_tokens + n_ctx = ${nTokens + nCtx} exceeds the context limit ${LIMITS.context}`);
  }
  const yBins = h.y_bins;
  if (!Array.isArray(yBins) || yBins.length !== 2 || !yBins.every((b) => Number.isSafeInteger(b) && b >= 1 && b <= LIMITS.labelBins)) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: y_bins must be [genre_bins, artist_bins], two integers in [1, ${LIMITS.labelBins}], got ${shortJson(yBins)}`);
  }
  const minD = h.min_duration, maxD = h.max_duration;
  for (const [k, d] of [['min_duration', minD], ['max_duration', maxD]] as const) {
    if (d !== null && d !== undefined && (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > LIMITS.duration)) {
      throw new JukeboxError('ERR_HPARAMS', `${source}: ${k} must be null or a number of seconds in [0, ${LIMITS.duration}], got ${shortJson(d)}`);
    }
  }
  if (typeof minD === 'number' && typeof maxD === 'number' && !(minD < maxD)) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: min_duration ${minD} must be below max_duration ${maxD}`);
  }
  const timing = !upsampler;
  if (timing && (typeof minD !== 'number' || typeof maxD !== 'number')) {
    throw new JukeboxError('ERR_HPARAMS', `${source}: a top-level prior needs min_duration and max_duration for its timing signal`);
  }
  const s: PriorStructure = {
    level,
    levels: vq.levels,
    lBins: vq.l_bins,
    rawToTokens: hops[level],
    nCtx,
    upsampler,
    condDownsample: upsampler ? vq.strides_t[level + 1] ** vq.downs_t[level + 1] : 0,
    timing,
    lyrics,
    nTokens,
    nVocab,
    bins: lyrics === 'combined' ? nVocab + vq.l_bins : vq.l_bins,
    mergedDecoder: h.merged_decoder === true,
    prior: transformer(h, '', source, lyrics === 'combined' ? nTokens + nCtx : nCtx, {
      primeLen: lyrics === 'combined' ? nTokens : undefined,
      encLen: lyrics === 'encoder' ? nTokens : undefined,
    }),
    labels: {
      genreBins: yBins[0],
      artistBins: yBins[1],
      tBins: num(h, 't_bins', source, { int: true, min: 1, max: LIMITS.timeBins }),
      maxBowGenreSize: num(h, 'max_bow_genre_size', source, { int: true, min: 1, max: LIMITS.bowGenres }),
      minDuration: typeof minD === 'number' ? minD : null,
      maxDuration: typeof maxD === 'number' ? maxD : null,
      sr: num(h, 'sr', source, { min: 1, max: LIMITS.sampleRate }),
      v3: h.labels_v3 === true,
    },
  };
  if (lyrics === 'encoder') s.encoder = transformer(h, 'prime_', source, nTokens, {});
  if (upsampler) {
    const depth = num(h, 'cond_depth', source, { int: true, min: 0, max: LIMITS.convDepth });
    const cycle = h.cond_dilation_cycle;
    if (cycle !== null && cycle !== undefined && (typeof cycle !== 'number' || !Number.isSafeInteger(cycle) || cycle < 1 || cycle > LIMITS.convDepth)) {
      throw new JukeboxError('ERR_HPARAMS', `${source}: cond_dilation_cycle must be null or an integer in [1, ${LIMITS.convDepth}], got ${shortJson(cycle)}`);
    }
    s.cond = {
      width: num(h, 'cond_width', source, { int: true, min: 1, max: LIMITS.channels }),
      depth,
      mConv: num(h, 'cond_m_conv', source, { min: 0, max: LIMITS.multiplier }),
      growth: num(h, 'cond_dilation_growth_rate', source, { int: true, min: 1, max: LIMITS.dilationGrowth }),
      cycle: typeof cycle === 'number' ? cycle : null,
      resScale: h.cond_res_scale === true ? 1 / Math.sqrt(depth) : 1,
      down: vq.downs_t[level + 1],
      stride: vq.strides_t[level + 1],
      container: h.cond_c_res === 1 ? 'blocks' : 'model',
    };
    checkProduct(source, 'the conditioner\'s residual width (cond_m_conv x cond_width)', Math.trunc(s.cond.mConv * s.cond.width), LIMITS.channels);
    checkProduct(source, 'the conditioner\'s largest dilation', maxDilation(depth, s.cond.growth, s.cond.cycle), LIMITS.dilation);
  }
  checkProduct(source, 'the parameters this structure implies', priorParameterEstimate(s), LIMITS.priorParameters);
  return s;
}

/**
 * Roughly how many weights the structure has (transformer layers, embeddings, output, lyric
 * encoder, conditioner): enough to refuse a structure no machine could hold before any
 * layout is listed or buffer sized. Official 5b_lyrics: about 5.6e9.
 */
export function priorParameterEstimate(s: PriorStructure): number {
  const layers = (t: TransformerStructure) => t.depth * (t.width * t.state * 4 + 2 * t.width * t.mlp);
  let n = layers(s.prior) + s.prior.len * s.prior.width + 2 * s.bins * s.prior.width;
  n += (s.labels.genreBins + s.labels.artistBins + 3 * s.labels.tBins) * s.prior.width;
  if (s.encoder) n += layers(s.encoder) + s.encoder.len * s.encoder.width + s.nVocab * s.encoder.width;
  if (s.cond) n += s.cond.depth * 2 * 3 * s.cond.width * Math.trunc(s.cond.mConv * s.cond.width);
  return n;
}
