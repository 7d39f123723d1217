/**
 * Output folders for the explorer's tests, made by generate() with the original's tiny
 * fixture models (converted here): a lyric top prior whose alignment layer attends to the
 * lyrics, and a level-1 upsampler. One run samples levels 2 and 1 for two samples with
 * lyrics (so it has an alignment), one samples the top level only (so it can be upsampled).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertCheckpoint } from '../../lib/convert.js';
import { loadJukebox } from '../../lib/generate/generate.js';
import { writeRunAudio } from '../../lib/generate/run-files.js';
import { fixture } from './fixtures.js';

export const LYRICS = 'Hello darkness my old friend\nI have come to talk with you again';

export interface ExploreRuns {
  root: string;
  models: string;
  withLyrics: string;
  topOnly: string;
}

/** Writes models/ and runs/{lyrics,top-only} under dir. */
export async function makeExploreRuns(dir: string, seconds = 1.5): Promise<ExploreRuns> {
  const models = join(dir, 'models');
  const root = join(dir, 'runs');
  mkdirSync(models, { recursive: true });
  const m = (f: string) => join(models, f);
  writeFileSync(m('artists.txt'), 'unknown;0\nthe_testers;3\n');
  writeFileSync(m('genres.txt'), 'unknown;0\nblues;2\nrock;8\n');
  writeFileSync(m('align.json'), JSON.stringify({ alignment_layer: 18, alignment_head: 2 }));
  await convertCheckpoint(fixture('vqvae/vqvae.legacy.pth.tar'), m('vqvae.safetensors'));
  await convertCheckpoint(fixture('priors/upsampler_like/prior.zip.pth.tar'), m('up1.safetensors'), { vqvae: m('vqvae.safetensors'), artistIds: m('artists.txt'), genreIds: m('genres.txt') });
  await convertCheckpoint(fixture('priors/prior_5b_lyrics_like/prior.zip.pth.tar'), m('top.safetensors'), {
    vqvae: m('vqvae.safetensors'),
    artistIds: m('artists.txt'),
    genreIds: m('genres.txt'),
    config: m('align.json'),
  });
  const jb = await loadJukebox({ vqvae: m('vqvae.safetensors'), priors: [undefined, m('up1.safetensors'), m('top.safetensors')], backend: 'cpu' });
  try {
    const withLyrics = join(root, 'lyrics');
    const a = await jb.generate({ artist: 'The Testers', genre: 'blues', lyrics: LYRICS, seconds, totalSeconds: 30, samples: 2, seed: 5, outputDir: withLyrics });
    await writeRunAudio(withLyrics, a, 's16');
    const topOnly = join(root, 'top-only');
    const b = await jb.generate({ artist: 'The Testers', genre: 'rock', seconds, totalSeconds: 30, samples: 1, seed: 9, levels: [2], outputDir: topOnly });
    await writeRunAudio(topOnly, b, 's16');
    return { root, models, withLyrics, topOnly };
  } finally {
    jb.dispose();
  }
}
