/**
 * The official hyperparameter sets, under the original's names (jukebox/hparams.py at
 * 08efbbc; ../shared/jukebox-reference.md §a). A preset is the original's DEFAULTS for the
 * model-structure groups with the named set applied on top, exactly as setup_hparams builds
 * it. Training-only values (optimiser, losses, data loading) are left out: nothing here
 * needs them.
 */
export type HparamValue = number | string | boolean | null | number[];
export type Hparams = Record<string, HparamValue>;

/** DEFAULTS of the groups that shape a model (hparams.py:370-484, 546). */
const DEFAULTS: Hparams = {
  // DEFAULTS["vqvae"]
  levels: 2,
  downs_t: [1, 1],
  strides_t: [2, 2],
  hvqvae_multipliers: null,
  emb_width: 64,
  l_bins: 512,
  use_bottleneck: true,
  // DEFAULTS["vqvae_conv_block"]
  depth: 3,
  width: 128,
  m_conv: 1.0,
  dilation_growth_rate: 1,
  dilation_cycle: null,
  vqvae_reverse_decoder_dilation: true,
  // DEFAULTS["prior"]
  max_bow_genre_size: null,
  y_bins: 0,
  level: 0,
  cond_levels: null,
  t_bins: 64,
  y_cond_as_bias: false,
  copy_input: false,
  merged_decoder: false,
  single_enc_dec: false,
  alignment_layer: null,
  alignment_head: null,
  // DEFAULTS["prior_attn_block"]
  n_ctx: 1024,
  prior_depth: 3,
  prior_width: 128,
  heads: 1,
  attn_order: 0,
  blocks: null,
  spread: null,
  zero_out: false,
  res_scale: false,
  pos_init: false,
  init_scale: 1.0,
  m_attn: 0.25,
  m_mlp: 1.0,
  // DEFAULTS["cond_conv_block"]
  cond_depth: 3,
  cond_width: 128,
  cond_m_conv: 1.0,
  cond_zero_out: false,
  cond_res_scale: false,
  cond_dilation_growth_rate: 1,
  cond_dilation_cycle: null,
  cond_c_res: 0,
  // DEFAULTS["prime_attn_block"]
  prime_depth: 3,
  prime_width: 128,
  prime_heads: 1,
  prime_attn_order: 0,
  prime_blocks: null,
  prime_spread: null,
  prime_zero_out: false,
  prime_res_scale: false,
  prime_pos_init: false,
  prime_init_scale: 1.0,
  prime_m_attn: 0.25,
  prime_m_mlp: 1.0,
  prime_loss_fraction: 0.1,
  // DEFAULTS["fp16"], DEFAULTS["train_test_eval"], DEFAULTS["audio"], DEFAULTS["data"]
  fp16_params: false,
  labels: true,
  labels_v3: false,
  sr: 44100,
  min_duration: null,
  max_duration: null,
  n_tokens: 0,
  n_vocab: 0,
  use_tokens: false,
};

const LABELS: Hparams = { y_bins: [120, 4111], t_bins: 128, max_bow_genre_size: 5, n_vocab: 80 };
const LABELS_V3: Hparams = { y_bins: [604, 7898], t_bins: 64, max_bow_genre_size: 1, n_vocab: 79 };

const UPSAMPLERS: Hparams = {
  n_ctx: 8192,
  prior_width: 1920,
  prior_depth: 72,
  heads: 1,
  attn_order: 2,
  blocks: 128,
  init_scale: 0.4,
  cond_width: 1024,
  cond_depth: 16,
  cond_dilation_growth_rate: 3,
  cond_dilation_cycle: 8,
  cond_c_res: 1,
  use_tokens: false,
  prime_loss_fraction: 0.0,
  fp16_params: false,
  ...LABELS,
};

