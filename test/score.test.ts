/**
 * `jukebox score --dump-logits` in its three modes against the ORIGINAL implementation's
 * logits for every fixture prior: full forward (logits_forward), KV-cached decoding
 * teacher-forced with the original's samples (sample_logits), and a prefix prefilled in the
 * original's chunks then decoded (primed_logits); fp16-weight variants against
 * logits_forward_fp16weights. Both forms of the command are spawned as a user runs them:
 *
 *   score CODES --prior P.safetensors --vqvae V.safetensors --labels y.npy [--upper U.npy] --mode forward|cached|chunked ...
 *   score PRIOR --inputs X.npz --mode forward|sample|primed ...   (the older form, kept for its scripts)
 *
 * The legacy-format checkpoints are checked too when ../shared is present.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../lib/convert.js';
import { encodeNpy, parseNpy, readNpz, writeNpz, type NpzWritableArray } from '../lib/npz.js';
import { loadPrior } from '../lib/prior/prior.js';
import { scorePrior, type ScoreModeName } from '../lib/score.js';
import { cudaEmu } from './helpers/cuda-emu.js';
import { fixture, hasShared, readF32, readI32, repoRoot, sharedFixturesDir } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-score-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const vqvae = fixture('vqvae/vqvae.legacy.pth.tar');
const manifest = JSON.parse(readFileSync(fixture('priors/manifest.json'), 'utf8')) as {
  files: Record<string, { description: string; shape: number[] }>;
};
const names = ['upsampler_like', 'prior_5b_like', 'prior_5b_lyrics_like', 'prior_1b_lyrics_like'];
const refFile = { forward: 'logits_forward', cached: 'sample_logits', chunked: 'primed_logits' } as const;

async function jukebox(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // `--backend cuda` runs the emulated CUDA library (test/helpers/cuda-emu.ts).
  const env = args.includes('cuda') ? cudaEmu.env({ CI: '1' }) : { ...process.env, CI: '1' };
  try {
    const { stdout, stderr } = await run(process.execPath, [join(repoRoot, 'bin', 'jukebox.js'), ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function primedDescription(name: string): string {
  return manifest.files[`${name}/primed_tokens.i32.bin`].description;
}
/** Transformer positions the original's primed_sample was given (1b: its lyric tokens too). */
function primedPrefix(name: string): number {
  return Number(/first (\d+) tokens are the given prefix/.exec(primedDescription(name))![1]);
}
/** The original's chunk_size: the first of the chunks it filled the cache in. */
function primedChunk(name: string): number {
  return Number(/in chunks of \[(\d+)/.exec(primedDescription(name))![1]);
}

// ---- the older form: score PRIOR --inputs X.npz ----------------------------------------------

/** The older form's inputs for a mode: y, and the teacher-forced tokens (combined for 1b). */
function inputs(name: string, mode: 'forward' | 'sample' | 'primed') {
  const combinedModel = name === 'prior_1b_lyrics_like';
  const yShape = manifest.files[`${name}/y.i32.bin`].shape;
  const tokFile = mode === 'forward' ? (combinedModel ? 'combined_tokens' : 'z') : mode === 'sample' ? 'sample_tokens' : 'primed_tokens';
  const tok = readI32(`priors/${name}/${tokFile}.i32.bin`);
  const arrays: Record<string, { dtype: 'int32'; shape: number[]; data: Int32Array }> = {
    y: { dtype: 'int32', shape: yShape, data: readI32(`priors/${name}/y.i32.bin`) },
    [combinedModel ? 'combined' : 'tokens']: { dtype: 'int32', shape: [2, tok.length / 2], data: tok },
  };
  if (name === 'upsampler_like') {
    const up = readI32(`priors/${name}/z_cond.i32.bin`);
    arrays.upper = { dtype: 'int32', shape: [2, up.length / 2], data: up };
  }
  return arrays;
}

const legacyRef = { forward: 'logits_forward', sample: 'sample_logits', primed: 'primed_logits' } as const;

describe.each(names)('jukebox score PRIOR --inputs (older form): %s', (name) => {
  it.each(['forward', 'sample', 'primed'] as const)('--mode %s --dump-logits reproduces the original within 1e-4', async (mode) => {
    const inp = join(tmp, `${name}-${mode}.npz`);
    writeNpz(inp, inputs(name, mode));
    const out = join(tmp, `${name}-${mode}-logits.npz`);
    const args = ['score', fixture(`priors/${name}/prior.zip.pth.tar`), '--vqvae', vqvae, '--inputs', inp, '--mode', mode, '--dump-logits', out];
    if (mode === 'primed') args.push('--prefix', String(primedPrefix(name)));
    const r = await jukebox(...args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/bits per token/);
    const logits = readNpz(out).logits.data as Float32Array;
    expect(maxAbsDiff(logits, readF32(`priors/${name}/${legacyRef[mode]}.f32.bin`))).toBeLessThan(1e-4);
  });
});

// ---- the promised form: score CODES --prior P --vqvae V ... --------------------------------

/** Converted copies of the fixtures, so the promised form runs on .safetensors as written. */
const conv = { vqvae: join(tmp, 'vqvae.safetensors'), prior: (name: string) => join(tmp, `${name}.safetensors`) };
beforeAll(async () => {
  await convertCheckpoint(vqvae, conv.vqvae);
  for (const name of names) await convertCheckpoint(fixture(`priors/${name}/prior.zip.pth.tar`), conv.prior(name), { vqvae: conv.vqvae });
});

function writeNpy(file: string, arr: NpzWritableArray): string {
  const path = join(tmp, file);
  writeFileSync(path, encodeNpy(arr));
  return path;
}

function readLogits(path: string) {
  const arr = parseNpy(readFileSync(path), path);
  expect(arr.dtype).toBe('float32');
  return { shape: arr.shape, data: arr.data as Float32Array };
}

const N_TOKENS_1B = 24, N_VOCAB_1B = 79;

/**
 * The music codes of a fixture's token file, (2, n_ctx). The 1b-like prior's sequences are
 * [lyric tokens, codes + n_vocab]; its sampler draws from the whole combined vocabulary, so
 * a sampled music slot can hold a lyric token, which the original's prior_postprocess turns
 * into code 0 (subtract n_vocab, clamp at 0). `clampedAt[b]` is row b's first such slot.
 */
function musicCodes(name: string, file: string): { data: Int32Array; clampedAt: (number | undefined)[] } {
  const tok = readI32(`priors/${name}/${file}.i32.bin`);
  if (name !== 'prior_1b_lyrics_like') return { data: tok, clampedAt: [undefined, undefined] };
  const len = tok.length / 2, nCtx = len - N_TOKENS_1B;
  const data = new Int32Array(2 * nCtx);
  const clampedAt: (number | undefined)[] = [undefined, undefined];
  for (let b = 0; b < 2; b++) {
    for (let t = 0; t < nCtx; t++) {
      const v = tok[b * len + N_TOKENS_1B + t] - N_VOCAB_1B;
      if (v < 0 && clampedAt[b] === undefined) clampedAt[b] = t;
      data[b * nCtx + t] = Math.max(0, v);
    }
  }
  return { data, clampedAt };
}

/** Writes CODES, y and (upsampler) the upper codes as .npy files; returns the CLI arguments. */
function promisedArgs(name: string, tag: string, codes: Int32Array): string[] {
  const nCtx = codes.length / 2;
  const y = readI32(`priors/${name}/y.i32.bin`);
  const args = [
    'score', writeNpy(`${name}-${tag}-codes.npy`, { dtype: 'int32', shape: [2, nCtx], data: codes }),
    '--prior', conv.prior(name), '--vqvae', conv.vqvae,
    '--labels', writeNpy(`${name}-${tag}-y.npy`, { dtype: 'int32', shape: [2, y.length / 2], data: y }),
  ];
  if (name === 'upsampler_like') {
    const up = readI32(`priors/${name}/z_cond.i32.bin`);
    args.push('--upper', writeNpy(`${name}-${tag}-upper.npy`, { dtype: 'int32', shape: [2, up.length / 2], data: up }));
  }
  return args;
}

/** The --prefix of the promised form counts codes: the 1b-like prior's lyric tokens come on top. */
function codesPrefix(name: string): number {
  return primedPrefix(name) - (name === 'prior_1b_lyrics_like' ? N_TOKENS_1B : 0);
}

function modeArgs(name: string, mode: 'forward' | 'cached' | 'chunked'): string[] {
  if (mode !== 'chunked') return ['--mode', mode];
  return ['--mode', 'chunked', '--prefix', String(codesPrefix(name)), '--chunk', String(primedChunk(name))];
}

// The CPU engine always; the CUDA model path under emulation where build/cuda-emu implements it
// (CI requires it: JUKEBOX_CUDA_EMU_REQUIRE=1), with the same tolerance: fp32 weights, 1e-4.
const backends = ['cpu', ...(cudaEmu.ready || cudaEmu.required ? ['cuda'] : [])] as const;
if (!cudaEmu.ready) console.warn(`score: --backend cuda cases skipped: ${cudaEmu.reason}`);

describe.each(names.flatMap((name) => backends.map((backend) => [name, backend] as const)))('jukebox score CODES --prior P --vqvae V (promised form): %s --backend %s', (name, backend) => {
  const tokFile = { forward: name === 'prior_1b_lyrics_like' ? 'combined_tokens' : 'z', cached: 'sample_tokens', chunked: 'primed_tokens' } as const;

  it.each(['forward', 'cached', 'chunked'] as const)('--mode %s --dump-logits OUT.npy reproduces the original within 1e-4', async (mode) => {
    const { data, clampedAt } = musicCodes(name, tokFile[mode]);
    const out = join(tmp, `${name}-${mode}-${backend}-logits.npy`);
    const r = await jukebox(...promisedArgs(name, mode, data), ...modeArgs(name, mode), '--dump-logits', out, '--backend', backend);
    expect(r.code, r.stderr).toBe(0);
    if (backend === 'cuda') expect(r.stderr + r.stdout).toMatch(/backend: CUDA backend requested: .*emulation build/);
    expect(r.stdout).toMatch(new RegExp(`^${mode}: \\d+\\.\\d+ bits per token over 2 x \\d+ tokens`, 'm'));
    const got = readLogits(out);
    const ref = readF32(`priors/${name}/${refFile[mode]}.f32.bin`);
    const [, L, bins] = manifest.files[`${name}/${refFile[mode]}.f32.bin`].shape;
    // (batch, L, vocab) over the whole transformer sequence: lyric positions included for 1b.
    expect(got.shape).toEqual([2, L, bins]);
    let fullRows = 0;
    for (let b = 0; b < 2; b++) {
      // Row t's logits depend on the tokens before t only: a row the original sampled a
      // lyric token into (not a music code, so not expressible in CODES) matches up to and
      // including that slot, and every other row matches in full.
      const upTo = clampedAt[b] === undefined ? L : N_TOKENS_1B + clampedAt[b]! + 1;
      if (upTo === L) fullRows++;
      const row = (a: Float32Array) => a.subarray(b * L * bins, (b * L + upTo) * bins);
      expect(maxAbsDiff(row(got.data), row(ref)), `row ${b}, positions [0, ${upTo})`).toBeLessThan(1e-4);
    }
    expect(fullRows).toBeGreaterThan(0);
  });
});

describe('jukebox score CODES (promised form): beyond the fixtures\' own token files', () => {
  it('1b-like: cached and chunked on the forward codes give the original\'s forward logits for every row', async () => {
    // Every mode gives the same logits, so these cover the rows the sampled fixtures cannot.
    const name = 'prior_1b_lyrics_like';
    const { data } = musicCodes(name, 'combined_tokens');
    const ref = readF32(`priors/${name}/logits_forward.f32.bin`);
    for (const mode of ['cached', 'chunked'] as const) {
      const out = join(tmp, `${name}-${mode}-z-logits.npy`);
      const r = await jukebox(...promisedArgs(name, `${mode}-z`, data), ...modeArgs(name, mode), '--dump-logits', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/music codes only: \d+\.\d+\)/);
      expect(maxAbsDiff(readLogits(out).data, ref), mode).toBeLessThan(1e-4);
    }
  });

  it('upsampler: CODES as an .npz of int64 level_1 and level_2 (as jukebox encode or numpy write) needs no --upper', async () => {
    const name = 'upsampler_like';
    const z = readI32(`priors/${name}/z.i32.bin`), up = readI32(`priors/${name}/z_cond.i32.bin`);
    const codes = join(tmp, 'up-codes.npz');
    writeNpz(codes, {
      level_1: { dtype: 'int64', shape: [2, 64], data: BigInt64Array.from(z, (v) => BigInt(v)) },
      level_2: { dtype: 'int32', shape: [2, 16], data: up },
    });
    const y = writeNpy('up-y.npy', { dtype: 'int64', shape: [2, 9], data: BigInt64Array.from(readI32(`priors/${name}/y.i32.bin`), (v) => BigInt(v)) });
    const out = join(tmp, 'up-npz-logits.npy');
    const r = await jukebox('score', codes, '--prior', conv.prior(name), '--vqvae', conv.vqvae, '--labels', y, '--dump-logits', out);
    expect(r.code, r.stderr).toBe(0);
    expect(maxAbsDiff(readLogits(out).data, readF32(`priors/${name}/logits_forward.f32.bin`))).toBeLessThan(1e-4);
  });

  it('without --labels: the documented default (unknown artist and genre, offset 0, no lyrics), said in a note', async () => {
    for (const name of ['prior_5b_lyrics_like', 'prior_1b_lyrics_like']) {
      const { data } = musicCodes(name, name === 'prior_1b_lyrics_like' ? 'combined_tokens' : 'z');
      const codes = writeNpy(`${name}-nolabels.npy`, { dtype: 'int32', shape: [2, 64], data });
      const out = join(tmp, `${name}-nolabels-logits.npy`);
      const r = await jukebox('score', codes, '--prior', conv.prior(name), '--vqvae', conv.vqvae, '--dump-logits', out);
      expect(r.code, r.stderr).toBe(0);
      const p = await loadPrior(conv.prior(name));
      const s = p.structure;
      // a song as long as the window, raised to the prior's shortest song (its timing signal starts there)
      const total = Math.max(8192, Math.ceil(s.labels.minDuration! * s.labels.sr));
      expect(r.stdout).toMatch(new RegExp(`^note: no --labels: artist 0 and genre 0 \\("unknown"[^\\n]*offset 0, total_length ${total}[^\\n]*no lyrics`, 'm'));
      // The same default through the library: y = [total, 0, window, 0, 0, -1 ..., 0 ...].
      const row = [total, 0, 8192, 0, 0, ...Array(s.labels.maxBowGenreSize - 1).fill(-1), ...Array(s.nTokens).fill(0)];
      const lib = await scorePrior(p, { n: 2, y: Int32Array.from([...row, ...row]), tokens: data, mode: 'forward' });
      p.dispose();
      expect(maxAbsDiff(readLogits(out).data, lib.logits), name).toBe(0);
    }
  });
});

