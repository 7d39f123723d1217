/**
 * A prior's labels for generate(): lib/labels builds the original's label row through the
 * prior's own vocabulary (stored in the converted file's metadata; v2 for 5b, 5b_lyrics
 * and the upsamplers, v3 for 1b_lyrics) and re-centres it per window; this file splits
 * that row into the parts the prior takes (label conditioner input, lyric tokens) for n
 * samples.
 */
import { META } from '../model-file.js';
import type { Prior } from '../prior/prior.js';
import { labelRow, windowLabels as labelsForWindow, type LabelRow } from '../labels/labels.js';
import type { GenreInput } from '../labels/vocab.js';
import { parseVocabulary } from '../labels/vocab.js';
import type { WindowLabels } from './sample-level.js';

export interface LabelRequest {
  artist?: string | number;
  genre?: GenreInput;
  lyrics?: string;
  /** Samples of the whole song. */
  totalLength: number;
}

export interface Labeler {
  /** The song's labels (offset 0), resolved once. */
  base(r: LabelRequest): LabelRow;
  /** n samples' label rows and lyric tokens for the window starting at token `start`. */
  windowLabels(base: LabelRow, n: number, start: number): WindowLabels;
}

export function labelerFor(prior: Prior, opts: { allowUnknown: boolean }): Labeler {
  const s = prior.structure;
  const raw = prior.metadata[META.vocab];
  const vocab = raw ? parseVocabulary(raw, `${prior.path} (metadata ${META.vocab})`) : undefined;
  const windowSamples = s.nCtx * s.rawToTokens;
  const head = 4 + s.labels.maxBowGenreSize;
  return {
    base: (r) =>
      labelRow(
        // Without a name the original's "unknown" id 0 is used.
        { totalLength: r.totalLength, offset: 0, sampleLength: windowSamples, artist: r.artist ?? 0, genre: r.genre ?? 0, lyrics: r.lyrics },
        {
          vocab,
          maxBowGenreSize: s.labels.maxBowGenreSize,
          nTokens: s.nTokens,
          lyricsVersion: s.labels.v3 ? 'v3' : 'v2',
          allowUnknown: opts.allowUnknown,
        },
      ),
    windowLabels(base, n, start) {
      const row = labelsForWindow(base, start, s.rawToTokens, windowSamples).y;
      const y = new Int32Array(n * head);
      const lyrics = s.nTokens ? new Int32Array(n * s.nTokens) : undefined;
      for (let b = 0; b < n; b++) {
        y.set(row.subarray(0, head), b * head);
        lyrics?.set(row.subarray(head), b * s.nTokens);
      }
      return { y, lyrics };
    },
  };
}
