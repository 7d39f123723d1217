/**
 * Lyric models through generate() and the CLI: priors converted with their artist/genre
 * id files, names looked up through the stored vocabulary, lyrics tokenised and windowed.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWav } from '../lib/audio/wav.js';
import { convertCheckpoint } from '../lib/convert.js';
import { loadJukebox } from '../lib/generate/generate.js';
import { readFileSync } from 'node:fs';
import { fixture, repoRoot } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'jukebox-lyrics-'));
const p = (f: string) => join(tmp, f);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(async () => {
  // Id files of our own (the original's are not ours to ship), within the fixtures' sizes.
  writeFileSync(p('artists.txt'), 'unknown;0\nthe_testers;3\nc_line_dion;7\n'); // v2 files hold normalised names
  writeFileSync(p('genres.txt'), 'unknown;0\nblues;2\nrock;8\npop;11\n');
  writeFileSync(p('artists_v3.txt'), 'unknown;0\nthe testers;3\n');
  writeFileSync(p('genres_v3.txt'), 'unknown;0\nclassic pop;5\n');
  await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), p('vqvae.safetensors'));
  const prior = (name: string, out: string, ids: [string, string]) =>
    convertCheckpoint(fixture(`priors/${name}/prior.zip.pth.tar`), p(out), { vqvae: p('vqvae.safetensors'), artistIds: p(ids[0]), genreIds: p(ids[1]) });
  await prior('upsampler_like', 'up1.safetensors', ['artists.txt', 'genres.txt']);
  await prior('prior_5b_lyrics_like', 'top5bl.safetensors', ['artists.txt', 'genres.txt']);
  await prior('prior_1b_lyrics_like', 'top1bl.safetensors', ['artists_v3.txt', 'genres_v3.txt']);
  // The tiny fixtures keep the official alignment layers (68, 63), which they do not have;
  // point them at layers that attend to the lyrics (enc-dec layer 18, prime layer 31).
  for (const [name, out, layer, head] of [['prior_5b_lyrics_like', 'top5bl-align.safetensors', 18, 2], ['prior_1b_lyrics_like', 'top1bl-align.safetensors', 31, 0]] as const) {
    writeFileSync(p(`${out}.json`), JSON.stringify({ alignment_layer: layer, alignment_head: head }));
    await convertCheckpoint(fixture(`priors/${name}/prior.zip.pth.tar`), p(out), { vqvae: p('vqvae.safetensors'), config: p(`${out}.json`) });
  }
});

const song = { seconds: 0.4, totalSeconds: 30, samples: 2, seed: 3, lyrics: 'I met a traveller from an antique land — “two vast legs of stone”' };

describe('lyric models', () => {
  it('5b_lyrics-like top + upsampler: names resolve through the stored v2 vocabulary', async () => {
    const jb = await loadJukebox({ vqvae: p('vqvae.safetensors'), priors: [undefined, p('up1.safetensors'), p('top5bl.safetensors')] });
    const r = await jb.generate({ ...song, artist: 'The Testers', genre: 'Blues Rock' });
    expect(r.codes[2]!.map((c) => c.length)).toEqual([137, 137]);
    expect(r.codes[1]!.map((c) => c.length)).toEqual([548, 548]);
    // the lyrics condition the samples: other lyrics, other codes
    const other = await jb.generate({ ...song, artist: 'The Testers', genre: 'Blues Rock', lyrics: 'Nothing beside remains.', levels: [2] });
    expect(other.codes[2]!.map((c) => [...c])).not.toEqual(r.codes[2]!.map((c) => [...c]));
    await expect(jb.generate({ ...song, artist: 'Nobody Known', genre: 'blues' })).rejects.toThrow(/Nobody Known/);
    const fallback = await jb.generate({ ...song, artist: 'Nobody Known', genre: 'blues', allowUnknownLabels: true, levels: [2] });
    expect(fallback.codes[2]![0].length).toBe(137);
    jb.dispose();
  });

  it('returns the lyrics alignment: one row per top-level token over the lyric tokens', async () => {
    for (const top of ['top5bl-align.safetensors', 'top1bl-align.safetensors']) {
      const jb = await loadJukebox({ vqvae: p('vqvae.safetensors'), priors: [undefined, undefined, p(top)] });
      const r = await jb.generate({ ...song, artist: '#3', genre: '#5', samples: 1, outputDir: p(`align-${top}`) });
      const a = r.alignment![0];
      expect(a.tokens).toBe(137);
      expect(a.lyricTokens).toBeGreaterThan(50);
      expect(a.weights.length).toBe(a.tokens * a.lyricTokens);
      let nonzero = 0;
      for (let t = 0; t < a.tokens; t++) {
        let sum = 0;
        for (let j = 0; j < a.lyricTokens; j++) sum += a.weights[t * a.lyricTokens + j];
        // attention probabilities over (a window of) the lyrics: at most 1 per music token
        expect(sum).toBeLessThanOrEqual(1 + 1e-5);
        if (sum > 0) nonzero++;
      }
      expect(nonzero).toBe(a.tokens);
      expect(existsSync(join(p(`align-${top}`), 'alignment.npz'))).toBe(true);
      jb.dispose();
    }
  });

  it('1b_lyrics-like top: v3 vocabulary, lyrics as the prefix of one transformer', async () => {
    const jb = await loadJukebox({ vqvae: p('vqvae.safetensors'), priors: [undefined, undefined, p('top1bl.safetensors')] });
    const r = await jb.generate({ ...song, artist: 'the testers', genre: 'Classic Pop' });
    expect(r.codes[2]!.map((c) => c.length)).toEqual([137, 137]);
    for (const c of r.codes[2]!) for (const v of c) expect(v >= 0 && v < 256).toBe(true);
    jb.dispose();
  });

  it('jukebox generate writes WAVs, codes and run.json, and --resume completes a run', async () => {
    const run = promisify(execFile);
    const out = p('cli-out');
    const args = [
      join(repoRoot, 'bin', 'jukebox.js'), 'generate', '--vqvae', p('vqvae.safetensors'), '--top', p('top5bl.safetensors'),
      '--upsampler-1', p('up1.safetensors'), '--artist', 'The Testers', '--genre', 'pop', '--lyrics', 'la la la',
      '--seconds', '0.4', '--total-seconds', '30', '--samples', '2', '--seed', '11', '-o', out,
    ];
    const r = await run(process.execPath, args, { env: { ...process.env, CI: '1' } });
    expect(r.stdout).toMatch(/wrote 4 WAV file\(s\)/);
    for (const f of ['sample_0.wav', 'sample_1.wav', 'level_2_sample_0.wav', 'codes_level_1.npz', 'codes_level_2.npz', 'run.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const wav = parseWav(readFileSync(join(out, 'sample_0.wav')), 'sample_0.wav');
    expect(wav.sampleRate).toBe(44100);
    expect(wav.channels[0].length).toBe(17536);
    const again = await run(process.execPath, [...args, '--resume'], { env: { ...process.env, CI: '1' } });
    expect(again.stdout).toMatch(/seed 11/);
    // Ctrl-C: stops within a token, says how to resume, and --resume finishes the same run
    const out2 = p('cli-sigint');
    const longer = args.map((a) => (a === out ? out2 : a === '0.4' ? '3' : a));
    const child = spawn(process.execPath, longer, { env: { ...process.env, CI: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => String(d).includes('level 1: sampling') && resolve()));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/stopped; .* --resume to continue \[ERR_ABORTED\]/);
    const resumed = await run(process.execPath, [...longer, '--resume'], { env: { ...process.env, CI: '1' } });
    expect(resumed.stdout).toMatch(/wrote 4 WAV file/);
    const bad = await run(process.execPath, [join(repoRoot, 'bin', 'jukebox.js'), 'generate', '-o', out, '--model', p('no-such-model')]).catch((e) => e as { code: number; stderr: string });
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/^jukebox: error: model folder .*no-such-model does not exist \[ERR_MODEL_SET\]/);
    const half = await run(process.execPath, [join(repoRoot, 'bin', 'jukebox.js'), 'generate', '-o', out, '--top', 'x.safetensors']).catch((e) => e as { code: number; stderr: string });
    expect((half as { stderr: string }).stderr).toMatch(/^jukebox: error: pass --vqvae and at least one prior/);
  });
});
