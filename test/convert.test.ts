/**
 * jukebox convert and loadVQVAE on bad input: every failure is a JukeboxError with a
 * stable code and a message naming the file and the key at fault.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readSafetensorsTensor, writeSafetensors, type SafetensorsWriteTensor } from '../lib/checkpoint/index.js';
import { convertCheckpoint } from '../lib/convert.js';
import { JukeboxError } from '../lib/errors.js';
import { modelInfo } from '../lib/info.js';
import { loadVQVAE } from '../lib/vqvae/vqvae.js';
import { fixture, hasShared, sharedFixturesDir } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-convert-'));
const good = join(tmp, 'vqvae.safetensors');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await convertCheckpoint(fixture('vqvae/vqvae.zip.pth.tar'), good);
});

async function rejection(p: Promise<unknown>): Promise<JukeboxError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(JukeboxError);
    return e as JukeboxError;
  }
  throw new Error('expected a rejection');
}

/** Rewrites the converted file with some tensors dropped/renamed/replaced. */
async function rewrite(out: string, edit: (tensors: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[], meta?: (m: Record<string, string>) => void) {
  const h = readSafetensorsHeader(good);
  let tensors: SafetensorsWriteTensor[] = [...h.tensors].map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    nbytes: t.end - t.begin,
    source: readSafetensorsTensor(h, name),
  }));
  tensors = edit(tensors);
  const metadata = { ...h.metadata };
  meta?.(metadata);
  await writeSafetensors(out, tensors, metadata);
}

