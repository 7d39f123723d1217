/**
 * VQ-VAEs with hyperparameters the public fixtures do not use (strides 4, m_conv 0.5 and 2,
 * dilation cycles, unreversed decoder dilations, one and two levels, growing multipliers),
 * built and run by the ORIGINAL code (test/fixtures/vqvae-variants/make_variants.py).
 * Loaded straight from the .pth.tar, hyperparameters from the checkpoint's own hps.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadVQVAE } from '../lib/vqvae/vqvae.js';
import { fixture, readF32, readI32 } from './helpers/fixtures.js';
import { maxAbs, maxAbsDiff } from './helpers/random.js';

interface Variant {
  hparams: Record<string, unknown>;
  n: number;
  legacy: boolean;
  codes: number[];
  hop_lengths: number[];
}
const variants = JSON.parse(readFileSync(fixture('vqvae-variants/manifest.json'), 'utf8')) as Record<string, Variant>;

describe.each(Object.entries(variants))('variant %s', (key, v) => {
  it(`${JSON.stringify(v.hparams)}: codes exact, audio within 1e-4 at every level`, async () => {
    const vq = await loadVQVAE(fixture(`vqvae-variants/${key}.pth.tar`));
    try {
      expect(vq.levels).toBe(v.hparams.levels);
      expect(vq.hopLengths).toEqual(v.hop_lengths);
      const x = readF32(`vqvae-variants/${key}_input.f32.bin`);
      const codes = await vq.encode(x);
      for (let l = 0; l < vq.levels; l++) {
        const ref = readI32(`vqvae-variants/${key}_codes_l${l}.i32.bin`);
        expect(codes[l][0].length).toBe(v.codes[l]);
        expect([...codes[l][0]], `level ${l}`).toEqual([...ref]);
        const [audio] = await vq.decode(ref, l);
        const want = readF32(`vqvae-variants/${key}_decode_l${l}.f32.bin`);
        expect(audio.length).toBe(v.n);
        expect(maxAbsDiff(audio, want), `level ${l}`).toBeLessThan(1e-4 * Math.max(1, maxAbs(want)));
      }
    } finally {
      vq.dispose();
    }
  });
});
