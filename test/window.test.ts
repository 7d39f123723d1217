/**
 * One window job with native conditioning (Prior.sampleWindow / forwardWindow /
 * attentionWindow: int32 labels, upper codes and lyric tokens in, the engine conditions) gives
 * exactly what the same window gives with the conditioning computed through labels() /
 * condition() / encodeLyrics() and passed in as floats, for every kind of prior among the
 * fixtures (top level with timing, upsampler, 5b-style lyric encoder, 1b-style combined
 * lyrics); and bad conditioning inputs are refused with a clear error.
 */
import { describe, expect, it } from 'vitest';
import { loadPrior, type Prior } from '../lib/prior/prior.js';
import { fixture, readI32 } from './helpers/fixtures.js';

const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');
const names = ['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'];

/** The fixture's label rows split into [head] and lyric tokens, and the upsampler's upper codes. */
function conditioning(p: Prior, name: string) {
  const s = p.structure, n = 2;
  const y = readI32(`priors/${name}/y.i32.bin`);
  const rowLen = y.length / n, head = 4 + s.labels.maxBowGenreSize;
  const labels = new Int32Array(n * head), lyrics = new Int32Array(n * s.nTokens);
  for (let b = 0; b < n; b++) {
    labels.set(y.subarray(b * rowLen, b * rowLen + head), b * head);
    lyrics.set(y.subarray(b * rowLen + head, (b + 1) * rowLen), b * s.nTokens);
  }
  const upper = name === 'upsampler_like' ? readI32(`priors/${name}/z_cond.i32.bin`) : undefined;
  return { n, labels, lyrics, upper };
}

async function floatsFor(p: Prior, c: ReturnType<typeof conditioning>) {
  const s = p.structure, L = s.prior.len, w = s.prior.width;
  const { yCond, xCond: timing } = p.labels(c.labels, c.n);
  let xCond = timing ?? undefined;
  if (c.upper) xCond = await p.condition(c.upper, c.n);
  if (s.lyrics === 'combined' && xCond) {
    const padded = new Float32Array(c.n * L * w);
    for (let b = 0; b < c.n; b++) padded.set(xCond.subarray(b * s.nCtx * w, (b + 1) * s.nCtx * w), (b * L + s.nTokens) * w);
    xCond = padded;
  }
  const encoderKv = s.lyrics === 'encoder' ? await p.encodeLyrics(c.lyrics, c.n) : undefined;
  return { yCond, xCond, encoderKv };
}

describe.each(names)('native window conditioning: %s', (name) => {
  it('sampleWindow draws the tokens and logits sample() draws with JS-side conditioning; forward and attention agree', async () => {
    const p = await loadPrior(fixture(`priors/${name}/prior.zip.pth.tar`), { vqvae, backend: 'cpu' });
    const s = p.structure, L = s.prior.len;
    const c = conditioning(p, name);
    const tokens = new Int32Array(c.n * L);
    if (s.lyrics === 'combined') for (let b = 0; b < c.n; b++) tokens.set(c.lyrics, b * L);
    const prefix = s.lyrics === 'combined' ? s.nTokens : 0;
    const common = { n: c.n, tokens, prefix, seed: 5, stream: 7, temperature: 0.9, recordLogits: true };
    const native = await p.sampleWindow({ ...common, labels: c.labels, upper: c.upper, lyrics: s.lyrics === 'encoder' ? c.lyrics : undefined });
    const f = await floatsFor(p, c);
    const js = await p.sample({ ...common, ...f });
    expect(Array.from(native.tokens)).toEqual(Array.from(js.tokens));
    expect(Array.from(native.logits!)).toEqual(Array.from(js.logits!));
    const cond = { labels: c.labels, upper: c.upper, lyrics: s.lyrics === 'encoder' ? c.lyrics : undefined };
    const fwd = await p.forwardWindow({ tokens: native.tokens, n: c.n, ...cond });
    const fwdJs = (await p.forward({ tokens: native.tokens, n: c.n, ...f })).logits;
    expect(Array.from(fwd)).toEqual(Array.from(fwdJs));
    const layer = s.prior.attnFuncs.findIndex((a) => a === 6 || a === 7);
    if (layer >= 0) {
      const att = await p.attentionWindow({ tokens: native.tokens, n: c.n, ...cond, layer, head: 0 });
      const attJs = await p.attention({ tokens: native.tokens, n: c.n, ...f, layer, head: 0 });
      expect(Array.from(att)).toEqual(Array.from(attJs));
    }
    p.dispose();
  });
});

describe('native window conditioning: bad inputs', () => {
  it('wrong label rows, upper codes on a top-level prior, missing upper codes, lyrics on a model without an encoder', async () => {
    const top = await loadPrior(fixture('priors/prior_5b_like/prior.zip.pth.tar'), { vqvae, backend: 'cpu' });
    const up = await loadPrior(fixture('priors/upsampler_like/prior.zip.pth.tar'), { vqvae, backend: 'cpu' });
    const L = top.structure.prior.len, head = 4 + top.structure.labels.maxBowGenreSize;
    const tokens = new Int32Array(L);
    const row = conditioning(top, 'prior_5b_like').labels.slice(0, head);
    await expect(top.sampleWindow({ n: 1, tokens, labels: new Int32Array(head - 1) })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/label rows/) });
    await expect(top.sampleWindow({ n: 1, tokens, labels: row, upper: new Int32Array(4) })).rejects.toMatchObject({ code: 'ERR_MODEL_KIND' });
    await expect(top.sampleWindow({ n: 1, tokens, labels: row, lyrics: new Int32Array(4) })).rejects.toMatchObject({ code: 'ERR_MODEL_KIND' });
    const uh = 4 + up.structure.labels.maxBowGenreSize;
    const urow = conditioning(up, 'upsampler_like').labels.slice(0, uh);
    await expect(up.sampleWindow({ n: 1, tokens: new Int32Array(up.structure.prior.len), labels: urow })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/codes of the level above/) });
    const bad = new Int32Array(up.structure.nCtx / up.structure.condDownsample).fill(1 << 20);
    await expect(up.sampleWindow({ n: 1, tokens: new Int32Array(up.structure.prior.len), labels: urow, upper: bad })).rejects.toMatchObject({ code: 'ERR_CODES' });
    top.dispose();
    up.dispose();
  });
});
