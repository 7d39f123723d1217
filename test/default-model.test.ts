/**
 * The model shipped in models/default, run the way the README's main command runs it:
 * `jukebox generate --seconds 10 -o out/` with no model named. Checks the WAV's length and
 * that it is music-like signal (not silence, not clipping), and that seeds matter.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseWav } from '../lib/audio/wav.js';
import { readModelSet, defaultModelDir } from '../lib/model-set.js';
import { repoRoot } from './helpers/fixtures.js';

const run = promisify(execFile);
const cli = join(repoRoot, 'bin', 'jukebox.js');

function stats(x: Float32Array) {
  let sum = 0;
  let peak = 0;
  let clipped = 0;
  for (const v of x) {
    sum += v * v;
    const a = Math.abs(v);
    if (a > peak) peak = a;
    if (a >= 32767 / 32768) clipped++;
  }
  return { rms: Math.sqrt(sum / x.length), peak, clippedFraction: clipped / x.length };
}

async function generate(out: string, seconds: number, seed: number): Promise<{ samples: Float32Array; sampleRate: number; wall: number }> {
  const t0 = performance.now();
  const r = await run(process.execPath, [cli, 'generate', '--seconds', String(seconds), '-o', out, '--seed', String(seed)], {
    env: { ...process.env, CI: '1' },
    maxBuffer: 1 << 24,
  });
  const wall = (performance.now() - t0) / 1000;
  expect(r.stdout).toMatch(/model: the default model/);
  const wav = parseWav(readFileSync(join(out, 'sample_0.wav')));
  return { samples: wav.channels[0], sampleRate: wav.sampleRate, wall };
}

describe('the default model (models/default)', () => {
  it('is a complete model folder within the size budget', () => {
    const set = readModelSet(defaultModelDir());
    expect(set.priors.filter(Boolean)).toHaveLength(3);
    const files = [set.vqvae, ...set.priors.filter((p): p is string => !!p)];
    const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
    expect(bytes).toBeLessThanOrEqual(60e6);
    expect(set.card && existsSync(set.card)).toBeTruthy();
  });

  it('README main command: 10 s of non-silent, non-clipping audio at all three levels; seeds differ', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jukebox-default-'));
    const a = await generate(join(dir, 'a'), 10, 1);
    // length: 10 s rounded down to whole top-level tokens (hop 128)
    expect(a.samples.length).toBeGreaterThan(10 * a.sampleRate - 128);
    expect(a.samples.length).toBeLessThanOrEqual(10 * a.sampleRate);
    for (const level of [1, 2]) expect(existsSync(join(dir, 'a', `level_${level}_sample_0.wav`))).toBe(true);
    const s = stats(a.samples);
    console.log(`default model, 10 s: ${a.wall.toFixed(1)} s wall; rms ${s.rms.toFixed(4)}, peak ${s.peak.toFixed(3)}, clipped ${(s.clippedFraction * 100).toFixed(3)}%`);
    expect(s.rms).toBeGreaterThan(0.005);
    expect(s.rms).toBeLessThan(0.5);
    expect(s.clippedFraction).toBeLessThan(0.001);
    // every second has signal (no silent stretch from a broken window)
    for (let i = 0; i + a.sampleRate <= a.samples.length; i += a.sampleRate) {
      expect(stats(a.samples.subarray(i, i + a.sampleRate)).rms).toBeGreaterThan(0.001);
    }
    // the README main command's budget: 10 s at all three levels in under 2 minutes on 2 cores
    expect(a.wall).toBeLessThan(120);
    const b = await generate(join(dir, 'b'), 4, 2);
    const n = Math.min(a.samples.length, b.samples.length);
    let diff = 0;
    for (let i = 0; i < n; i++) diff += (a.samples[i] - b.samples[i]) ** 2;
    expect(Math.sqrt(diff / n)).toBeGreaterThan(0.1 * s.rms);
  }, 600_000);

  it('names the genres it knows when given one it does not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jukebox-default-'));
    const r = await run(process.execPath, [cli, 'generate', '--seconds', '4', '-o', dir, '--genre', 'jazz']).catch((e) => e as { code: number; stderr: string });
    expect((r as { code: number }).code).toBe(1);
    expect((r as { stderr: string }).stderr).toMatch(/"jazz" is not in the v2 genre vocabulary\..* Known genres: electronic, metal, orchestral, soundtrack\./);
  });
});
