/**
 * generate() end to end with the tiny fixture models (VQ-VAE, level-1 upsampler and 5b-like
 * top prior, random weights): top-down sampling, decoding, files in the output folder,
 * reproducibility, and an interrupted run resumed to the same result.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadJukebox, type Jukebox } from '../lib/generate/generate.js';
import { readNpz } from '../lib/npz.js';
import { fixture } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-generate-'));
let jb: Jukebox;
beforeAll(async () => {
  jb = await loadJukebox({
    vqvae: fixture('vqvae/vqvae.legacy.pth.tar'),
    priors: [undefined, fixture('priors/upsampler_like/prior.zip.pth.tar'), fixture('priors/prior_5b_like/prior.zip.pth.tar')],
  });
});
afterAll(() => {
  jb.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

// 0.5 s at 44.1 kHz: 22016 samples -> 172 top tokens (3 windows of 64 with hop 8... ) and 688 level-1 tokens
const base = { artist: 3, genre: 1, seconds: 0.5, totalSeconds: 90, samples: 2, seed: 5 };

describe('generate', () => {
  it('samples the top level and upsamples it, then decodes each level', async () => {
    const events: string[] = [];
    const r = await jb.generate({ ...base, onProgress: (p) => events.push(`${p.phase}:${p.level}`) });
    expect(r.levels).toEqual([2, 1]);
    expect(r.sampleLength).toBe(22016);
    expect(r.codes[2]!.map((c) => c.length)).toEqual([172, 172]);
    expect(r.codes[1]!.map((c) => c.length)).toEqual([688, 688]);
    expect(r.codes[0]).toBeUndefined();
    expect(r.audio.length).toBe(2);
    expect(r.audio[0].length).toBe(22016);
    expect(r.levelAudio[2]![0].length).toBe(22016);
    expect(events).toContain('sample:2');
    expect(events).toContain('sample:1');
    expect(events.indexOf('sample:2')).toBeLessThan(events.indexOf('sample:1'));
    expect(events).toContain('decode:1');
    expect([...r.codes[2]![0]]).not.toEqual([...r.codes[2]![1]]);
  });

  it('the same seed gives the same codes; another seed other codes', async () => {
    const a = await jb.generate({ ...base, levels: [2] });
    const b = await jb.generate({ ...base, levels: [2] });
    const c = await jb.generate({ ...base, levels: [2], seed: 6 });
    expect(a.codes[2]!.map((x) => [...x])).toEqual(b.codes[2]!.map((x) => [...x]));
    expect(a.codes[2]!.map((x) => [...x])).not.toEqual(c.codes[2]!.map((x) => [...x]));
  });

  it('writes codes after every window; an interrupted run resumes to the uninterrupted result', async () => {
    const full = await jb.generate({ ...base, outputDir: join(tmp, 'full') });
    expect(readdirSync(join(tmp, 'full')).sort()).toEqual(['codes_level_1.npz', 'codes_level_2.npz', 'run.json']);
    const npz = readNpz(join(tmp, 'full', 'codes_level_1.npz'));
    expect(npz.level_1.shape).toEqual([2, 688]);

    const dir = join(tmp, 'interrupted');
    const ac = new AbortController();
    await expect(
      jb.generate({
        ...base,
        outputDir: dir,
        signal: ac.signal,
        onProgress: (p) => {
          if (p.phase === 'sample' && p.level === 1 && p.window === 5) ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const partial = readNpz(join(dir, 'codes_level_1.npz')).level_1.shape[1];
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(688);
    const resumed = await jb.generate({ ...base, outputDir: dir, resume: true });
    expect(resumed.codes[1]!.map((x) => [...x])).toEqual(full.codes[1]!.map((x) => [...x]));
    expect(resumed.codes[2]!.map((x) => [...x])).toEqual(full.codes[2]!.map((x) => [...x]));
    // resuming with other settings is refused
    await expect(jb.generate({ ...base, seed: 99, outputDir: dir, resume: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('continues from a prompt: the prompt codes are kept at every sampled level', async () => {
    const prompt = new Float32Array(8192).map((_, i) => 0.3 * Math.sin(i / 10));
    const promptCodes = await jb.vqvae.encode(prompt);
    const r = await jb.generate({ ...base, prompt });
    for (const level of [2, 1]) {
      const keep = promptCodes[level][0];
      for (const c of r.codes[level]!) expect([...c.subarray(0, keep.length)]).toEqual([...keep]);
    }
  });

  it('upsamples given top-level codes (upsample mode) and continues partial codes (continue mode)', async () => {
    const top = await jb.generate({ ...base, levels: [2] });
    const up = await jb.generate({ ...base, levels: [1], codes: [undefined, undefined, top.codes[2]] });
    expect(up.codes[2]!.map((c) => [...c])).toEqual(top.codes[2]!.map((c) => [...c]));
    expect(up.codes[1]!.map((c) => c.length)).toEqual([688, 688]);
    const full = await jb.generate({ ...base });
    expect(up.codes[1]!.map((c) => [...c])).toEqual(full.codes[1]!.map((c) => [...c]));
    // continue: the first 100 top-level tokens kept, the rest sampled
    const cont = await jb.generate({ ...base, levels: [2], seed: 77, codes: [undefined, undefined, [top.codes[2]![0].slice(0, 100)]] });
    for (const c of cont.codes[2]!) expect([...c.subarray(0, 100)]).toEqual([...top.codes[2]![0].subarray(0, 100)]);
    expect([...cont.codes[2]![0].subarray(100)]).not.toEqual([...top.codes[2]![0].subarray(100)]);
  });

  it('bad requests fail clearly', async () => {
    await expect(jb.generate({ ...base, levels: [0] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(jb.generate({ ...base, seconds: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    // 5b's timing needs a song of at least 60 s
    await expect(jb.generate({ ...base, totalSeconds: 10 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(jb.generate({ ...base, artist: 'Nobody' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(existsSync(join(tmp, 'nothing'))).toBe(false);
  });
});
