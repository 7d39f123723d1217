/**
 * Hostile files (test/fixtures/hostile, made by its make.mjs; one per failure family the
 * fuzzing passes found) through every CLI command that reads them, as a user would run it:
 * each must end within seconds with exit code 1 and exactly one line
 * `jukebox: error: ... [ERR_...]` — never a crash, a hang, an out-of-memory kill or a raw
 * exception.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../lib/audio/wav.js';
import { encodeNpy, writeNpz } from '../lib/npz.js';
import { fixture, repoRoot } from './helpers/fixtures.js';

const bin = join(repoRoot, 'bin', 'jukebox.js');
const hostile = (name: string) => fixture(`hostile/${name}`);
const model = (name: string) => join(repoRoot, 'models', 'default', name);
const tmp = mkdtempSync(join(tmpdir(), 'jukebox-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Valid inputs for the other side of each command.
const codesNpz = join(tmp, 'codes.npz');
writeNpz(codesNpz, { level_2: { dtype: 'int32', shape: [1, 8], data: new Int32Array(8).fill(3) } });
const codesNpy = join(tmp, 'codes.npy');
writeFileSync(codesNpy, encodeNpy({ dtype: 'int32', shape: [1, 512], data: new Int32Array(512).fill(3) }));
const wav = join(tmp, 'tone.wav');
writeFileSync(wav, encodeWav(Float32Array.from({ length: 22050 }, (_, i) => 0.3 * Math.sin(i / 10)), 22050, 's16'));

interface Outcome {
  code: number | null;
  signal: string | null;
  stderr: string;
  ms: number;
}

function jukebox(args: string[], timeoutMs = 20_000): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: tmp, timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, CI: '1' }, maxBuffer: 1 << 24 }, (err, _stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stderr: String(stderr), ms: Date.now() - t0 });
    });
  });
}

const VQVAES = ['vqvae-depth-2e31', 'vqvae-depth-1e300', 'vqvae-multipliers-1e9', 'vqvae-downs-huge', 'vqvae-nested-value'].map((n) => `${n}.safetensors`);
const PRIORS = ['prior-depth-2e31', 'prior-bow-genres-2e31'].map((n) => `${n}.safetensors`);
const CHECKPOINTS = ['ckpt-bomb-dicts', 'ckpt-bomb-lists', 'ckpt-bomb-marks', 'ckpt-bomb-nones', 'ckpt-pickle-80mib', 'ckpt-stride0-codebook'].map((n) => `${n}.pth.tar`);

const cases: [string, string[], RegExp][] = [
  ...VQVAES.flatMap((f): [string, string[], RegExp][] => [
    [`info ${f}`, ['info', hostile(f)], /ERR_HPARAMS/],
    [`decode with --vqvae ${f}`, ['decode', codesNpz, '--vqvae', hostile(f), '--level', '2', '-o', join(tmp, 'o.wav')], /ERR_HPARAMS/],
    [`encode with --vqvae ${f}`, ['encode', wav, '--vqvae', hostile(f), '-o', join(tmp, 'o.npz')], /ERR_HPARAMS/],
    [`convert --vqvae ${f} (a prior against it)`, ['convert', fixture('priors/upsampler_like/prior.zip.pth.tar'), '--vqvae', hostile(f), '-o', join(tmp, 'p.safetensors')], /ERR_HPARAMS/],
  ]),
  ...PRIORS.flatMap((f): [string, string[], RegExp][] => [
    [`info ${f}`, ['info', hostile(f)], /ERR_HPARAMS/],
    [`score with --prior ${f}`, ['score', codesNpy, '--prior', hostile(f), '--vqvae', model('vqvae.safetensors')], /ERR_HPARAMS/],
    [`generate with --top ${f}`, ['generate', '--vqvae', model('vqvae.safetensors'), '--top', hostile(f), '--seconds', '1', '-o', join(tmp, 'gen')], /ERR_HPARAMS/],
  ]),
  ...CHECKPOINTS.flatMap((f): [string, string[], RegExp][] => [
    [`info ${f}`, ['info', hostile(f)], /ERR_CHECKPOINT_FORMAT/],
    [`convert ${f}`, ['convert', hostile(f), '-o', join(tmp, 'c.safetensors'), '--preset', 'vqvae'], /ERR_CHECKPOINT_FORMAT/],
    [`decode with --vqvae ${f}`, ['decode', codesNpz, '--vqvae', hostile(f), '--level', '2', '-o', join(tmp, 'o.wav')], /ERR_CHECKPOINT_FORMAT/],
    [`score with --prior ${f}`, ['score', codesNpy, '--prior', hostile(f), '--vqvae', model('vqvae.safetensors')], /ERR_CHECKPOINT_FORMAT/],
  ]),
  ['decode npz-declares-1gib.npz', ['decode', hostile('npz-declares-1gib.npz'), '--vqvae', model('vqvae.safetensors'), '--level', '2', '-o', join(tmp, 'o.wav')], /ERR_CODES/],
  ['score npz-declares-1gib.npz', ['score', hostile('npz-declares-1gib.npz'), '--prior', model('prior_level_2.safetensors')], /ERR_CODES/],
  ['generate --codes npz-declares-1gib.npz', ['generate', '--codes', hostile('npz-declares-1gib.npz'), '--levels', '1,0', '-o', join(tmp, 'gen2')], /ERR_CODES/],
  ['convert --config config-sr-inf.json', ['convert', fixture('vqvae-variants/a.pth.tar'), '--config', hostile('config-sr-inf.json'), '-o', join(tmp, 'c.safetensors')], /ERR_HPARAMS/],
  ['convert --config config-unknown-name.json', ['convert', fixture('vqvae-variants/a.pth.tar'), '--config', hostile('config-unknown-name.json'), '-o', join(tmp, 'c.safetensors')], /did you mean "prior_depth".*ERR_HPARAMS/],
];

describe('hostile files through the CLI', () => {
  it.each(cases)('%s: one clean error line, exit 1, within seconds', async (_name, args, code) => {
    const r = await jukebox(args);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(1);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^jukebox: error: .* \[ERR_[A-Z_]+\]$/);
    expect(lines[0]).toMatch(code);
    expect(r.ms).toBeLessThan(10_000);
  });
});
