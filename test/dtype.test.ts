/**
 * `jukebox convert --dtype f32|f16|bf16|int8`: the element conversions round to nearest-even
 * like PyTorch's .half()/.bfloat16(); the rule (2+ dimensions take the dtype, vectors keep
 * theirs; int8 only for a prior's transformer matrices and x_out) holds in the output; int8
 * is symmetric per output channel with its F32 scales beside each weight ("<key>.__scale"),
 * and files whose scales are missing, misshapen or non-finite are refused; a converted file
 * can be re-typed keeping its metadata; and the cost in accuracy (bench/dtype-report.mjs,
 * `npm run bench:dtype`) stays small on the fixtures and on the default model. The int8
 * kernels' parity per ISA is test/int8-kernels.test.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  convertElements, floatToBf16Bits, floatToHalfBits, int8Quantize, int8Scales, quantizeInt8, targetDtype,
} from '../lib/checkpoint/dtype-convert.js';
import { readSafetensorsHeader, writeSafetensors, type SafetensorsWriteTensor } from '../lib/checkpoint/index.js';
import { convertCheckpoint } from '../lib/convert.js';
import { JukeboxError } from '../lib/errors.js';
import { halfToFloat, nativeWeight, openModelFile, readFloat32 } from '../lib/model-file.js';
import { native } from '../lib/native.js';
import { loadPrior } from '../lib/index.js';
import { priorPlan } from '../lib/prior/layout.js';
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

  it('accuracy per dtype: f32 exact, f16, bf16 and int8 close on the fixtures; on the default model bits/token moves < 0.01 (int8 < 0.02)', async () => {
    const report = (await dtypeReport()) as { model: string; rows: { dtype: string; maxLogitDiff: number; deltaBits: number }[] }[];
    console.log(formatReport(report));
    for (const { model, rows } of report) {
      const by = Object.fromEntries(rows.map((r) => [r.dtype, r]));
      expect(by.f32!.maxLogitDiff, model).toBe(0); // the stored f32/f16 widened: exact
      expect(by.f16!.maxLogitDiff, model).toBeLessThan(0.05);
      expect(by.bf16!.maxLogitDiff, model).toBeLessThan(0.3);
      // int8: forward (packed GEMM) and cached decoding (GEMV) both close, bits/token within the 0.02
      expect(by.int8!.maxLogitDiff, model).toBeLessThan(0.5);
      expect(by['int8 decode']!.maxLogitDiff, model).toBeLessThan(0.5);
      expect(Math.abs(by.int8!.deltaBits), model).toBeLessThan(0.02);
      expect(Math.abs(by['int8 decode']!.deltaBits), model).toBeLessThan(0.02);
      if (model.startsWith('default')) {
        expect(Math.abs(by.f16!.deltaBits), model).toBeLessThan(0.01);
        expect(Math.abs(by.bf16!.deltaBits), model).toBeLessThan(0.01);
      }
    }
  }, 120_000);
});

describe('convert --dtype int8', () => {
  const vq = join(tmp, 'vqvae-i8.safetensors');
  const f32 = join(tmp, 'lyrics-f32.safetensors');
  const i8 = join(tmp, 'lyrics-int8.safetensors');
  const bytesOf = async (g: AsyncIterable<Uint8Array>) => {
    const parts: Uint8Array[] = [];
    for await (const c of g) parts.push(c);
    return Buffer.concat(parts);
  };
  const once = (b: Uint8Array) => (async function* () { yield b; })();

  it('quantises per output channel: scale = max|w| / 127, round to nearest (ties to even), clamp; zero channels scale 0', async () => {
    // (3, 4), channels along the columns (a Conv1D weight (in, out))
    const w = new Float32Array([1, 0, -2, 0.5, -1, 0, 1, 0.25, 0.5, 0, 1, -0.5]);
    const s = await int8Scales(once(new Uint8Array(w.buffer)), 'F32', [3, 4], 1, 't');
    expect([...s]).toEqual([1 / 127, 0, 2 / 127, 0.5 / 127].map(Math.fround));
    const q = new Int8Array(await bytesOf(int8Quantize(once(new Uint8Array(w.buffer)), 'F32', [3, 4], 1, s, 't')));
    // 0.5 / (1/127) = 63.5 and 1 / (2/127) = 63.5: ties go to the even 64
    expect([...q]).toEqual([127, 0, -127, 127, -127, 0, 64, 64, 64, 0, 64, -127]);
    // channels along the rows (x_out (bins, width))
    const r = await int8Scales(once(new Uint8Array(w.buffer)), 'F32', [3, 4], 0, 't');
    expect([...r]).toEqual([2 / 127, 1 / 127, 1 / 127].map(Math.fround));
    expect(quantizeInt8(2.5, 1)).toBe(2);
    expect(quantizeInt8(-2.5, 1)).toBe(-2);
    expect(quantizeInt8(3.5, 1)).toBe(4);
    expect(quantizeInt8(500, 1)).toBe(127);
    expect(quantizeInt8(-500, 1)).toBe(-127);
    expect(quantizeInt8(1, 0)).toBe(0);
    await expect(int8Scales(once(new Uint8Array(new Float32Array([1, NaN]).buffer)), 'F32', [1, 2], 1, 'bad')).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT' });
  });

  it('the rule: only the transformer matrices and x_out; embeddings, vectors, convs and the VQ-VAE as stored', () => {
    const m = [4, 4];
    expect(targetDtype('F16', m, 'int8', 'prior.transformer._attn_mods.3.attn.c_attn.w')).toBe('I8');
    expect(targetDtype('F32', m, 'int8', 'prior.transformer._attn_mods.0.attn.c_proj.w')).toBe('I8');
    expect(targetDtype('F32', m, 'int8', 'prior.transformer._attn_mods.7.attn.c_enc_kv.w')).toBe('I8');
    expect(targetDtype('F32', m, 'int8', 'prime_prior.transformer._attn_mods.1.mlp.c_fc.w')).toBe('I8');
    expect(targetDtype('F32', m, 'int8', 'prior.transformer._attn_mods.1.mlp.c_proj.w')).toBe('I8');
    expect(targetDtype('F32', m, 'int8', 'prior.x_out.weight')).toBe('I8');
    for (const key of ['prior.x_emb.weight', 'prior.pos_emb.pos_emb', 'prime_prior.x_emb.weight', 'prime_state_proj.w', 'prime_x_out.weight', 'y_emb.artist_emb.emb.weight', 'conditioner_blocks.0.x_emb.weight']) {
      expect(targetDtype('F16', m, 'int8', key), key).toBe('F16');
    }
    expect(targetDtype('F32', [4], 'int8', 'prior.transformer._attn_mods.0.attn.c_attn.b')).toBe('F32');
    expect(targetDtype('F32', [4, 4, 3], 'int8', 'decoders.0.model.0.weight')).toBe('F32');
    expect(targetDtype('F32', m, 'int8')).toBe('F32'); // no key: nothing to decide by
  });

  it('a fixture prior (lyric encoder, enc-dec layers) to int8: I8 + scales where the rule says, within half a step of the f32 weights; re-typed it round-trips', async () => {
    await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), vq);
    await convertCheckpoint(fixture('priors/prior_5b_lyrics_like/prior.zip.pth.tar'), f32, { vqvae: vq });
    const r = await convertCheckpoint(f32, i8, { dtype: 'int8' });
    const h = readSafetensorsHeader(i8), src = readSafetensorsHeader(f32);
    const file = openModelFile(i8), orig = openModelFile(f32);
    let int8 = 0;
    for (const [name, t] of src.tensors) {
      const out = h.tensors.get(name)!;
      const q = /\.(attn\.(c_attn|c_proj|c_enc_kv)|mlp\.(c_fc|c_proj))\.w$/.test(name) || name === 'prior.x_out.weight';
      expect(out.dtype, name).toBe(q ? 'I8' : t.dtype);
      expect(out.shape).toEqual(t.shape);
      if (!q) {
        expect(h.tensors.has(`${name}.__scale`)).toBe(false);
        continue;
      }
      int8++;
      const axis = name === 'prior.x_out.weight' ? 0 : 1;
      const sc = h.tensors.get(`${name}.__scale`)!;
      expect(sc.dtype).toBe('F32');
      expect(sc.shape).toEqual(axis === 1 ? [1, t.shape[1]] : [t.shape[0], 1]);
      const scales = readFloat32(file, `${name}.__scale`), deq = readFloat32(file, name), w = readFloat32(orig, name);
      const cols = t.shape[1]!;
      for (let i = 0; i < w.length; i++) {
        const s = scales[axis === 1 ? i % cols : Math.floor(i / cols)]!;
        // half a step, plus the one fp32 rounding of q * scale
        expect(Math.abs(deq[i]! - w[i]!), `${name}[${i}]`).toBeLessThanOrEqual(s * 0.5 + Math.abs(w[i]!) * 2 ** -23);
      }
      for (let c = 0; c < scales.length; c++) {
        let max = 0;
        for (let i = 0; i < w.length; i++) if ((axis === 1 ? i % cols : Math.floor(i / cols)) === c) max = Math.max(max, Math.abs(w[i]!));
        expect(scales[c]).toBe(Math.fround(max / 127));
      }
    }
    expect(int8).toBeGreaterThan(10);
    expect(r.dtypes.I8).toBe(int8);
    expect(JSON.parse(h.metadata['jukebox.dtype']!)).toMatchObject({ requested: 'int8' });
    // int8 again: the same bytes; to f32: exactly the dequantised values
    const again = join(tmp, 'lyrics-int8-again.safetensors');
    await convertCheckpoint(i8, again, { dtype: 'int8' });
    const ag = openModelFile(again);
    expect([...ag.tensors.keys()].sort()).toEqual([...file.tensors.keys()].sort());
    for (const [name, t] of file.tensors) expect(ag.tensors.get(name)!.read().equals(t.read()), name).toBe(true);
    const wide = join(tmp, 'lyrics-int8-f32.safetensors');
    await convertCheckpoint(i8, wide, { dtype: 'f32' });
    const wf = openModelFile(wide);
    expect([...wf.tensors.keys()].some((k) => k.endsWith('.__scale'))).toBe(false);
    expect(readFloat32(wf, 'prior.x_out.weight')).toEqual(readFloat32(file, 'prior.x_out.weight'));
    expect(readFloat32(wf, 'prior.transformer._attn_mods.0.attn.c_attn.w')).toEqual(readFloat32(file, 'prior.transformer._attn_mods.0.attn.c_attn.w'));
    // and it loads and runs
    const p = await loadPrior(i8);
    p.dispose();
  }, 60_000);

  it('a VQ-VAE converted with --dtype int8 stays as stored', async () => {
    const out = join(tmp, 'vqvae-int8.safetensors');
    await convertCheckpoint(vq, out, { dtype: 'int8' });
    const a = readSafetensorsHeader(vq), b = readSafetensorsHeader(out);
    for (const [name, t] of a.tensors) expect(b.tensors.get(name)!.dtype, name).toBe(t.dtype);
    expect(b.tensors.size).toBe(a.tensors.size);
  });

  it('the default model through the CLI: int8 written, and info shows each tensor\'s dtype with the scales', async () => {
    const out = join(tmp, 'cli-int8.safetensors');
    const bin = join(repoRoot, 'bin', 'jukebox.js');
    const { stdout } = await run(process.execPath, [bin, 'convert', join(repoRoot, 'models/default/prior_level_2.safetensors'), '--dtype', 'int8', '-o', out]);
    expect(stdout).toMatch(/prior, \d+ tensors \(.*\d+ I8.*\)/);
    const info = await run(process.execPath, [bin, 'info', out, '--keys']);
    expect(info.stdout).toMatch(/dtype: +int8 at convert time/);
    expect(info.stdout).toMatch(/int8: +\d+ matrices, each with its per-output-channel F32 scales/);
    expect(info.stdout).toMatch(/prior\.x_out\.weight {2}I8 \[\d+, \d+\] \(int8, scales in prior\.x_out\.weight\.__scale\)/);
    expect(info.stdout).toMatch(/prior\.x_out\.weight\.__scale {2}F32 \[\d+, 1\]/);
    expect(info.stdout).toMatch(/prior\.x_emb\.weight {2}F16 \[/);
    const help = await run(process.execPath, [bin, 'convert', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/int8: a prior's transformer matrices and x_out only.*VQ-VAE tensor stay as stored/);
  }, 60_000);

  describe('inconsistent int8 files are refused with clear errors', () => {
    const key = 'prior.transformer._attn_mods.0.attn.c_attn.w';
    /** A copy of the int8 fixture prior with its tensors edited. */
    async function edited(tag: string, edit: (ts: SafetensorsWriteTensor[]) => SafetensorsWriteTensor[]): Promise<string> {
      const h = readSafetensorsHeader(i8), buf = readFileSync(i8);
      const ts = [...h.tensors].map(([name, t]): SafetensorsWriteTensor => ({
        name, dtype: t.dtype, shape: t.shape, nbytes: t.end - t.begin, source: new Uint8Array(buf.subarray(h.dataOffset + t.begin, h.dataOffset + t.end)),
      }));
      const out = join(tmp, `hostile-${tag}.safetensors`);
      await writeSafetensors(out, edit(ts), h.metadata);
      return out;
    }
    const withScale = (ts: SafetensorsWriteTensor[], f: (s: Float32Array) => void) => ts.map((t) => {
      if (t.name !== `${key}.__scale`) return t;
      const s = new Float32Array(new Uint8Array(t.source as Uint8Array).buffer);
      f(s);
      return { ...t, source: new Uint8Array(s.buffer) };
    });

    it('missing scales', async () => {
      const p = await edited('missing', (ts) => ts.filter((t) => t.name !== `${key}.__scale`));
      await expect(loadPrior(p)).rejects.toMatchObject({ code: 'ERR_MISSING_KEY', message: expect.stringMatching(/is int8 but its scales ".*c_attn\.w\.__scale" are missing/) });
    });

    it('scales of the wrong length or dtype', async () => {
      const p = await edited('short', (ts) => ts.map((t) => (t.name === `${key}.__scale` ? { ...t, shape: [1, t.shape[1]! - 1], nbytes: t.nbytes - 4, source: (t.source as Uint8Array).subarray(4) } : t)));
      await expect(loadPrior(p)).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH', message: expect.stringMatching(/scales .* have shape \[1, \d+\].*needs \[1, \d+\] \(one per output channel\)/) });
      const q = await edited('axis', (ts) => ts.map((t) => (t.name === `${key}.__scale` ? { ...t, shape: [t.shape[1]!, 1] } : t)));
      await expect(loadPrior(q)).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
      const r = await edited('f16', (ts) => ts.map((t) => (t.name === `${key}.__scale` ? { ...t, dtype: 'F16', shape: [2, t.shape[1]!] } : t)));
      await expect(loadPrior(r)).rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/have dtype F16; expected F32/) });
    });

    it('non-finite or negative scales', async () => {
      for (const [tag, v] of [['nan', NaN], ['inf', Infinity], ['neg', -1]] as const) {
        const p = await edited(tag, (ts) => withScale(ts, (s) => { s[5] = v; }));
        await expect(loadPrior(p), tag).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_FORMAT', message: expect.stringMatching(/hold (NaN|Infinity|-1) at channel 5; scales must be finite and >= 0/) });
      }
    });

    it('int8 where the rule has none (an embedding), and scales with no int8 weight', async () => {
      const p = await edited('emb', (ts) => {
        const emb = ts.find((t) => t.name === 'prior.x_emb.weight')!;
        const n = emb.shape[0]! * emb.shape[1]!;
        return [...ts.filter((t) => t !== emb), { ...emb, dtype: 'I8', nbytes: n, source: new Uint8Array(n) }, { name: 'prior.x_emb.weight.__scale', dtype: 'F32', shape: [1, emb.shape[1]!], nbytes: 4 * emb.shape[1]!, source: new Uint8Array(4 * emb.shape[1]!) }];
      });
      await expect(loadPrior(p)).rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/int8 is only for the transformer matrices and x_out/) });
      const q = await edited('orphan', (ts) => [...ts, { name: 'prior.pos_emb.pos_emb.__scale', dtype: 'F32', shape: [1, 1], nbytes: 4, source: new Uint8Array(4) }]);
      await expect(loadPrior(q)).rejects.toMatchObject({ code: 'ERR_UNEXPECTED_KEY' });
    });

    it('the native loader checks the scales too (a plan that skips the JS checks)', async () => {
      const p = await edited('native-nan', (ts) => withScale(ts, (s) => { s[0] = NaN; }));
      const prior = await loadPrior(i8); // its structure, for the plan
      const file = openModelFile(p);
      const Prior = (native() as unknown as { Prior: new (plan: unknown) => { dispose(): void } }).Prior;
      expect(() => new Prior({ file: p, ...priorPlan(prior.structure, (k) => nativeWeight(file, k)) })).toThrow(/c_attn\.w\.__scale holds nan at channel 0; int8 scales must be finite/);
      const noScales = (k: string) => {
        const r = nativeWeight(file, k);
        return k === key && !(r instanceof Float32Array) ? { ...r, scales: undefined } : r;
      };
      expect(() => new Prior({ file: p, ...priorPlan(prior.structure, noScales) })).toThrow(/is int8 but its scales .* are missing/);
      const shortScales = (k: string) => {
        const r = nativeWeight(file, k);
        return k === key && !(r instanceof Float32Array) && r.scales ? { ...r, scales: { ...r.scales, nbytes: r.scales.nbytes - 4 } } : r;
      };
      expect(() => new Prior({ file: p, ...priorPlan(prior.structure, shortScales) })).toThrow(/does not hold \d+ scales/);
      prior.dispose();
    });
  });
});
