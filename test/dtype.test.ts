/**
 * `jukebox convert --dtype f32|f16|bf16`: the element conversions round to nearest-even like
 * PyTorch's .half()/.bfloat16(); the rule (2+ dimensions take the dtype, vectors keep theirs)
 * holds in the output; a converted file can be re-typed keeping its metadata; and the cost in
 * accuracy (bench/dtype-report.mjs, `npm run bench:dtype`) stays small on the fixtures and on
 * the default model.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { convertElements, floatToBf16Bits, floatToHalfBits, targetDtype } from '../lib/checkpoint/dtype-convert.js';
import { readSafetensorsHeader } from '../lib/checkpoint/index.js';
import { convertCheckpoint } from '../lib/convert.js';
import { JukeboxError } from '../lib/errors.js';
import { halfToFloat } from '../lib/model-file.js';
// @ts-expect-error plain ESM script without types
import { dtypeReport, formatReport } from '../bench/dtype-report.mjs';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { rng } from './helpers/random.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-dtype-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const run = promisify(execFile);

const bf16ToFloat = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;

describe('element conversion', () => {
  it('every half round-trips through float32 exactly (NaN stays NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = halfToFloat(h);
      const back = floatToHalfBits(f);
      if (Number.isNaN(f)) expect(Number.isNaN(halfToFloat(back))).toBe(true);
      else expect(back, `half 0x${h.toString(16)}`).toBe(h);
    }
  });

  it('float32 -> half is the nearest half, ties to even, overflow to inf', () => {
    const rand = rng(3);
    for (let i = 0; i < 200_000; i++) {
      // spread over the half range, subnormals included
      const x = Math.fround((rand() - 0.5) * 2 ** Math.floor(rand() * 40 - 26));
      const h = floatToHalfBits(x);
      const v = halfToFloat(h);
      const up = halfToFloat((h & 0x7fff) === 0x7bff ? h : h + 1), down = (h & 0x7fff) === 0 ? v : halfToFloat(h - 1);
      const err = Math.abs(x - v);
      expect(err).toBeLessThanOrEqual(Math.abs(x - up));
      expect(err).toBeLessThanOrEqual(Math.abs(x - down));
      if (err === Math.abs(x - up) && up !== v) expect(h & 1).toBe(0); // a tie went to the even one
    }
    expect(floatToHalfBits(65520)).toBe(0x7c00); // rounds past the largest half: inf
    expect(floatToHalfBits(65519)).toBe(0x7bff);
    expect(floatToHalfBits(-Infinity)).toBe(0xfc00);
    expect(floatToHalfBits(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to 0
    expect(floatToHalfBits(Math.fround(2 ** -25 * 1.0001))).toBe(1);
  });

  it('float32 -> bfloat16 rounds to nearest even and keeps NaN a NaN', () => {
    const f = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
    expect(floatToBf16Bits(f(0x3f808000))).toBe(0x3f80); // tie, even below
    expect(floatToBf16Bits(f(0x3f818000))).toBe(0x3f82); // tie, even above
    expect(floatToBf16Bits(f(0x3f808001))).toBe(0x3f81);
    expect(floatToBf16Bits(Infinity)).toBe(0x7f80);
    expect(Number.isNaN(bf16ToFloat(floatToBf16Bits(NaN)))).toBe(true);
    expect(Number.isNaN(bf16ToFloat(floatToBf16Bits(f(0x7f800001))))).toBe(true); // a NaN whose top half looks like inf
  });

  it('chunks of any dtype re-encode, and a partial element is an error', () => {
    const x = new Float32Array([1, -2.5, 3.140625, 65504]);
    const half = convertElements(new Uint8Array(x.buffer), 'F32', 'F16', 't');
    expect([...new Uint16Array(half.buffer, half.byteOffset, 4)].map(halfToFloat)).toEqual([1, -2.5, 3.140625, 65504]);
    const wide = convertElements(half, 'F16', 'F32', 't');
    expect([...new Float32Array(wide.buffer, wide.byteOffset, 4)]).toEqual([1, -2.5, 3.140625, 65504]);
    expect(() => convertElements(new Uint8Array(3), 'F16', 'F32', 't')).toThrow(JukeboxError);
  });

  it('the rule: 2+ dimensions take the dtype, vectors keep theirs, f32 widens all', () => {
    expect(targetDtype('F32', [4, 4], 'f16')).toBe('F16');
    expect(targetDtype('F32', [4], 'f16')).toBe('F32');
    expect(targetDtype('F16', [4], 'bf16')).toBe('F16');
    expect(targetDtype('F16', [4], 'f32')).toBe('F32');
    expect(targetDtype('F64', [4], 'f16')).toBe('F32');
    expect(targetDtype('I64', [4, 4], 'f16')).toBe('I64');
    expect(targetDtype('BF16', [2, 2, 3], undefined)).toBe('BF16');
  });
});

describe('convert --dtype', () => {
  const vq = join(tmp, 'vqvae.safetensors');
  const prior = join(tmp, 'prior.safetensors');

  it('a prior converted to f16: matrices F16, vectors F32; re-typed to f32 and back, the same bytes', async () => {
    await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), vq);
    const r = await convertCheckpoint(fixture('priors/prior_5b_lyrics_like/prior.zip.pth.tar'), prior, { vqvae: vq, dtype: 'f16' });
    const h = readSafetensorsHeader(prior);
    for (const [name, t] of h.tensors) expect(t.dtype, name).toBe(t.shape.length >= 2 ? 'F16' : 'F32');
    expect(r.dtypes.F16).toBeGreaterThan(0);
    expect(JSON.parse(h.metadata['jukebox.dtype']!)).toMatchObject({ requested: 'f16' });
    const wide = join(tmp, 'prior-f32.safetensors');
    await convertCheckpoint(prior, wide, { dtype: 'f32' });
    expect([...readSafetensorsHeader(wide).tensors.values()].every((t) => t.dtype === 'F32')).toBe(true);
    const again = join(tmp, 'prior-f16-again.safetensors');
    await convertCheckpoint(wide, again, { dtype: 'f16' });
    const data = (p: string) => readFileSync(p).subarray(readSafetensorsHeader(p).dataOffset);
    expect(data(again).equals(data(prior))).toBe(true);
    // the metadata a converted file carries (hyperparameters, VQ-VAE structure) survives
    const m = readSafetensorsHeader(again).metadata;
    expect(m['jukebox.hparams']).toBe(h.metadata['jukebox.hparams']);
    expect(m['jukebox.vqvae_hparams']).toBe(h.metadata['jukebox.vqvae_hparams']);
  });

  it('a converted file takes only --dtype; without it, it is refused', async () => {
    await expect(convertCheckpoint(prior, join(tmp, 'x.safetensors'))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(convertCheckpoint(prior, join(tmp, 'x.safetensors'), { dtype: 'bf16', preset: 'prior_5b' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(convertCheckpoint(prior, join(tmp, 'x.safetensors'), { dtype: 'f8' as 'f16' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('the CLI prints what it wrote per dtype, and info the dtype asked for', async () => {
    const out = join(tmp, 'cli-bf16.safetensors');
    const bin = join(repoRoot, 'bin', 'jukebox.js');
    const { stdout } = await run(process.execPath, [bin, 'convert', join(repoRoot, 'models/default/prior_level_2.safetensors'), '--dtype', 'bf16', '-o', out]);
    expect(stdout).toMatch(/prior, 80 tensors \(32 BF16, 48 F32\)/);
    const info = await run(process.execPath, [bin, 'info', out, '--keys']);
    expect(info.stdout).toMatch(/dtype: +bf16 at convert time/);
    expect(info.stdout).toMatch(/BF16 \[/);
  });

  it('accuracy per dtype: f32 exact, f16 and bf16 close on the fixtures; on the default model bits/token moves < 0.01', async () => {
    const report = (await dtypeReport()) as { model: string; rows: { dtype: string; maxLogitDiff: number; deltaBits: number }[] }[];
    console.log(formatReport(report));
    for (const { model, rows } of report) {
      const by = Object.fromEntries(rows.map((r) => [r.dtype, r]));
      expect(by.f32!.maxLogitDiff, model).toBe(0); // the stored f32/f16 widened: exact
      expect(by.f16!.maxLogitDiff, model).toBeLessThan(0.05);
      expect(by.bf16!.maxLogitDiff, model).toBeLessThan(0.3);
      if (model.startsWith('default')) {
        expect(Math.abs(by.f16!.deltaBits), model).toBeLessThan(0.01);
        expect(Math.abs(by.bf16!.deltaBits), model).toBeLessThan(0.01);
      }
    }
  }, 120_000);
});
