/**
 * The VQ-VAE against the ORIGINAL implementation's outputs (test/fixtures/vqvae, copied
 * from ../shared/fixtures/public): codes exactly equal at every level, decoded audio within
 * 1e-4, for the legacy and zip checkpoints directly and after conversion to safetensors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../lib/convert.js';
import { isJukeboxError } from '../lib/errors.js';
import { loadVQVAE, type VQVAE } from '../lib/vqvae/vqvae.js';
import { fixture, manifest, readF32, readI32 } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-vqvae-'));
const converted = join(tmp, 'vqvae.safetensors');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(async () => {
  await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), converted);
});

const sources = [
  ['legacy .pth.tar', () => fixture('vqvae/vqvae.legacy.pth.tar')],
  ['zip .pth.tar', () => fixture('vqvae/vqvae.zip.pth.tar')],
  ['converted .safetensors', () => converted],
] as const;

describe.each(sources)('tiny VQ-VAE from %s', (_label, path) => {
  let vq: VQVAE;
  beforeAll(async () => {
    vq = await loadVQVAE(path());
  });
  afterAll(() => vq.dispose());

  it('has the fixture hyperparameters', () => {
    const m = manifest();
    expect(vq.levels).toBe(3);
    expect(vq.hopLengths).toEqual(m.vqvae.hop_lengths);
    expect(vq.codebookSize).toBe(256);
    expect(vq.hparams.emb_width).toBe(32);
  });

  it('encodes the waveform to exactly the reference codes at every level', async () => {
    const x = readF32('input/waveform.f32.bin');
    const codes = await vq.encode(x);
    for (let l = 0; l < 3; l++) {
      const ref = readI32(`vqvae/codes_l${l}.i32.bin`);
      const second = readI32(`vqvae/codes_second_l${l}.i32.bin`);
      const gap = readF32(`vqvae/codes_gap_l${l}.f32.bin`);
      const got = codes[l][0];
      expect(got.length).toBe(ref.length);
      let mismatches = 0;
      for (let i = 0; i < ref.length; i++) {
        if (got[i] === ref[i]) continue;
        // The fixture allows the second-nearest code only where the margin is tiny.
        expect(gap[i] < 1e-5 && got[i] === second[i], `level ${l} frame ${i}: ${got[i]} vs ${ref[i]}`).toBe(true);
        mismatches++;
      }
      expect(mismatches).toBe(0);
    }
  });

  it('decodes the reference codes to the reference audio within 1e-4 at every level', async () => {
    for (let l = 0; l < 3; l++) {
      const codes = readI32(`vqvae/codes_l${l}.i32.bin`);
      const [audio] = await vq.decode(codes, l);
      const ref = readF32(`vqvae/decode_l${l}.f32.bin`);
      expect(audio.length).toBe(ref.length);
      expect(maxAbsDiff(audio, ref), `level ${l}`).toBeLessThan(1e-4);
    }
  });

  it('decodes a batch of 2 random code sequences within 1e-4 at every level', async () => {
    for (let l = 0; l < 3; l++) {
      const codes = readI32(`vqvae/random_codes_l${l}.i32.bin`);
      const t = codes.length / 2;
      const out = await vq.decode({ n: 2, t, data: codes }, l);
      const ref = readF32(`vqvae/decode_random_l${l}.f32.bin`);
      expect(out.length).toBe(2);
      for (let b = 0; b < 2; b++) {
        expect(maxAbsDiff(out[b], ref.subarray(b * 16384, (b + 1) * 16384)), `level ${l} item ${b}`).toBeLessThan(1e-4);
      }
    }
  });
});

describe('VQ-VAE API behaviour', () => {
  it('encodes a batch: clips of equal and different lengths give each clip its own codes', async () => {
    const vq = await loadVQVAE(converted);
    const x = readF32('input/waveform.f32.bin');
    const half = x.slice(0, 8192);
    const [l0, l2] = await vq.encode([x, half, x], { levels: [0, 2] });
    const ref0 = readI32('vqvae/codes_l0.i32.bin');
    expect([...l0[0]]).toEqual([...ref0]);
    expect([...l0[2]]).toEqual([...ref0]);
    expect(l0[1].length).toBe(1024);
    expect(l2[1].length).toBe(64);
    vq.dispose();
  });

  it('reports progress up to the total and honours AbortSignal', async () => {
    const vq = await loadVQVAE(converted);
    const codes = readI32('vqvae/codes_l0.i32.bin');
    const seen: number[] = [];
    await vq.decode(codes, 0, { onProgress: (p) => seen.push(p.fraction) });
    expect(seen.at(-1)).toBe(1);
    const ac = new AbortController();
    ac.abort();
    await expect(vq.decode(codes, 0, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // abort while running: a long input so the job is still going
    const long = new Int32Array(1 << 18);
    const ac2 = new AbortController();
    const p = vq.decode(long, 0, { signal: ac2.signal });
    setTimeout(() => ac2.abort(), 5);
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    vq.dispose();
  });

  it('rejects out-of-range codes, bad levels, short audio and use after dispose with clear errors', async () => {
    const vq = await loadVQVAE(converted);
    await expect(vq.decode(new Int32Array([0, 1, 256]), 0)).rejects.toMatchObject({ code: 'ERR_CODES' });
    await expect(vq.decode(new Int32Array([0, -1]), 1)).rejects.toMatchObject({ code: 'ERR_CODES' });
    await expect(vq.decode(new Int32Array([0]), 3)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(vq.encode(new Float32Array(100))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    vq.dispose();
    vq.dispose(); // idempotent
    await expect(vq.decode(new Int32Array([0]), 0)).rejects.toSatisfy((e: unknown) => isJukeboxError(e, 'ERR_DISPOSED'));
  });
});
