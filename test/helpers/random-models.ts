/**
 * A complete tiny model set with random weights, written as converted .safetensors files
 * the way "jukebox convert" writes them: a 3-level VQ-VAE and three priors (top level with
 * timing, two upsamplers), so generate() can be tested on structures of the tests' choosing.
 */
import { join } from 'node:path';
import { writeSafetensors, type SafetensorsWriteTensor } from '../../lib/checkpoint/index.js';
import { defaults, type Hparams } from '../../lib/hparams/presets.js';
import { FORMAT_TAG, META } from '../../lib/model-file.js';
import { priorKeys } from '../../lib/prior/layout.js';
import { priorStructure } from '../../lib/prior/structure.js';
import { vqvaeHparams } from '../../lib/vqvae/hparams.js';
import { vqvaeLayout } from '../../lib/vqvae/layout.js';
import { randn, rng } from './random.js';

async function write(path: string, keys: Map<string, number[]>, metadata: Record<string, string>, seed: number) {
  const rand = rng(seed);
  const tensors: SafetensorsWriteTensor[] = [...keys].map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNormWeight = /ln(_\d)?\.weight$/.test(name);
    const data = isNormWeight ? new Float32Array(n).fill(1) : randn(n, rand, name.endsWith('.k') ? 1 : 0.2);
    return { name, dtype: 'F32', shape, nbytes: data.byteLength, source: new Uint8Array(data.buffer) };
  });
  await writeSafetensors(path, tensors, { [META.format]: FORMAT_TAG, ...metadata });
}

export const tinyVQVAE: Hparams = { ...defaults(), levels: 3, downs_t: [1, 1, 1], strides_t: [2, 2, 2], emb_width: 8, l_bins: 16, width: 8, depth: 1, hvqvae_multipliers: null };

const priorBase: Hparams = { ...defaults(), y_bins: [6, 7], t_bins: 16, max_bow_genre_size: 2, prior_width: 16, heads: 2, m_attn: 0.25 };
export const tinyPriors: Hparams[] = [
  { ...priorBase, level: 0, n_ctx: 16, prior_depth: 3, attn_order: 2, blocks: 4, cond_width: 8, cond_depth: 2, cond_dilation_growth_rate: 3, cond_c_res: 1 },
  { ...priorBase, level: 1, n_ctx: 16, prior_depth: 3, attn_order: 2, blocks: 4, cond_width: 8, cond_depth: 2, cond_res_scale: true },
  { ...priorBase, level: 2, n_ctx: 16, prior_depth: 6, attn_order: 2, blocks: 4, min_duration: 0.001, max_duration: 10 },
];

/** Writes vqvae.safetensors and prior_{0,1,2}.safetensors into dir; returns their paths. */
export async function writeTinyModels(dir: string): Promise<{ vqvae: string; priors: string[] }> {
  const vq = vqvaeHparams(tinyVQVAE, 'tiny');
  const vqvae = join(dir, 'vqvae.safetensors');
  await write(vqvae, vqvaeLayout(vq).keys, { [META.kind]: 'vqvae', [META.hparams]: JSON.stringify(tinyVQVAE) }, 1);
  const priors: string[] = [];
  for (const h of tinyPriors) {
    const path = join(dir, `prior_${h.level}.safetensors`);
    const s = priorStructure(h, vq, path);
    await write(path, priorKeys(s), { [META.kind]: 'prior', [META.hparams]: JSON.stringify(h), [META.vqvaeHparams]: JSON.stringify(tinyVQVAE) }, 10 + (h.level as number));
    priors.push(path);
  }
  return { vqvae, priors };
}
