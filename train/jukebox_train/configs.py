"""Hyperparameters of the models this package trains, under the original's names, complete
(every key the engine reads; lib/hparams/presets.ts DEFAULTS), so that an export carries
everything the engine needs and nothing is filled in by guesswork.

`default`: the model shipped in models/default. `smoke`: a tiny one for CI (trains in seconds)."""
import copy

# The original's DEFAULTS for the model-shaping groups (same values as lib/hparams/presets.ts).
BASE = {
    'levels': 2, 'downs_t': [1, 1], 'strides_t': [2, 2], 'hvqvae_multipliers': None,
    'emb_width': 64, 'l_bins': 512, 'use_bottleneck': True,
    'depth': 3, 'width': 128, 'm_conv': 1.0, 'dilation_growth_rate': 1, 'dilation_cycle': None,
    'vqvae_reverse_decoder_dilation': True,
    'max_bow_genre_size': None, 'y_bins': 0, 'level': 0, 'cond_levels': None, 't_bins': 64,
    'y_cond_as_bias': False, 'copy_input': False, 'merged_decoder': False, 'single_enc_dec': False,
    'alignment_layer': None, 'alignment_head': None,
    'n_ctx': 1024, 'prior_depth': 3, 'prior_width': 128, 'heads': 1, 'attn_order': 0, 'blocks': None,
    'spread': None, 'zero_out': False, 'res_scale': False, 'pos_init': False, 'init_scale': 1.0,
    'm_attn': 0.25, 'm_mlp': 1.0,
    'cond_depth': 3, 'cond_width': 128, 'cond_m_conv': 1.0, 'cond_zero_out': False,
    'cond_res_scale': False, 'cond_dilation_growth_rate': 1, 'cond_dilation_cycle': None, 'cond_c_res': 0,
    'prime_depth': 3, 'prime_width': 128, 'prime_heads': 1, 'prime_attn_order': 0, 'prime_blocks': None,
    'prime_spread': None, 'prime_zero_out': False, 'prime_res_scale': False, 'prime_pos_init': False,
    'prime_init_scale': 1.0, 'prime_m_attn': 0.25, 'prime_m_mlp': 1.0, 'prime_loss_fraction': 0.1,
    'fp16_params': False, 'labels': True, 'labels_v3': False, 'sr': 44100,
    'min_duration': None, 'max_duration': None, 'n_tokens': 0, 'n_vocab': 0, 'use_tokens': False,
}

SR = 22050

# The names that shape a VQ-VAE (lib/hparams/presets.ts VQVAE_HPARAMS). An export stores the
# structure actually built: a VQ-VAE its own names, a prior all but these (its VQ-VAE's
# structure travels beside it in jukebox.vqvae_hparams); sr stays with both.
VQVAE_KEYS = frozenset(['levels', 'downs_t', 'strides_t', 'hvqvae_multipliers', 'emb_width', 'l_bins',
                        'use_bottleneck', 'depth', 'width', 'm_conv', 'dilation_growth_rate',
                        'dilation_cycle', 'vqvae_reverse_decoder_dilation', 'sr'])


def structure_of(kind, hparams):
    """The hyperparameters of one kind of model ('vqvae' or 'prior') out of a merged set."""
    if kind == 'vqvae':
        return {k: v for k, v in hparams.items() if k in VQVAE_KEYS}
    return {k: v for k, v in hparams.items() if k == 'sr' or k not in VQVAE_KEYS}

VQVAE = {
    'sr': SR, 'levels': 3, 'downs_t': [3, 2, 2], 'strides_t': [2, 2, 2],  # hops 8, 32, 128
    'emb_width': 64, 'l_bins': 512, 'width': 32, 'depth': 4, 'm_conv': 1.0,
    'dilation_growth_rate': 3, 'hvqvae_multipliers': None,
}

# Training-only settings (not written to the engine's metadata).
VQVAE_TRAIN = {
    'sample_length': 16384, 'batch': 8, 'lr': 3e-4, 'commit': 0.02, 'multispectral': 1.0,
    'lmix_l2': 1.0, 'lmix_linf': 0.02, 'emb_decay': 0.99, 'restart_threshold': 1.0,
    # multi-resolution STFT: (n_fft, hop, window) triples at 22.05 kHz (the original's 2048/1024/512
    # at 44.1 kHz, halved with the rate)
    'stft': [[1024, 120, 600], [512, 60, 300], [256, 30, 150]],
}

_LABELS = {'labels': True, 'labels_v3': False, 't_bins': 64, 'max_bow_genre_size': 1, 'n_tokens': 0,
           'n_vocab': 0, 'use_tokens': False}

TOP_PRIOR = {
    'level': 2, 'n_ctx': 512, 'prior_width': 256, 'prior_depth': 6, 'heads': 2, 'attn_order': 2,
    'blocks': 16, 'init_scale': 0.5, 'm_attn': 0.25, 'm_mlp': 1.0, 'res_scale': False,
    # timing labels cover total lengths 10 s (the dataset's shortest track) to 10 min
    'min_duration': 10.0, 'max_duration': 600.0, **_LABELS,
}

UPSAMPLER = {
    'n_ctx': 512, 'prior_width': 128, 'prior_depth': 6, 'heads': 1, 'attn_order': 2, 'blocks': 16,
    'init_scale': 0.5, 'cond_width': 128, 'cond_depth': 4, 'cond_m_conv': 1.0,
    'cond_dilation_growth_rate': 3, 'cond_dilation_cycle': 8, 'cond_c_res': 1, **_LABELS,
}

PRIOR_TRAIN = {'batch': 8, 'lr': 3e-4, 'warmup': 100}

SMOKE_VQVAE = dict(VQVAE, downs_t=[1, 1, 1], l_bins=32, width=8, depth=2, emb_width=8)
SMOKE_PRIOR = {'n_ctx': 64, 'prior_width': 32, 'prior_depth': 3, 'heads': 1, 'blocks': 8,
               'cond_width': 16, 'cond_depth': 2, 'min_duration': 1.0}


def full(h):
    """BASE with h on top: the complete hyperparameter set the engine reads."""
    out = copy.deepcopy(BASE)
    out.update(copy.deepcopy(h))
    return out


def vqvae_hparams(smoke=False):
    return full(SMOKE_VQVAE if smoke else VQVAE)


def prior_hparams(level, n_genres, n_artists, vq, smoke=False):
    """Top level (levels - 1): artist, genre and timing; other levels: upsamplers conditioned on
    the level above (labels without timing). y_bins = (genres, artists) as the original."""
    top = level == vq['levels'] - 1
    h = dict(TOP_PRIOR if top else UPSAMPLER)
    h['level'] = level
    if smoke:
        h.update({k: v for k, v in SMOKE_PRIOR.items() if top or k != 'min_duration'})
    h['y_bins'] = [n_genres, n_artists]
    h['sr'] = vq['sr']
    h['l_bins'] = vq['l_bins']
    if not top:
        h['cond_res_scale'] = level == 1  # as the official level-1 upsampler
        h['min_duration'] = None
        h['max_duration'] = None
    return full(h)