describe('convert', () => {
  it('writes the hyperparameters under the original names and the same tensors', async () => {
    const info = modelInfo(good);
    expect(info.kind).toBe('vqvae');
    expect(info.format).toBe('safetensors');
    expect(info.tensors).toBe(525);
    expect(info.hparams).toMatchObject({ levels: 3, downs_t: [3, 2, 2], strides_t: [2, 2, 2], emb_width: 32, l_bins: 256, width: 16, depth: 3, hvqvae_multipliers: [2, 1, 1] });
    const h = readSafetensorsHeader(good);
    expect(h.metadata['jukebox.kind']).toBe('vqvae');
    expect(JSON.parse(h.metadata['jukebox.source'])).toMatchObject({ file: 'vqvae.zip.pth.tar', format: 'torch-zip' });
  });

  it('config file values win over the checkpoint hps, and a mismatch names the key', async () => {
    const cfg = join(tmp, 'wrong-width.json');
    writeFileSync(cfg, JSON.stringify({ width: 8 }));
    const e = await rejection(convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), join(tmp, 'x.safetensors'), { config: cfg }));
    expect(e.code).toBe('ERR_SHAPE_MISMATCH');
    expect(e.message).toContain('vqvae.legacy.pth.tar');
    expect(e.message).toContain('encoders.0.level_blocks.0.model.0.0.weight');
    expect(e.message).toContain('[16, 1, 4]'); // width 8 * multiplier 2
  });

  it('the official preset does not fit the tiny fixture once its hps are overridden back', async () => {
    const cfg = join(tmp, 'official.json');
    writeFileSync(cfg, JSON.stringify({ preset: 'vqvae', emb_width: 64, l_bins: 2048, width: 32, depth: 4 }));
    const e = await rejection(convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), join(tmp, 'x.safetensors'), { config: cfg }));
    expect(e.code).toBe('ERR_SHAPE_MISMATCH');
  });

  it('a deeper resnet than the checkpoint has is a missing key; a shallower one leaves unexpected keys', async () => {
    const deeper = join(tmp, 'deeper.json');
    writeFileSync(deeper, JSON.stringify({ depth: 4 }));
    let e = await rejection(convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), join(tmp, 'x.safetensors'), { config: deeper }));
    expect(e.code).toBe('ERR_MISSING_KEY');
    expect(e.message).toMatch(/missing weight "encoders\.0\.level_blocks\.0\.model\.0\.1\.model\.6\.model\.1\.weight"/);
    const shallower = join(tmp, 'shallower.json');
    writeFileSync(shallower, JSON.stringify({ depth: 2 }));
    e = await rejection(convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), join(tmp, 'x.safetensors'), { config: shallower }));
    expect(e.code).toBe('ERR_UNEXPECTED_KEY');
  });

  it('rejects unknown presets, unknown hyperparameter names and bad config files', async () => {
    const src = fixture('vqvae/vqvae.legacy.pth.tar');
    const out = join(tmp, 'x.safetensors');
    expect((await rejection(convertCheckpoint(src, out, { preset: 'prior_9b' }))).code).toBe('ERR_HPARAMS');
    const typo = join(tmp, 'typo.json');
    writeFileSync(typo, JSON.stringify({ widht: 8 }));
    const e = await rejection(convertCheckpoint(src, out, { config: typo }));
    expect(e.message).toContain('unknown hyperparameter "widht"');
    const notJson = join(tmp, 'bad.json');
    writeFileSync(notJson, '{ nope');
    expect((await rejection(convertCheckpoint(src, out, { config: notJson }))).code).toBe('ERR_HPARAMS');
  });

  it('a prior preset on a VQ-VAE file is a model-kind error', async () => {
    const e = await rejection(convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), join(tmp, 'x.safetensors'), { preset: 'prior_5b' }));
    expect(e.code).toBe('ERR_MODEL_KIND');
  });

  it.skipIf(!hasShared)('converts a prior only against its VQ-VAE, recording the VQ-VAE structure', async () => {
    const prior = join(sharedFixturesDir, 'upsampler_like', 'prior.legacy.pth.tar');
    const out = join(tmp, 'prior.safetensors');
    const e = await rejection(convertCheckpoint(prior, out, { preset: 'upsampler_level_0' }));
    expect(e.message).toContain('--vqvae');
    const r = await convertCheckpoint(prior, out, { preset: 'upsampler_level_0', vqvae: good });
    expect(r.kind).toBe('prior');
    const info = modelInfo(out);
    expect(info.vqvaeHparams).toMatchObject({ levels: 3, downs_t: [3, 2, 2] });
    // and a prior is not a VQ-VAE
    expect((await rejection(loadVQVAE(out))).code).toBe('ERR_MODEL_KIND');
  });

  it('refuses to convert a file that is already safetensors', async () => {
    expect((await rejection(convertCheckpoint(good, join(tmp, 'y.safetensors')))).code).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('loadVQVAE on damaged files', () => {
  it('missing key', async () => {
    const out = join(tmp, 'missing.safetensors');
    await rewrite(out, (ts) => ts.filter((t) => t.name !== 'decoders.1.out.bias'));
    const e = await rejection(loadVQVAE(out));
    expect(e.code).toBe('ERR_MISSING_KEY');
    expect(e.message).toContain('missing.safetensors');
    expect(e.message).toContain('"decoders.1.out.bias"');
  });

  it('unexpected key', async () => {
    const out = join(tmp, 'extra.safetensors');
    await rewrite(out, (ts) => [...ts, { name: 'decoders.3.out.bias', dtype: 'F32', shape: [1], nbytes: 4, source: new Uint8Array(4) }]);
    const e = await rejection(loadVQVAE(out));
    expect(e.code).toBe('ERR_UNEXPECTED_KEY');
    expect(e.message).toContain('decoders.3.out.bias');
  });

  it('shape mismatch', async () => {
    const out = join(tmp, 'shape.safetensors');
    await rewrite(out, (ts) =>
      ts.map((t) => (t.name === 'bottleneck.level_blocks.2.k' ? { ...t, shape: [128, 64] } : t)),
    );
    const e = await rejection(loadVQVAE(out));
    expect(e.code).toBe('ERR_SHAPE_MISMATCH');
    expect(e.message).toContain('bottleneck.level_blocks.2.k');
    expect(e.message).toContain('[256, 32]');
  });

  it('non-float weights', async () => {
    const out = join(tmp, 'dtype.safetensors');
    await rewrite(out, (ts) => ts.map((t) => (t.name === 'decoders.0.out.bias' ? { ...t, dtype: 'I32' } : t)));
    expect((await rejection(loadVQVAE(out))).code).toBe('ERR_DTYPE');
  });

  it('fp16 weights load and decode close to the fp32 model', async () => {
    const out = join(tmp, 'f16.safetensors');
    const h = readSafetensorsHeader(good);
    await rewrite(out, (ts) =>
      ts.map((t) => {
        const f32 = new Float32Array(new Uint8Array(t.source as Uint8Array).buffer);
        const f16 = new Uint16Array(f32.length);
        for (let i = 0; i < f32.length; i++) f16[i] = toHalf(f32[i]);
        return { ...t, dtype: 'F16', nbytes: f16.byteLength, source: new Uint8Array(f16.buffer) };
      }),
    );
    expect(h.tensors.size).toBe(525);
    const a = await loadVQVAE(good), b = await loadVQVAE(out);
    const codes = new Int32Array(128).map((_, i) => (i * 37) % 256);
    const [ya] = await a.decode(codes, 2);
    const [yb] = await b.decode(codes, 2);
    let err = 0, mag = 0;
    for (let i = 0; i < ya.length; i++) {
      err = Math.max(err, Math.abs(ya[i] - yb[i]));
      mag = Math.max(mag, Math.abs(ya[i]));
    }
    expect(err).toBeGreaterThan(0); // really fp16
    expect(err / mag).toBeLessThan(2e-2);
    a.dispose();
    b.dispose();
  });

  it('a kind without hyperparameters, a truncated file, and files that are not checkpoints', async () => {
    const noMeta = join(tmp, 'nometa.safetensors');
    await rewrite(noMeta, (ts) => ts, (m) => delete m['jukebox.hparams']);
    expect((await rejection(loadVQVAE(noMeta))).code).toBe('ERR_HPARAMS');

    const truncated = join(tmp, 'truncated.safetensors');
    const bytes = readFileSync(good);
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
    let e = await rejection(loadVQVAE(truncated));
    expect(e.code).toBe('ERR_CHECKPOINT_TRUNCATED');
    expect(e.message).toContain('truncated.safetensors');

    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'hello, I am not a checkpoint');
    e = await rejection(loadVQVAE(text));
    expect(e.code).toBe('ERR_CHECKPOINT_FORMAT');
    expect(e.message).toContain('notes.txt');

    expect((await rejection(loadVQVAE(join(tmp, 'does-not-exist.pth.tar')))).code).toBe('ERR_IO');
  });
});

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values: fine for this test
  if (exp >= 31) return sign | 0x7c00;
  let h = sign | (exp << 10) | (mant >>> 13);
  if (mant & 0x1000) h++; // round half up
  return h;
}
