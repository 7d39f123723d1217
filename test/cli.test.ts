/**
 * The `jukebox` CLI end to end (the built dist/, as a user runs it): the exact command
 * forms of the issue, checked against the original implementation's fixture outputs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { backendInfo } from '../lib/backend.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav, parseWav } from '../lib/audio/wav.js';
import { readNpz, writeNpz } from '../lib/npz.js';
import { fixture, readF32, readI32, repoRoot } from './helpers/fixtures.js';
import { maxAbsDiff } from './helpers/random.js';

const run = promisify(execFile);
const bin = join(repoRoot, 'bin', 'jukebox.js');
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-cli-'));
const vqvae = join(tmp, 'vqvae.safetensors');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function jukebox(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: tmp, env: { ...process.env, CI: '1' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function readWavMono(path: string): Float32Array {
  const w = parseWav(readFileSync(path), path);
  expect(w.sampleRate).toBe(44100);
  expect(w.channels.length).toBe(1);
  return w.channels[0];
}

beforeAll(async () => {
  const r = await jukebox('convert', fixture('vqvae/vqvae.legacy.pth.tar'), '-o', vqvae);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});

describe('jukebox CLI', () => {
  it('convert reports what it wrote', async () => {
    const r = await jukebox('convert', fixture('vqvae/vqvae.zip.pth.tar'), '-o', join(tmp, 'zip.safetensors'), '--preset', 'vqvae');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/vqvae, 525 tensors/);
  });

  it('--backend on encode, decode and score: reported, and cuda refused with what to do where it cannot run', async () => {
    const wav = join(tmp, 'be.wav');
    writeFileSync(wav, encodeWav(readF32('input/waveform.f32.bin'), 44100, 'f32'));
    const ok = await jukebox('encode', wav, '--vqvae', vqvae, '-o', join(tmp, 'be.npz'), '--backend', 'cpu');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^backend: CPU backend requested/m);
    const auto = await jukebox('decode', join(tmp, 'be.npz'), '--vqvae', vqvae, '--level', '2', '-o', join(tmp, 'be.wav'));
    expect(auto.stdout).toMatch(/^backend: (auto: using the CPU|auto: CUDA)/m);
    if (!backendInfo().cuda.available) {
      for (const args of [['decode', join(tmp, 'be.npz'), '--vqvae', vqvae, '--level', '2', '-o', join(tmp, 'x.wav')], ['score', vqvae, '--inputs', join(tmp, 'be.npz')]]) {
        const r = await jukebox(...args, '--backend', 'cuda');
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/CUDA backend was requested but cannot run here: .*--backend auto\|cpu.*\[ERR_BACKEND_UNAVAILABLE\]/);
      }
    }
    expect((await jukebox('encode', wav, '--vqvae', vqvae, '-o', join(tmp, 'x.npz'), '--backend', 'gpu')).stderr).toMatch(/Allowed choices are auto, cuda, cpu/);
  });

  it('encode IN.wav gives exactly the reference codes at every level', async () => {
    const wav = join(tmp, 'in.wav');
    writeFileSync(wav, encodeWav(readF32('input/waveform.f32.bin'), 44100, 'f32'));
    const r = await jukebox('encode', wav, '--vqvae', vqvae, '-o', join(tmp, 'codes.npz'));
    expect(r.code, r.stderr).toBe(0);
    const npz = readNpz(join(tmp, 'codes.npz'));
    expect(Object.keys(npz).sort()).toEqual(['level_0', 'level_1', 'level_2']);
    for (let l = 0; l < 3; l++) {
      const a = npz[`level_${l}`];
      expect(a.dtype).toBe('int32');
      const ref = readI32(`vqvae/codes_l${l}.i32.bin`);
      expect(a.shape).toEqual([1, ref.length]);
      expect([...(a.data as Int32Array)]).toEqual([...ref]);
    }
  });

  it('decode --level L gives the reference audio within 1e-4 at every level (f32 WAV)', async () => {
    const arrays = Object.fromEntries(
      [0, 1, 2].map((l) => {
        const c = readI32(`vqvae/codes_l${l}.i32.bin`);
        return [`level_${l}`, { dtype: 'int32' as const, shape: [1, c.length], data: c }];
      }),
    );
    writeNpz(join(tmp, 'ref.npz'), arrays);
    for (let l = 0; l < 3; l++) {
      const out = join(tmp, `ref_l${l}.wav`);
      const r = await jukebox('decode', join(tmp, 'ref.npz'), '--vqvae', vqvae, '--level', String(l), '-o', out, '--format', 'f32');
      expect(r.code, r.stderr).toBe(0);
      expect(maxAbsDiff(readWavMono(out), readF32(`vqvae/decode_l${l}.f32.bin`))).toBeLessThan(1e-4);
    }
  });

  it('decode of a batch of 2 writes out_0.wav and out_1.wav, each within 1e-4', async () => {
    for (let l = 0; l < 3; l++) {
      const c = readI32(`vqvae/random_codes_l${l}.i32.bin`);
      const npz = join(tmp, `rand_l${l}.npz`);
      // int64, as numpy writes codes by default: accepted too
      writeNpz(npz, { [`level_${l}`]: { dtype: 'int64', shape: [2, c.length / 2], data: BigInt64Array.from([...c].map(BigInt)) } });
      const r = await jukebox('decode', npz, '--vqvae', vqvae, '--level', String(l), '-o', join(tmp, `out${l}.wav`), '--format', 'f32');
      expect(r.code, r.stderr).toBe(0);
      const ref = readF32(`vqvae/decode_random_l${l}.f32.bin`);
      for (let b = 0; b < 2; b++) {
        const got = readWavMono(join(tmp, `out${l}_${b}.wav`));
        expect(maxAbsDiff(got, ref.subarray(b * 16384, (b + 1) * 16384))).toBeLessThan(1e-4);
      }
      expect(existsSync(join(tmp, `out${l}.wav`))).toBe(false);
    }
  });

  it('the default 16-bit PCM output is clamped to [-1, 1] and otherwise within one step', async () => {
    const out = join(tmp, 'pcm.wav');
    const r = await jukebox('decode', join(tmp, 'ref.npz'), '--vqvae', vqvae, '--level', '1', '-o', out);
    expect(r.code, r.stderr).toBe(0);
    const w = parseWav(readFileSync(out), out);
    expect(w.bitsPerSample).toBe(16);
    const ref = readF32('vqvae/decode_l1.f32.bin'); // this one reaches |x| = 6.9
    const got = w.channels[0];
    let clamped = 0;
    for (let i = 0; i < ref.length; i++) {
      const want = Math.max(-1, Math.min(1, ref[i]));
      // written as round(x * 32767), read back as v / 32768: within two steps
      expect(Math.abs(got[i] - want)).toBeLessThan(2 / 32767);
      if (Math.abs(ref[i]) > 1) clamped++;
    }
    expect(clamped).toBeGreaterThan(0);
  });

  it('info prints what a checkpoint holds', async () => {
    const r = await jukebox('info', fixture('vqvae/vqvae.legacy.pth.tar'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('torch-legacy');
    expect(r.stdout).toContain('a Jukebox VQ-VAE');
    expect(r.stdout).toContain('525');
    const j = await jukebox('info', vqvae, '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ format: 'safetensors', kind: 'vqvae', tensors: 525 });
  });

  it('--help works for the program and every command', async () => {
    for (const args of [['--help'], ['encode', '--help'], ['decode', '--help'], ['convert', '--help'], ['info', '--help']]) {
      const r = await jukebox(...args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toContain('Usage: jukebox');
    }
  });

  it('failures exit non-zero with a one-line error', async () => {
    const cases = [
      ['decode', join(tmp, 'nope.npz'), '--vqvae', vqvae, '--level', '0', '-o', 'x.wav'],
      ['decode', join(tmp, 'ref.npz'), '--vqvae', vqvae, '--level', '5', '-o', 'x.wav'],
      ['encode', fixture('vqvae/codes_l0.i32.bin'), '--vqvae', vqvae, '-o', 'x.npz'],
      ['info', fixture('input/waveform.f32.bin')],
      ['convert', fixture('vqvae/vqvae.legacy.pth.tar'), '-o', 'x.safetensors', '--preset', 'prior_5b'],
    ];
    for (const args of cases) {
      const r = await jukebox(...args);
      expect(r.code, args.join(' ')).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toMatch(/^jukebox: error: .+\[ERR_[A-Z_]+\]$/);
    }
    const usage = await jukebox('decode', 'x.npz');
    expect(usage.code).not.toBe(0);
  });

  it('generate and submit share their sampling options, each with its own integer messages', async () => {
    // (lib/cli/options.ts: one definition; the messages are what each command said before)
    const gen = await jukebox('generate', '-o', 'out', '--top-k', '-1');
    expect(gen.code).not.toBe(0);
    expect(gen.stderr).toContain('--top-k must be a non-negative integer');
    const sub = await jukebox('submit', '--redis', 'redis://127.0.0.1:1', '-o', 'out', '--top-k', '-1');
    expect(sub.code).not.toBe(0);
    expect(sub.stderr).toContain('--top-k must be an integer >= 0');
    const subSamples = await jukebox('submit', '--redis', 'redis://127.0.0.1:1', '-o', 'out', '--samples', '0');
    expect(subSamples.stderr).toContain('--samples must be an integer >= 1');
    const help = await Promise.all([jukebox('generate', '--help'), jukebox('submit', '--help')]);
    for (const opt of ['--seconds', '--total-seconds', '--samples', '--artist', '--genre', '--lyrics', '--lyrics-file', '--temperature', '--top-k', '--top-p', '--seed', '--levels', '--prompt', '--prompt-seconds', '--codes', '--allow-unknown', '--format']) {
      for (const h of help) expect(h.stdout).toContain(opt);
    }
  });
});
