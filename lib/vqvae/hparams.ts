/**
 * The VQ-VAE's structural hyperparameters, validated, under the original's names
 * (jukebox/make_models.py make_vqvae; reference §a.3, §b).
 */
import { JukeboxError, shortJson } from '../errors.js';
import { boundedInt, boundedIntList, boundedNumber, checkProduct, LIMITS, maxDilation } from '../hparams/bounds.js';
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

/**
 * The structure, validated against bounds (lib/hparams/bounds.ts) before anything is sized
 * from it: a hostile file's hyperparameters end here with ERR_HPARAMS naming the limit.
 */
export function vqvaeHparams(h: Hparams, source: string): VQVAEHparams {
  const levels = boundedInt(h, 'levels', source, 1, LIMITS.levels);
  const m_conv = boundedNumber(h, 'm_conv', source, LIMITS.multiplier);
  const cycle = h.dilation_cycle;
  if (cycle !== null && cycle !== undefined && (typeof cycle !== 'number' || !Number.isSafeInteger(cycle) || cycle < 1 || cycle > LIMITS.convDepth)) {
    fail(source, `dilation_cycle must be null or an integer in [1, ${LIMITS.convDepth}], got ${shortJson(cycle)}`);
  }
  if (h.use_bottleneck === false) {
    fail(source, 'use_bottleneck is false: that VQ-VAE has no codebook, so it cannot produce codes');
  }
  const sr = boundedNumber(h, 'sr', source, LIMITS.sampleRate);
  if (!Number.isInteger(sr)) fail(source, `sr must be a whole number of samples per second, got ${sr}`);
  const downs_t = boundedIntList(h, 'downs_t', source, levels, 0, LIMITS.downs);
  const strides_t = boundedIntList(h, 'strides_t', source, levels, 1, LIMITS.stride);
  const out: VQVAEHparams = {
    levels,
    downs_t,
    strides_t,
    emb_width: boundedInt(h, 'emb_width', source, 1, LIMITS.channels),
    l_bins: boundedInt(h, 'l_bins', source, 1, LIMITS.codebook),
    width: boundedInt(h, 'width', source, 1, LIMITS.channels),
    depth: boundedInt(h, 'depth', source, 0, LIMITS.convDepth),
    m_conv,
    dilation_growth_rate: boundedInt(h, 'dilation_growth_rate', source, 1, LIMITS.dilationGrowth),
    dilation_cycle: (cycle as number | null | undefined) ?? null,
    hvqvae_multipliers:
      h.hvqvae_multipliers === null || h.hvqvae_multipliers === undefined
        ? null
        : boundedIntList(h, 'hvqvae_multipliers', source, levels, 1, LIMITS.multiplier),
    vqvae_reverse_decoder_dilation: h.vqvae_reverse_decoder_dilation !== false,
    sr,
  };
  // What the sizes add up to: hop lengths, the widest conv, the codebook, the widest dilation.
  checkProduct(source, 'the top level\'s hop length (product of strides_t ** downs_t)', hopLengths(out)[levels - 1]!, LIMITS.hop);
  const widest = out.width * Math.max(1, ...(out.hvqvae_multipliers ?? [1]));
  checkProduct(source, 'the widest convolution (width x hvqvae_multipliers)', widest, LIMITS.channels);
  checkProduct(source, 'the residual width (m_conv x width x multiplier)', Math.trunc(m_conv * widest), LIMITS.channels);
  checkProduct(source, 'the codebook (l_bins x emb_width)', out.l_bins * out.emb_width, LIMITS.codebookElements);
  checkProduct(source, 'the largest dilation (dilation_growth_rate ** depth within a cycle)', maxDilation(out.depth, out.dilation_growth_rate, out.dilation_cycle), LIMITS.dilation);
  return out;
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
