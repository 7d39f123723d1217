/**
 * The KV-cached decoder against the ORIGINAL sampler: teacher-forcing the original's
 * sampled tokens through our prefill + decode steps reproduces its per-step logits
 * (sample_*: from position 0, or after the lyric prefix for 1b_lyrics; primed_*: after a
 * prefix the original filled in chunks and we fill in one block-sparse pass).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPrior, type Prior } from '../lib/prior/prior.js';
import { fixture, readF32, readI32 } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');
const manifest = JSON.parse(readFileSync(fixture('priors/manifest.json'), 'utf8')) as { files: Record<string, { description: string }> };

function primedPrefix(name: string): number {
  const m = /first (\d+) tokens are the given prefix/.exec(manifest.files[`${name}/primed_tokens.i32.bin`].description);
  return Number(m![1]);
}

async function conditioning(p: Prior, name: string) {
  const s = p.structure;
  const w = s.prior.width, L = s.prior.len;
  let xCond: Float32Array | undefined = readF32(`priors/${name}/x_cond.f32.bin`);
  if (s.lyrics === 'combined') {
    const padded = new Float32Array(2 * L * w);
    for (let b = 0; b < 2; b++) padded.set(xCond.subarray(b * s.nCtx * w, (b + 1) * s.nCtx * w), (b * L + s.nTokens) * w);
    xCond = padded;
  }
  return {
    yCond: readF32(`priors/${name}/y_cond.f32.bin`),
    xCond,
    encoderKv: s.lyrics === 'encoder' ? readF32(`priors/${name}/encoder_kv.f32.bin`) : undefined,
  };
}

/** Prefill logits then step logits, per sample: every position of the window. */
function allLogits(out: { logits?: Float32Array; prefixLogits?: Float32Array }, prefix: number, L: number, bins: number): Float32Array {
  const got = new Float32Array(2 * L * bins);
  for (let b = 0; b < 2; b++) {
    got.set(out.prefixLogits!.subarray(b * prefix * bins, (b + 1) * prefix * bins), b * L * bins);
    got.set(out.logits!.subarray(b * (L - prefix) * bins, (b + 1) * (L - prefix) * bins), (b * L + prefix) * bins);
  }
  return got;
}

const names = ['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'];

describe.each(names)('%s KV-cached decoding', (name) => {
  it('reproduces the original sampler\'s per-step logits (sample_*)', async () => {
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const L = p.structure.prior.len, bins = p.structure.bins;
    const tokens = readI32(`priors/${name}/sample_tokens.i32.bin`);
    // 1b_lyrics primes with the lyric tokens; the others sample from position 0.
    const prefix = p.structure.lyrics === 'combined' ? p.structure.nTokens : 0;
    const out = await p.sample({
      n: 2, tokens, prefix, ...(await conditioning(p, name)), forced: tokens, recordLogits: true, recordPrefixLogits: true,
    });
    expect([...out.tokens]).toEqual([...tokens]);
    expect(maxAbsDiff(allLogits(out, prefix, L, bins), readF32(`priors/${name}/sample_logits.f32.bin`))).toBeLessThan(1e-4);
    p.dispose();
  });

  it.each([0, 16, 5, 1])('a prefix prefilled in chunks of %i (0: one block-sparse pass) gives the original\'s primed logits (primed_*)', async (chunk) => {
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const L = p.structure.prior.len, bins = p.structure.bins;
    const tokens = readI32(`priors/${name}/primed_tokens.i32.bin`);
    const prefix = primedPrefix(name);
    const out = await p.sample({
      n: 2, tokens, prefix, prefillChunk: chunk, ...(await conditioning(p, name)), forced: tokens, recordLogits: true, recordPrefixLogits: true,
    });
    expect(maxAbsDiff(allLogits(out, prefix, L, bins), readF32(`priors/${name}/primed_logits.f32.bin`))).toBeLessThan(1e-4);
    p.dispose();
  });
});

describe('sampling', () => {
  it('is reproducible for a seed, differs across seeds, and respects top-k', async () => {
    const name = 'prior_5b_like';
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const cond = await conditioning(p, name);
    const tokens = new Int32Array(2 * 64);
    const a = await p.sample({ n: 2, tokens, ...cond, seed: 7, temperature: 0.99 });
    const b = await p.sample({ n: 2, tokens, ...cond, seed: 7, temperature: 0.99 });
    const c = await p.sample({ n: 2, tokens, ...cond, seed: 8, temperature: 0.99 });
    expect([...a.tokens]).toEqual([...b.tokens]);
    expect([...a.tokens]).not.toEqual([...c.tokens]);
    // sample 1 alone with sampleOffset 1 draws what it drew in the batch of 2
    const one = await p.sample({ n: 1, tokens: new Int32Array(64), yCond: cond.yCond.subarray(64), xCond: cond.xCond!.subarray(64 * 64), seed: 7, temperature: 0.99, sampleOffset: 1 });
    expect([...one.tokens]).toEqual([...a.tokens.subarray(64)]);
    // top-k 1 is greedy: every token is the argmax of its logits
    const g = await p.sample({ n: 2, tokens, ...cond, seed: 3, topK: 1, recordLogits: true });
    for (let i = 0; i < 2 * 64; i++) {
      const row = g.logits!.subarray(i * 256, (i + 1) * 256);
      expect(g.tokens[i]).toBe(row.indexOf(Math.max(...row)));
    }
    await expect(p.sample({ n: 2, tokens, ...cond, topK: 5, topP: 0.9 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    p.dispose();
  });

  it('stops on AbortSignal and reports progress per token', async () => {
    const name = 'prior_5b_like';
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
    const cond = await conditioning(p, name);
    const seen: number[] = [];
    await p.sample({ n: 2, tokens: new Int32Array(128), ...cond, seed: 1, onProgress: (d, t) => seen.push(d / t) });
    expect(seen.at(-1)).toBe(1);
    const ac = new AbortController();
    ac.abort();
    await expect(p.sample({ n: 2, tokens: new Int32Array(128), ...cond, signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    p.dispose();
  });
});
