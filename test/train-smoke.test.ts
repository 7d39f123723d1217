/**
 * The training recipe (train/) end to end at the tiny smoke size: synthetic data, a few steps
 * of the VQ-VAE and of each prior, export, and the engine generating from the exported model
 * folder. Also runs the Python unit tests (architecture vs the original's fixtures, parity of
 * exports with the engine). Needs Debian's python3-torch (.ci/run installs it); without it
 * these tests report themselves skipped and say why.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadJukebox } from '../lib/generate/generate.js';
import { modelInfo } from '../lib/info.js';
import { repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
const python = process.env.JUKEBOX_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const hasTorch = probe.status === 0;
if (!hasTorch) {
  console.warn(`train tests skipped: ${python} cannot import torch (install Debian's python3-torch; .ci/run does)`);
}
const trainCli = join(repoRoot, 'train', 'jukebox-train');

async function train(...args: string[]): Promise<string> {
  const r = await run(trainCli, args, { env: { ...process.env, JUKEBOX_PYTHON: python }, maxBuffer: 1 << 24 });
  return r.stdout + r.stderr;
}

describe.skipIf(!hasTorch)('training recipe (train/)', () => {
  it('smoke: data -> VQ-VAE -> codes -> three priors -> export -> the engine generates', async () => {
    const d = mkdtempSync(join(tmpdir(), 'jukebox-train-smoke-'));
    const data = join(d, 'data');
    await train('synthetic', '--out', data, '--seconds', '3');
    await train('vqvae', '--data', data, '--out', join(d, 'vq'), '--smoke', '--steps', '3', '--batch', '2');
    await train('codes', '--data', data, '--checkpoint', join(d, 'vq', 'checkpoint.pt'));
    for (const level of ['2', '1', '0']) {
      await train('prior', '--data', data, '--level', level, '--out', join(d, `p${level}`), '--smoke', '--steps', '2', '--batch', '2');
    }
    const out = await train('export', '--vqvae', join(d, 'vq', 'checkpoint.pt'),
      ...['2', '1', '0'].flatMap((l) => ['--prior', join(d, `p${l}`, 'checkpoint.pt')]), '--out', join(d, 'model'), '--fp16');
    expect(out).toMatch(/priors for levels 2, 1, 0/);
    // the vocabulary travels with the prior, and `jukebox info` lists it
    expect(modelInfo(join(d, 'model', 'prior_level_2.safetensors')).vocab).toEqual({ artists: ['high_synth', 'low_synth'], genres: ['noise', 'tones'] });
    const jb = await loadJukebox({ model: join(d, 'model') });
    try {
      const r = await jb.generate({ seconds: 0.5, totalSeconds: 3, genre: 'tones', artist: 'low_synth', seed: 5 });
      expect(r.levels).toEqual([2, 1, 0]);
      expect(r.audio[0].length).toBeGreaterThan(0.45 * jb.sampleRate);
      expect(r.audio[0].every(Number.isFinite)).toBe(true);
    } finally {
      jb.dispose();
    }
  }, 300_000);

  it('Python unit tests: the training modules are the original architecture and export what the engine computes', async () => {
    const r = spawnSync(python, ['-m', 'unittest', 'discover', '-s', join(repoRoot, 'train', 'tests'), '-t', join(repoRoot, 'train')], {
      cwd: join(repoRoot, 'train'),
      env: { ...process.env, PYTHONPATH: join(repoRoot, 'train') },
      encoding: 'utf8',
      timeout: 600_000,
    });
    const tail = r.stderr.split('\n').slice(-8).join('\n');
    console.log(tail);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    expect(r.stderr).toMatch(/\nOK/);
    expect(r.stderr).not.toMatch(/skipped=/);
  }, 600_000);
});
