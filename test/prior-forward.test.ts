/**
 * The priors' teacher-forced forward against the ORIGINAL implementation
 * (test/fixtures/priors, copied from ../shared/fixtures/public): the upsampler, 5b, 5b_lyrics
 * (separate lyric encoder, encoder-decoder attention) and 1b_lyrics (one transformer over
 * lyrics + music, prime attention) structures, with fp32 and fp16 weights. Conditioning
 * inputs (y_cond, x_cond, encoder_kv) come from the fixtures here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPrior } from '../lib/prior/prior.js';
import { fixture, readF32, readI32 } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

interface PriorFixture {
  attn_funcs: number[];
  block_ctx: number;
  transformer_n_ctx: number;
  prime_len_for_attn7?: number;
  prime_attn_funcs?: number[];
  vocab_size: number;
  add_cond_after_transformer: boolean;
}
const manifest = JSON.parse(readFileSync(fixture('priors/manifest.json'), 'utf8')) as { priors: Record<string, PriorFixture> };
const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');

const cases: [string, string, string, number][] = [
  ['upsampler_like', 'prior.zip.pth.tar', 'logits_forward', 1e-4],
  ['prior_5b_like', 'prior.zip.pth.tar', 'logits_forward', 1e-4],
  ['prior_5b_like', 'prior.fp16.zip.pth.tar', 'logits_forward_fp16weights', 5e-3],
  ['prior_5b_lyrics_like', 'prior.zip.pth.tar', 'logits_forward', 1e-4],
  ['prior_5b_lyrics_like', 'prior.fp16.zip.pth.tar', 'logits_forward_fp16weights', 5e-3],
  ['prior_1b_lyrics_like', 'prior.zip.pth.tar', 'logits_forward', 1e-4],
];

describe.each(cases)('%s (%s)', (name, file, logitsFile, tol) => {
  it('builds the original structure: attention types, context, blocks, vocabulary', async () => {
    const p = await loadPrior(fixture(`priors/${name}/${file}`), { vqvae });
    const m = manifest.priors[name];
    expect(p.structure.prior.attnFuncs).toEqual(m.attn_funcs);
    expect(p.structure.prior.len).toBe(m.transformer_n_ctx);
    expect(p.structure.prior.len / p.structure.prior.blocks).toBe(m.block_ctx);
    expect(p.structure.bins).toBe(m.vocab_size);
    expect(!p.structure.mergedDecoder).toBe(m.add_cond_after_transformer);
    if (m.prime_len_for_attn7) expect(p.structure.prior.primeLen).toBe(m.prime_len_for_attn7);
    if (m.prime_attn_funcs) expect(p.structure.encoder!.attnFuncs).toEqual(m.prime_attn_funcs);
    p.dispose();
  });

  it(`full forward logits match the original within ${tol}`, async () => {
    const p = await loadPrior(fixture(`priors/${name}/${file}`), { vqvae });
    const s = p.structure;
    const w = s.prior.width, L = s.prior.len;
    let tokens = readI32(`priors/${name}/z.i32.bin`);
    let xCond = readF32(`priors/${name}/x_cond.f32.bin`);
    if (s.lyrics === 'combined') {
      // prior_preprocess: lyric tokens then music codes shifted by n_vocab; x_cond is zero
      // over the lyric positions.
      tokens = readI32(`priors/${name}/combined_tokens.i32.bin`);
      const z = readI32(`priors/${name}/z.i32.bin`);
      for (let b = 0; b < 2; b++)
        for (let t = 0; t < s.nCtx; t++) expect(tokens[b * L + s.nTokens + t]).toBe(z[b * s.nCtx + t] + s.nVocab);
      const padded = new Float32Array(2 * L * w);
      for (let b = 0; b < 2; b++) padded.set(xCond.subarray(b * s.nCtx * w, (b + 1) * s.nCtx * w), (b * L + s.nTokens) * w);
      xCond = padded;
    }
    const encoderKv = s.lyrics === 'encoder' ? readF32(`priors/${name}/encoder_kv.f32.bin`) : undefined;
    const out = await p.forward({ tokens, n: 2, yCond: readF32(`priors/${name}/y_cond.f32.bin`), xCond, encoderKv, record: true });
    expect(maxAbsDiff(out.input!, readF32(`priors/${name}/transformer_in.f32.bin`))).toBeLessThan(1e-6);
    const ref = readF32(`priors/${name}/${logitsFile}.f32.bin`);
    expect(out.logits.length).toBe(ref.length);
    expect(maxAbsDiff(out.logits, ref)).toBeLessThan(tol);
    p.dispose();
  });
});

describe.each(['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'])('%s conditioning', (name) => {
  it('label conditioner (start embedding, timing bins) and upsampler conditioner match the original', async () => {
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const s = p.structure;
    const y = readI32(`priors/${name}/y.i32.bin`);
    const yw = y.length / 2, len = 4 + s.labels.maxBowGenreSize;
    const labels = new Int32Array(2 * len);
    for (let b = 0; b < 2; b++) labels.set(y.subarray(b * yw, b * yw + len), b * len);
    const { yCond, xCond } = p.labels(labels, 2);
    expect(maxAbsDiff(yCond, readF32(`priors/${name}/y_cond.f32.bin`))).toBeLessThan(1e-6);
    if (s.upsampler) {
      expect(xCond).toBeNull();
      const x = await p.condition(readI32(`priors/${name}/z_cond.i32.bin`), 2);
      expect(maxAbsDiff(x, readF32(`priors/${name}/x_cond.f32.bin`))).toBeLessThan(1e-4);
    } else {
      // the timing embeddings are table rows: equal bins give bit-identical sums
      expect(maxAbsDiff(xCond!, readF32(`priors/${name}/x_cond.f32.bin`))).toBeLessThan(1e-6);
    }
    p.dispose();
  });
});

describe('5b_lyrics lyric encoder', () => {
  it('encoder_kv of the lyric tokens matches the original within 1e-4', async () => {
    const name = 'prior_5b_lyrics_like';
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const s = p.structure;
    const y = readI32(`priors/${name}/y.i32.bin`);
    const yw = y.length / 2, off = 4 + s.labels.maxBowGenreSize;
    const lyrics = new Int32Array(2 * s.nTokens);
    for (let b = 0; b < 2; b++) lyrics.set(y.subarray(b * yw + off, b * yw + off + s.nTokens), b * s.nTokens);
    const kv = await p.encodeLyrics(lyrics, 2);
    expect(maxAbsDiff(kv, readF32(`priors/${name}/encoder_kv.f32.bin`))).toBeLessThan(1e-4);
    p.dispose();
  });
});

describe('converted priors', () => {
  it('convert --vqvae records the structure; the .safetensors gives the same logits as the .pth.tar', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { convertCheckpoint } = await import('../lib/convert.js');
    const tmp = mkdtempSync(join(tmpdir(), 'jukebox-prior-'));
    try {
      const vq = join(tmp, 'vqvae.safetensors');
      await convertCheckpoint(vqvae, vq);
      const name = 'prior_5b_lyrics_like';
      const out = join(tmp, 'prior.safetensors');
      await convertCheckpoint(fixture(`priors/${name}/prior.fp16.zip.pth.tar`), out, { vqvae: vq });
      const p = await loadPrior(out);
      const res = await p.forward({
        tokens: readI32(`priors/${name}/z.i32.bin`),
        n: 2,
        yCond: readF32(`priors/${name}/y_cond.f32.bin`),
        xCond: readF32(`priors/${name}/x_cond.f32.bin`),
        encoderKv: readF32(`priors/${name}/encoder_kv.f32.bin`),
      });
      expect(maxAbsDiff(res.logits, readF32(`priors/${name}/logits_forward_fp16weights.f32.bin`))).toBeLessThan(5e-3);
      p.dispose();
      // a prior whose hyperparameters do not match its weights is refused at convert time
      const { writeFileSync } = await import('node:fs');
      const cfg = join(tmp, 'deeper.json');
      writeFileSync(cfg, JSON.stringify({ prior_depth: 21 }));
      await expect(convertCheckpoint(fixture(`priors/${name}/prior.zip.pth.tar`), join(tmp, 'x.safetensors'), { vqvae: vq, config: cfg })).rejects.toMatchObject({
        code: 'ERR_MISSING_KEY',
        message: expect.stringContaining('prior.transformer._attn_mods.20.attn.c_attn.w'),
      });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('label errors', () => {
  it('refuses out-of-range artists, genres and timing with clear errors', async () => {
    const p = await loadPrior(fixture('priors/prior_5b_like/prior.zip.pth.tar'), { vqvae });
    const row = (total: number, offset: number, artist: number, genre: number) => Int32Array.from([total, offset, 8192, artist, genre, -1, -1, -1, -1]);
    expect(() => p.labels(row(3_000_000, 0, 40, 1), 1)).toThrow(/artist id 40/);
    expect(() => p.labels(row(3_000_000, 0, 3, 20), 1)).toThrow(/genre id 20/);
    // 5b's min_duration is 60 s: a 10 s song is outside the total-length range
    expect(() => p.labels(row(441_000, 0, 3, 1), 1)).toThrow(/timing value/);
    expect(() => p.labels(row(3_000_000, 0, 3, 1).subarray(0, 5), 1)).toThrow(/label rows/);
    p.dispose();
  });
});

describe('prior loading errors', () => {
  it('needs its VQ-VAE, refuses a VQ-VAE file, and checks tokens', async () => {
    const path = fixture('priors/prior_5b_like/prior.zip.pth.tar');
    await expect(loadPrior(path)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(loadPrior(vqvae, { vqvae })).rejects.toMatchObject({ code: 'ERR_MODEL_KIND' });
    const p = await loadPrior(path, { vqvae });
    const bad = new Int32Array(2 * 64).fill(0);
    bad[5] = 256;
    await expect(p.forward({ tokens: bad, n: 2, yCond: new Float32Array(2 * 64) })).rejects.toMatchObject({ code: 'ERR_CODES' });
    p.dispose();
    await expect(p.forward({ tokens: bad, n: 2, yCond: new Float32Array(2 * 64) })).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
  });
});