const SETS: Record<string, Hparams> = {
  vqvae: {
    levels: 3,
    downs_t: [3, 2, 2],
    strides_t: [2, 2, 2],
    emb_width: 64,
    l_bins: 2048,
    hvqvae_multipliers: [2, 1, 1],
    width: 32,
    depth: 4,
    m_conv: 1.0,
    dilation_growth_rate: 3,
  },
  upsampler_level_0: { level: 0, ...UPSAMPLERS },
  upsampler_level_1: { level: 1, cond_res_scale: true, ...UPSAMPLERS },
  prior_5b: {
    level: 2,
    n_ctx: 8192,
    prior_width: 4800,
    prior_depth: 72,
    heads: 8,
    attn_order: 2,
    blocks: 128,
    init_scale: 0.1,
    min_duration: 60.0,
    max_duration: 600.0,
    use_tokens: false,
    n_tokens: 0,
    prime_loss_fraction: 0.0,
    merged_decoder: true,
    fp16_params: true,
    ...LABELS,
  },
  prior_5b_lyrics: {
    level: 2,
    n_ctx: 8192,
    prior_width: 4800,
    prior_depth: 79,
    heads: 8,
    attn_order: 10,
    blocks: 128,
    init_scale: 0.1,
    prime_width: 1280,
    prime_depth: 18,
    prime_heads: 4,
    prime_attn_order: 2,
    prime_blocks: 32,
    prime_init_scale: 0.7,
    min_duration: 23.8,
    max_duration: 600.0,
    use_tokens: true,
    n_tokens: 512,
    prime_loss_fraction: 0.4,
    merged_decoder: true,
    fp16_params: true,
    alignment_layer: 68,
    alignment_head: 2,
    ...LABELS,
  },
  prior_1b_lyrics: {
    level: 2,
    n_ctx: 6144,
    prior_width: 2048,
    prior_depth: 72,
    heads: 2,
    attn_order: 12,
    blocks: 64,
    init_scale: 0.2,
    labels_v3: true,
    min_duration: 17.84,
    max_duration: 600.0,
    use_tokens: true,
    n_tokens: 384,
    prime_loss_fraction: 0.4,
    single_enc_dec: true,
    fp16_params: false,
    alignment_layer: 63,
    alignment_head: 0,
    ...LABELS_V3,
  },
};

export type PresetName =
  | 'vqvae'
  | 'upsampler_level_0'
  | 'upsampler_level_1'
  | 'prior_5b'
  | 'prior_5b_lyrics'
  | 'prior_1b_lyrics';

export const PRESET_NAMES = Object.keys(SETS) as PresetName[];

/** Which kind of model each preset describes. */
export function presetKind(name: PresetName): 'vqvae' | 'prior' {
  return name === 'vqvae' ? 'vqvae' : 'prior';
}

export function isPresetName(name: string): name is PresetName {
  return Object.prototype.hasOwnProperty.call(SETS, name);
}

/** DEFAULTS with the named set applied. Returns a fresh object. */
export function preset(name: PresetName): Hparams {
  return structuredClone({ ...DEFAULTS, ...SETS[name] });
}

/** The original's defaults alone (a model built from a config with no preset). */
export function defaults(): Hparams {
  return structuredClone(DEFAULTS);
}

/** Every hyperparameter name this package understands. */
export const KNOWN_HPARAMS: ReadonlySet<string> = new Set(Object.keys(DEFAULTS));

/** The names that shape a VQ-VAE (DEFAULTS["vqvae"], ["vqvae_conv_block"], and sr). */
export const VQVAE_HPARAMS: ReadonlySet<string> = new Set([
  'levels', 'downs_t', 'strides_t', 'hvqvae_multipliers', 'emb_width', 'l_bins', 'use_bottleneck',
  'depth', 'width', 'm_conv', 'dilation_growth_rate', 'dilation_cycle', 'vqvae_reverse_decoder_dilation', 'sr',
]);

/**
 * The structure of one kind of model out of a merged set: a VQ-VAE keeps its own names, a
 * prior everything but the VQ-VAE's (its VQ-VAE's structure is stored beside it), so a
 * converted prior no longer carries the base VQ-VAE defaults it never used. sr stays with
 * both (the prior's timing signal uses it). The rest goes to `rest`.
 */
export function splitByKind(h: Hparams, kind: 'vqvae' | 'prior'): { own: Hparams; rest: Hparams } {
  const own: Hparams = {};
  const rest: Hparams = {};
  for (const [k, v] of Object.entries(h)) {
    const mine = k === 'sr' || (kind === 'vqvae' ? VQVAE_HPARAMS.has(k) : !VQVAE_HPARAMS.has(k));
    (mine ? own : rest)[k] = v;
  }
  return { own, rest };
}
