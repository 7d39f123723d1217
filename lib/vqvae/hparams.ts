/**
 * The VQ-VAE's structural hyperparameters, validated, under the original's names
 * (jukebox/make_models.py make_vqvae; reference §a.3, §b).
 */
import { JukeboxError } from '../errors.js';
import type { Hparams } from '../hparams/presets.js';

export interface VQVAEHparams {
  levels: number;
  downs_t: number[];
  strides_t: number[];
  emb_width: number;
  l_bins: number;
  width: number;
  depth: number;
  m_conv: number;
  dilation_growth_rate: number;
  dilation_cycle: number | null;
  hvqvae_multipliers: number[] | null;
  vqvae_reverse_decoder_dilation: boolean;
  sr: number;
}

function fail(source: string, msg: string): never {
  throw new JukeboxError('ERR_HPARAMS', `${source}: ${msg}`);
}

function posInt(h: Hparams, key: string, source: string, allowZero = false): number {
  const v = h[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    fail(source, `hyperparameter ${key} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

function intList(h: Hparams, key: string, len: number, source: string, allowZero: boolean): number[] {
  const v = h[key];
  if (!Array.isArray(v) || v.length !== len || !v.every((x) => Number.isInteger(x) && x >= (allowZero ? 0 : 1))) {
    fail(source, `hyperparameter ${key} must be a list of ${len} ${allowZero ? 'non-negative' : 'positive'} integers (one per level), got ${JSON.stringify(v)}`);
  }
  return [...v];
}

export function vqvaeHparams(h: Hparams, source: string): VQVAEHparams {
  const levels = posInt(h, 'levels', source);
  const m_conv = h.m_conv;
  if (typeof m_conv !== 'number' || !(m_conv > 0)) fail(source, `m_conv must be a positive number, got ${JSON.stringify(m_conv)}`);
  const cycle = h.dilation_cycle;
  if (cycle !== null && cycle !== undefined && (typeof cycle !== 'number' || !Number.isInteger(cycle) || cycle < 1)) {
    fail(source, `dilation_cycle must be null or a positive integer, got ${JSON.stringify(cycle)}`);
  }
  const mult = h.hvqvae_multipliers;
  if (h.use_bottleneck === false) {
    fail(source, 'use_bottleneck is false: that VQ-VAE has no codebook, so it cannot produce codes');
  }
  if (typeof h.sr !== 'number' || !(h.sr > 0)) fail(source, `sr must be a positive number, got ${JSON.stringify(h.sr)}`);
  return {
    levels,
    downs_t: intList(h, 'downs_t', levels, source, true),
    strides_t: intList(h, 'strides_t', levels, source, false),
    emb_width: posInt(h, 'emb_width', source),
    l_bins: posInt(h, 'l_bins', source),
    width: posInt(h, 'width', source),
    depth: posInt(h, 'depth', source, true),
    m_conv,
    dilation_growth_rate: posInt(h, 'dilation_growth_rate', source),
    dilation_cycle: (cycle as number | null | undefined) ?? null,
    hvqvae_multipliers: mult === null || mult === undefined ? null : intList(h, 'hvqvae_multipliers', levels, source, false),
    vqvae_reverse_decoder_dilation: h.vqvae_reverse_decoder_dilation !== false,
    sr: h.sr,
  };
}

/** Samples per code at each level: cumulative product of stride ** down (hop_lengths). */
export function hopLengths(h: VQVAEHparams): number[] {
  const out: number[] = [];
  let acc = 1;
  for (let l = 0; l < h.levels; l++) {
    acc *= h.strides_t[l] ** h.downs_t[l];
    out.push(acc);
  }
  return out;
}
