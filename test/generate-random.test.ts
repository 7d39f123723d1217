/**
 * generate() on a complete model set the tests build themselves (random weights, 3 levels):
 * exact output lengths, reproducibility, abort mid-level and resume, monotone progress.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJukebox, type GenerateProgress, type Jukebox } from '../lib/generate/generate.js';
import { writeTinyModels } from './helpers/random-models.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-random-'));
let jb: Jukebox;
beforeAll(async () => {
  jb = await loadJukebox(await writeTinyModels(tmp));
});
afterAll(() => {
  jb.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// hops 2/4/8: 0.01 s = 441 samples -> 440 -> top 55, level 1 110, level 0 220 tokens
const req = { artist: 2, genre: [1, 4], seconds: 0.01, totalSeconds: 1, samples: 3, seed: 21 };

describe('generate on a random 3-level model set', () => {
  it('samples every level with exact lengths and monotone progress', async () => {
    const events: GenerateProgress[] = [];
    const r = await jb.generate({ ...req, onProgress: (p) => events.push(p) });
    expect(r.levels).toEqual([2, 1, 0]);
    expect(r.sampleLength).toBe(440);
    expect(r.codes.map((c) => c!.map((x) => x.length))).toEqual([[220, 220, 220], [110, 110, 110], [55, 55, 55]]);
    expect(r.audio.map((a) => a.length)).toEqual([440, 440, 440]);
    expect(r.levelAudio.map((a) => a![0].length)).toEqual([440, 440, 440]);
    for (const a of r.audio) for (const v of a) expect(Number.isFinite(v)).toBe(true);
    // progress: levels top-down, then decodes; within a level (window, token) never goes back
    const sampling = events.filter((e) => e.phase === 'sample');
    for (let i = 1; i < sampling.length; i++) {
      const a = sampling[i - 1], b = sampling[i];
      if (a.level !== b.level) {
        expect(b.level).toBeLessThan(a.level);
        continue;
      }
      expect(b.window * 1e6 + b.token).toBeGreaterThanOrEqual(a.window * 1e6 + a.token);
      expect(b.windows).toBe(a.windows);
    }
    expect(new Set(sampling.map((e) => e.level))).toEqual(new Set([2, 1, 0]));
    expect(events.at(-1)!.phase).toBe('decode');
  });

  it('same seed, same codes; another seed, other codes', async () => {
    const a = await jb.generate(req), b = await jb.generate(req), c = await jb.generate({ ...req, seed: 22 });
    expect(a.codes.map((l) => l!.map((x) => [...x]))).toEqual(b.codes.map((l) => l!.map((x) => [...x])));
    expect(a.codes[0]!.map((x) => [...x])).not.toEqual(c.codes[0]!.map((x) => [...x]));
  });

  it('abort in the middle of level 0, resume: the same codes as an uninterrupted run', async () => {
    const full = await jb.generate({ ...req, outputDir: join(tmp, 'full') });
    const dir = join(tmp, 'stopped');
    const ac = new AbortController();
    await expect(
      jb.generate({
        ...req, outputDir: dir, signal: ac.signal,
        // (progress is throttled: the first event of each window always arrives)
        onProgress: (p) => p.phase === 'sample' && p.level === 0 && p.window >= 10 && ac.abort(),
      }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const resumed = await jb.generate({ ...req, outputDir: dir, resume: true });
    expect(resumed.codes.map((l) => l!.map((x) => [...x]))).toEqual(full.codes.map((l) => l!.map((x) => [...x])));
    expect(resumed.audio.map((a) => [...a])).toEqual(full.audio.map((a) => [...a]));
  });
});
