/**
 * Cached decoding == full forward, per attention type, on small random models the test
 * builds itself: dense, row, column, previous-block, encoder-decoder and prime attention,
 * with block sizes that do and do not divide the lyric prefix, decoded from the start and
 * after prefixes prefilled in one pass or in chunks.
 */
import { describe, expect, it } from 'vitest';
import { defaults, type Hparams } from '../lib/hparams/presets.js';
import { native } from '../lib/native.js';
import { priorKeys, priorPlan } from '../lib/prior/layout.js';
import { priorStructure, type PriorStructure } from '../lib/prior/structure.js';
import { vqvaeHparams } from '../lib/vqvae/hparams.js';
import { maxAbs, maxAbsDiff, randn, rng } from './helpers/random.js';

const vq = vqvaeHparams({ ...defaults(), levels: 3, downs_t: [3, 2, 2], strides_t: [2, 2, 2], emb_width: 8, l_bins: 32, width: 8, depth: 1 }, 'test');

interface NativePrior {
  forward(t: Int32Array, n: number, y: Float32Array, x: Float32Array | null, xl: number, e: Float32Array | null, rec: boolean): Promise<{ logits: Float32Array }>;
  sample(o: Record<string, unknown>): Promise<{ tokens: Int32Array; logits?: Float32Array; prefixLogits?: Float32Array }>;
  dispose(): void;
}

function build(h: Hparams, seed: number): { p: NativePrior; s: PriorStructure } {
  const s = priorStructure({ ...defaults(), labels: true, y_bins: [4, 5], t_bins: 8, max_bow_genre_size: 1, min_duration: 1, max_duration: 100, level: 2, ...h }, vq, 'random');
  const rand = rng(seed);
  const shapes = priorKeys(s);
  const ref = (key: string) => {
    const shape = shapes.get(key)!;
    const n = shape.reduce((a, b) => a * b, 1);
    // LayerNorm weights near 1 keep activations O(1) through the stack
    if (/ln(_\d)?\.weight$/.test(key) || key.endsWith('_ln.weight')) return randn(n, rand, 0.1).map((v) => 1 + v);
    return randn(n, rand, shape.length === 1 ? 0.1 : 0.3);
  };
  const P = (native() as unknown as { Prior: new (plan: unknown) => NativePrior }).Prior;
  return { p: new P(priorPlan(s, ref)), s };
}

const cases: [string, Hparams][] = [
  ['dense (attn_order 0)', { n_ctx: 24, prior_width: 16, prior_depth: 2, heads: 2, attn_order: 0, blocks: null }],
  ['row + column (attn_order 1)', { n_ctx: 24, prior_width: 16, prior_depth: 2, heads: 2, attn_order: 1, blocks: 4 }],
  ['row, column, previous block (attn_order 2)', { n_ctx: 30, prior_width: 16, prior_depth: 3, heads: 1, attn_order: 2, blocks: 5 }],
  ['row, column, previous, dense (attn_order 9)', { n_ctx: 32, prior_width: 24, prior_depth: 4, heads: 3, attn_order: 9, blocks: 8 }],
  ['encoder-decoder lyrics (attn_order 6)', {
    n_ctx: 24, prior_width: 16, prior_depth: 4, heads: 2, attn_order: 6, blocks: 4, use_tokens: true, n_tokens: 10, n_vocab: 80,
    prime_width: 8, prime_depth: 2, prime_heads: 1, prime_attn_order: 2, prime_blocks: 5,
  }],
  // combined lyrics + music: 12 + 30 = 42 positions, blocks of 7: 12 is not a multiple of 7
  ['prime + dense, lyric prefix not a multiple of the block (attn_order 12)', {
    n_ctx: 30, prior_width: 16, prior_depth: 16, heads: 2, attn_order: 12, blocks: 6, use_tokens: true, n_tokens: 12, n_vocab: 79,
    single_enc_dec: true, labels_v3: true,
  }],
  ['prime + dense, lyric prefix a multiple of the block (attn_order 12)', {
    n_ctx: 28, prior_width: 16, prior_depth: 16, heads: 2, attn_order: 12, blocks: 6, use_tokens: true, n_tokens: 14, n_vocab: 79,
    single_enc_dec: true, labels_v3: true,
  }],
];

describe.each(cases)('%s', (_name, h) => {
  it('decoding from the start, one-pass prefill and chunked prefill all equal the full forward', async () => {
    const { p, s } = build(h, 7);
    const n = 2, L = s.prior.len, w = s.prior.width, bins = s.bins;
    const rand = rng(99);
    const tokens = new Int32Array(n * L).map(() => Math.floor(rand() * bins));
    const yCond = randn(n * w, rand);
    const xCond = randn(n * L * w, rand, 0.5);
    const encoderKv = s.encoder ? randn(n * s.nTokens * w, rand) : null;
    const full = (await p.forward(tokens, n, yCond, xCond, L, encoderKv, false)).logits;
    expect(maxAbs(full)).toBeGreaterThan(0.1);
    for (const [prefix, chunk] of [[0, 0], [Math.floor(L / 3), 0], [L - 5, 0], [Math.floor(L / 2), 5], [L - 1, 3]]) {
      const out = await p.sample({
        n, tokens, prefix, prefillChunk: chunk, yCond, xCond, encoderKv, forced: tokens, recordLogits: true, recordPrefixLogits: true,
      });
      const got = new Float32Array(n * L * bins);
      for (let b = 0; b < n; b++) {
        got.set(out.prefixLogits!.subarray(b * prefix * bins, (b + 1) * prefix * bins), b * L * bins);
        got.set(out.logits!.subarray(b * (L - prefix) * bins, (b + 1) * (L - prefix) * bins), (b * L + prefix) * bins);
      }
      expect(maxAbsDiff(got, full), `prefix ${prefix} chunk ${chunk}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(full)));
    }
    p.dispose();
  });
});