describe('jukebox score CODES: errors are one line naming the file, exit 1', () => {
  const name = 'prior_5b_like';
  const y = () => writeNpy('err-y.npy', { dtype: 'int32', shape: [2, 9], data: readI32(`priors/${name}/y.i32.bin`) });
  const z = () => readI32(`priors/${name}/z.i32.bin`);
  async function fails(args: string[], code: string, message: RegExp) {
    const r = await jukebox(...args);
    expect(r.code, r.stdout).toBe(1);
    // exactly one line, the CLI's error format
    expect(r.stderr).toMatch(new RegExp(`^jukebox: error: [^\\n]* \\[${code}\\]\\n$`));
    expect(r.stderr).toMatch(message);
  }
  const prior = () => ['--prior', conv.prior(name), '--vqvae', conv.vqvae];

  it('missing --prior', async () => {
    const codes = writeNpy('err-ok.npy', { dtype: 'int32', shape: [2, 64], data: z() });
    await fails(['score', codes, '--vqvae', conv.vqvae, '--labels', y()], 'ERR_INVALID_ARGUMENT', /missing --prior: jukebox score CODES --prior P\.safetensors/);
  });

  it('bad shapes: T not n_ctx, three axes, labels of the wrong width or batch', async () => {
    const short = writeNpy('err-short.npy', { dtype: 'int32', shape: [2, 32], data: z().slice(0, 64) });
    await fails(['score', short, ...prior(), '--labels', y()], 'ERR_CODES', /err-short\.npy: codes have shape \(2, 32\); expected \(batch, 64\): one window of n_ctx = 64 level-2 codes/);
    const cube = writeNpy('err-cube.npy', { dtype: 'int32', shape: [2, 1, 64], data: z() });
    await fails(['score', cube, ...prior(), '--labels', y()], 'ERR_CODES', /err-cube\.npy: codes have shape \(2, 1, 64\); expected \(batch, 64\)/);
    const codes = writeNpy('err-ok.npy', { dtype: 'int32', shape: [2, 64], data: z() });
    const narrow = writeNpy('err-y8.npy', { dtype: 'int32', shape: [2, 8], data: readI32(`priors/${name}/y.i32.bin`).slice(0, 16) });
    await fails(['score', codes, ...prior(), '--labels', narrow], 'ERR_INVALID_ARGUMENT', /err-y8\.npy: labels have shape \(2, 8\); expected \(2, 9\) or \(9,\): \[total_length, offset, sample_length, artist, genre x 5\]/);
    const three = writeNpy('err-y3.npy', { dtype: 'int32', shape: [3, 9], data: Int32Array.from([...readI32(`priors/${name}/y.i32.bin`), ...readI32(`priors/${name}/y.i32.bin`).slice(0, 9)]) });
    await fails(['score', codes, ...prior(), '--labels', three], 'ERR_INVALID_ARGUMENT', /err-y3\.npy: 3 label rows but .*err-ok\.npy has 2 rows of codes/);
  });

  it('out-of-range code, and codes that are not integers', async () => {
    const bad = z();
    bad[64 + 7] = 256;
    const codes = writeNpy('err-range.npy', { dtype: 'int32', shape: [2, 64], data: bad });
    await fails(['score', codes, ...prior(), '--labels', y()], 'ERR_CODES', /err-range\.npy: value 256 at \[1, 7\] is outside \[0, 256\) \(the VQ-VAE has 256 codes per level\)/);
    const floats = writeNpy('err-float.npy', { dtype: 'float32', shape: [2, 64], data: Float32Array.from(z()) });
    await fails(['score', floats, ...prior(), '--labels', y()], 'ERR_CODES', /err-float\.npy: codes have dtype float32; expected an integer array \(int32\) of shape \(batch, 64\)/);
  });

  it('upsampler: --upper missing, of the wrong shape or batch; --upper on a top-level prior', async () => {
    const up = 'upsampler_like';
    const args = promisedArgs(up, 'err', readI32(`priors/${up}/z.i32.bin`));
    const upper = args.indexOf('--upper');
    await fails(args.slice(0, upper), 'ERR_INVALID_ARGUMENT', /is a level-1 upsampler: pass --upper U\.npy with shape \(2, 16\)/);
    const wide = writeNpy('err-upper.npy', { dtype: 'int32', shape: [2, 64], data: readI32(`priors/${up}/z.i32.bin`) });
    await fails([...args.slice(0, upper), '--upper', wide], 'ERR_CODES', /err-upper\.npy: upper codes have shape \(2, 64\); expected \(2, 16\)/);
    const one = writeNpy('err-upper1.npy', { dtype: 'int32', shape: [1, 16], data: readI32(`priors/${up}/z_cond.i32.bin`).slice(0, 16) });
    await fails([...args.slice(0, upper), '--upper', one], 'ERR_CODES', /err-upper1\.npy: 1 rows of upper codes but .* has 2 rows of codes/);
    const codes = writeNpy('err-ok.npy', { dtype: 'int32', shape: [2, 64], data: z() });
    await fails(['score', codes, ...prior(), '--labels', y(), '--upper', one], 'ERR_INVALID_ARGUMENT', /is a top-level prior \(level 2\); only upsamplers/);
  });

  it('mode options that do not fit the mode, and a VQ-VAE the prior was not built for', async () => {
    const codes = writeNpy('err-ok.npy', { dtype: 'int32', shape: [2, 64], data: z() });
    await fails(['score', codes, ...prior(), '--labels', y(), '--mode', 'chunked'], 'ERR_INVALID_ARGUMENT', /--mode chunked needs --prefix N/);
    await fails(['score', codes, ...prior(), '--labels', y(), '--prefix', '3'], 'ERR_INVALID_ARGUMENT', /--prefix is for --mode chunked/);
    await fails(['score', codes, ...prior(), '--labels', y(), '--mode', 'chunked', '--prefix', '65'], 'ERR_INVALID_ARGUMENT', /--prefix 65: a window has 64 codes/);
    // a two-level VQ-VAE (the variants fixture) is not the three-level one the prior was converted with
    await fails(['score', codes, '--prior', conv.prior(name), '--vqvae', fixture('vqvae-variants/a.pth.tar'), '--labels', y()], 'ERR_INVALID_ARGUMENT', /was built for a VQ-VAE with 3 levels.*pass the VQ-VAE the prior was converted with/);
  });
});

