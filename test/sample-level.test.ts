/**
 * Windowed sampling of one level with the tiny fixture priors: window bookkeeping,
 * conditioning per window, resume equals an uninterrupted run, and batch splits draw the
 * same codes as the whole batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPrior, type Prior } from '../lib/prior/prior.js';
import { sampleLevel, type SampleLevelOptions } from '../lib/generate/sample-level.js';
import { fixture } from './helpers/fixtures.js';

const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');

function labelsFor(p: Prior, n: number, totalSamples: number) {
  const s = p.structure;
  return (start: number) => {
    const len = 4 + s.labels.maxBowGenreSize;
    const y = new Int32Array(n * len).fill(-1);
    for (let b = 0; b < n; b++) {
      y.set([totalSamples, start * s.rawToTokens, s.nCtx * s.rawToTokens, 3 + b, 1], b * len);
    }
    const lyrics = s.nTokens ? new Int32Array(n * s.nTokens).map((_, i) => 1 + (i % 26)) : undefined;
    return { y, lyrics };
  };
}

describe.each(['prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'])('%s top level', (name) => {
  let p: Prior;
  beforeAll(async () => {
    p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae });
  });
  afterAll(() => p.dispose());

  const opts = (n: number, total: number): SampleLevelOptions => ({
    prior: p, n, total, hopFraction: 0.25, temperature: 0.99, topK: 0, topP: 0, seed: 42, level: 2,
    // 200 tokens of 128 samples, in a 90 s song (5b needs >= 60 s)
    labelsFor: labelsFor(p, n, 3_969_000),
  });

  it('fills the level window by window with valid codes', async () => {
    const seen: number[] = [];
    const codes = await sampleLevel({ ...opts(2, 200), onWindow: (c) => void seen.push(c[0].length) }, [new Int32Array(0), new Int32Array(0)]);
    expect(codes.map((c) => c.length)).toEqual([200, 200]);
    for (const c of codes) for (const v of c) expect(v >= 0 && v < 256).toBe(true);
    // windows every 16 tokens after the first 64: 64, 80, ..., 192, then 200
    expect(seen).toEqual([64, 80, 96, 112, 128, 144, 160, 176, 192, 200]);
    // (the random 1b-like model draws mostly lyric tokens into music slots, which the
    // original's postprocess turns into code 0, so its samples can coincide)
    if (p.structure.lyrics !== 'combined') expect(codes[0]).not.toEqual(codes[1]);
  });

  it('a resumed run (from the codes saved after window 3) equals the uninterrupted one', async () => {
    const saved: Int32Array[][] = [];
    const full = await sampleLevel({ ...opts(2, 200), onWindow: (c) => void saved.push(c) }, [new Int32Array(0), new Int32Array(0)]);
    const resumed = await sampleLevel(opts(2, 200), saved[3]);
    expect(resumed.map((c) => [...c])).toEqual(full.map((c) => [...c]));
  });

  it('sample 1 alone (sampleOffset 1) draws what it drew in the batch of 2', async () => {
    const both = await sampleLevel(opts(2, 100), [new Int32Array(0), new Int32Array(0)]);
    const one = await sampleLevel(
      { ...opts(1, 100), sampleOffset: 1, labelsFor: (start) => {
        const l = labelsFor(p, 2, 3_969_000)(start);
        const len = l.y.length / 2;
        return { y: l.y.slice(len), lyrics: l.lyrics?.slice(l.lyrics.length / 2) };
      } },
      [new Int32Array(0)],
    );
    expect([...one[0]]).toEqual([...both[1]]);
  });

  it('a level shorter than a window is one partial window', async () => {
    const codes = await sampleLevel(opts(1, 40), [new Int32Array(0)]);
    expect(codes[0].length).toBe(40);
  });
});

describe('upsampler level', () => {
  it('conditions each window on the codes of the level above', async () => {
    const p = await loadPrior(fixture('priors/upsampler_like/prior.zip.pth.tar'), { vqvae });
    const upper = [new Int32Array(40).map((_, i) => (i * 7) % 256), new Int32Array(40).map((_, i) => (i * 13) % 256)];
    const o: SampleLevelOptions = {
      prior: p, n: 2, total: 160, hopFraction: 0.5, temperature: 0.99, topK: 0, topP: 0, seed: 9, level: 1,
      labelsFor: labelsFor(p, 2, 3_969_000), upper,
    };
    const a = await sampleLevel(o, [new Int32Array(0), new Int32Array(0)]);
    expect(a.map((c) => c.length)).toEqual([160, 160]);
    // other upper codes change the samples
    const b = await sampleLevel({ ...o, upper: [upper[1], upper[0]] }, [new Int32Array(0), new Int32Array(0)]);
    expect([...a[0]]).not.toEqual([...b[0]]);
    await expect(sampleLevel({ ...o, total: 32 }, [new Int32Array(0), new Int32Array(0)])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    p.dispose();
  });
});
