/**
 * Every hyperparameter name the original Jukebox defines: the DEFAULTS groups of
 * jukebox/hparams.py (openai/jukebox 08efbbc, line of each group below), which
 * setup_hparams merges into one Hyperparams and the training script saves in a checkpoint's
 * `hps`, plus the names its scripts add at run time (train.py, sample.py, data_processor.py).
 * Only the names matter here: what they shape is decided in presets.ts (KNOWN_HPARAMS);
 * every other original name is kept as metadata, and a name that is in none of these lists
 * is refused with the closest one suggested.
 */
export const ORIGINAL_GROUPS: Readonly<Record<string, readonly string[]>> = {
  // hparams.py:323
  rcall: ['rcall_command', 'git_commit'],
  // hparams.py:328
  script: [
    'name', 'debug_mem', 'debug_eval_files', 'debug_speed', 'debug_iters', 'debug_batch',
    'debug_grad_accum', 'debug_inputs', 'local_path', 'local_logdir', 'max_len', 'max_log', 'save',
    'save_iters', 'seed', 'prior', 'log_steps', 'func',
  ],
  // hparams.py:349
  data: [
    'audio_files_dir', 'finetune', 'english_only', 'bs', 'bs_sample', 'nworkers', 'aug_shift',
    'aug_blend', 'train_test_split', 'train_shrink_factor', 'test_shrink_factor', 'p_unk',
    'min_duration', 'max_duration', 'n_tokens', 'n_vocab', 'use_tokens', 'curr_epoch',
  ],
  // hparams.py:370
  vqvae: [
    'restore_vqvae', 'levels', 'downs_t', 'strides_t', 'hvqvae_multipliers', 'revival_threshold',
    'emb_width', 'l_bins', 'l_mu', 'commit', 'spectral', 'multispectral', 'loss_fn', 'linf_k',
    'lmix_l1', 'lmix_l2', 'lmix_linf', 'use_bottleneck',
  ],
  // hparams.py:391
  vqvae_conv_block: [
    'depth', 'width', 'm_conv', 'dilation_growth_rate', 'dilation_cycle',
    'vqvae_reverse_decoder_dilation',
  ],
  // hparams.py:400
  prior: [
    'restore_prior', 'restore_prior_ddp', 'max_bow_genre_size', 'y_bins', 'level', 'cond_levels',
    't_bins', 'y_cond_as_bias', 'copy_input', 'merged_decoder', 'single_enc_dec', 'alignment_layer',
    'alignment_head',
  ],
  // hparams.py:416
  prior_attn_block: [
    'n_ctx', 'prior_depth', 'prior_width', 'heads', 'attn_order', 'blocks', 'spread', 'attn_dropout',
    'resid_dropout', 'emb_dropout', 'zero_out', 'res_scale', 'pos_init', 'init_scale', 'm_attn',
    'm_mlp', 'c_res', 'c_attn', 'c_mlp',
  ],
  // hparams.py:438
  cond_conv_block: [
    'cond_depth', 'cond_width', 'cond_m_conv', 'cond_zero_out', 'cond_res_scale',
    'cond_dilation_growth_rate', 'cond_dilation_cycle', 'cond_c_res',
  ],
  // hparams.py:449
  sample: [
    'primed_chunk_size', 'selected_artists', 'temp_top', 'temp_rest', 'sample_length_in_seconds',
    'total_sample_length_in_seconds',
  ],
  // hparams.py:458
  prime: ['prime_loss_fraction', 'restore_decoder'],
  // hparams.py:463
  prime_attn_block: [
    'prime_depth', 'prime_width', 'prime_heads', 'prime_attn_order', 'prime_blocks', 'prime_spread',
    'prime_attn_dropout', 'prime_resid_dropout', 'prime_emb_dropout', 'prime_zero_out',
    'prime_res_scale', 'prime_pos_init', 'prime_init_scale', 'prime_m_attn', 'prime_m_mlp',
    'prime_c_res', 'prime_c_attn', 'prime_c_mlp', 'prime_rel_attn', 'prime_posemb_timescale',
  ],
  // hparams.py:486
  opt: [
    'epochs', 'lr', 'clip', 'beta1', 'beta2', 'ignore_grad_norm', 'weight_decay', 'eps', 'lr_warmup',
    'lr_decay', 'lr_gamma', 'lr_scale', 'lr_use_linear_decay', 'lr_start_linear_decay',
    'lr_use_cosine_decay',
  ],
  // hparams.py:504
  fp16: ['fp16', 'fp16_params', 'fp16_loss_scale', 'fp16_scale_window', 'fp16_opt'],
  // hparams.py:512
  train_test_eval: [
    'labels', 'labels_v3', 'dump', 'ema', 'ema_fused', 'cpu_ema', 'cpu_ema_freq', 'reset_best_loss',
    'reset_step', 'reset_opt', 'reset_shd', 'train', 'test', 'sample', 'sampler', 'codes_logdir',
    'date', 'labeller', 'label_line', 'iters_before_update', 'grad_accum_iters', 'mu', 'piped',
    'pipe_depth', 'break_train', 'break_test', 'exit_train',
  ],
  // hparams.py:542
  audio: [
    'n_fft', 'hop_length', 'window_size', 'sr', 'channels', 'wav', 'n_inps', 'n_hops', 'n_segment',
    'n_total_segment', 'n_segment_each', 'prime_chunks', 'sample_length', 'sample_hop_length',
    'max_silence_pad_length', 'ignore_boundaries', 'use_nonrelative_specloss', 'multispec_loss_n_fft',
    'multispec_loss_hop_length', 'multispec_loss_window_size',
  ],
  // hparams.py:565
  distributed: ['bucket'],
  // Added at run time: train.py:298-299 (ngpus, argv), data/data_processor.py:28 (bandwidth),
  // sample.py:32-101 and its command line (model, mode, codes_file, audio_file,
  // prompt_length_in_seconds, port, n_samples, hop_fraction), align.py:89 (logdir),
  // utils/io.py:103-104 (dataset, root), tests/test_sample.py:72 (hop_lengths).
  runtime: [
    'ngpus', 'argv', 'bandwidth', 'model', 'mode', 'codes_file', 'audio_file',
    'prompt_length_in_seconds', 'port', 'n_samples', 'hop_fraction', 'logdir', 'dataset', 'root',
    'hop_lengths',
  ],
};

/** name -> the original group it belongs to. */
export const ORIGINAL_HPARAMS: ReadonlyMap<string, string> = new Map(
  Object.entries(ORIGINAL_GROUPS).flatMap(([group, names]) => names.map((n) => [n, group] as const)),
);

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The original name closest to `name`, when one is close enough to be a plausible typo. */
export function closestHparam(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase().replace(/-/g, '_');
  for (const known of ORIGINAL_HPARAMS.keys()) {
    const d = known === lower ? 0 : distance(lower, known);
    if (d < bestD) {
      bestD = d;
      best = known;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