// ---- the library, fp16 weights and legacy checkpoints ----------------------------------------

describe('fp16 weights and legacy checkpoints', () => {
  it.each(['prior_5b_like', 'prior_5b_lyrics_like'])('%s fp16: forward within 5e-3 of the original', async (name) => {
    const p = await loadPrior(fixture(`priors/${name}/prior.fp16.zip.pth.tar`), { vqvae });
    const x = inputs(name, 'forward');
    const r = await scorePrior(p, { n: 2, y: x.y.data, tokens: x.tokens.data, mode: 'forward' });
    expect(maxAbsDiff(r.logits, readF32(`priors/${name}/logits_forward_fp16weights.f32.bin`))).toBeLessThan(5e-3);
    p.dispose();
  });

  it.runIf(cudaEmu.ready || cudaEmu.required).each(['prior_5b_like', 'prior_5b_lyrics_like'])('%s fp16 --backend cuda (emulated): forward within 5e-3 of the original', async (name) => {
    const inp = join(tmp, `${name}-fp16-cuda.npz`);
    writeNpz(inp, inputs(name, 'forward'));
    const out = join(tmp, `${name}-fp16-cuda-logits.npz`);
    const r = await jukebox('score', fixture(`priors/${name}/prior.fp16.zip.pth.tar`), '--vqvae', vqvae, '--inputs', inp, '--mode', 'forward', '--dump-logits', out, '--backend', 'cuda');
    expect(r.code, r.stderr).toBe(0);
    expect(maxAbsDiff(readNpz(out).logits.data as Float32Array, readF32(`priors/${name}/logits_forward_fp16weights.f32.bin`))).toBeLessThan(5e-3);
  });

  it.skipIf(!hasShared)('legacy-format checkpoints (../shared) give the same logits in every mode', async () => {
    for (const name of names) {
      for (const file of ['prior.legacy.pth.tar', ...(name.includes('5b') ? ['prior.fp16.legacy.pth.tar'] : [])]) {
        const p = await loadPrior(join(sharedFixturesDir, name, file), { vqvae });
        for (const mode of file.includes('fp16') ? (['forward'] as const) : (['forward', 'sample', 'primed'] as const)) {
          const x = inputs(name, mode);
          const r = await scorePrior(p, {
            n: 2, y: x.y.data, tokens: x.tokens?.data, combined: x.combined?.data, upper: x.upper?.data, mode: mode as ScoreModeName,
            prefix: mode === 'primed' ? primedPrefix(name) : undefined,
          });
          const ref = file.includes('fp16') ? 'logits_forward_fp16weights' : legacyRef[mode];
          expect(maxAbsDiff(r.logits, readF32(`priors/${name}/${ref}.f32.bin`)), `${name} ${file} ${mode}`).toBeLessThan(file.includes('fp16') ? 5e-3 : 1e-4);
        }
        p.dispose();
      }
    }
  });
});
