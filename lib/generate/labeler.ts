/**
 * A prior's labels for generate(): artist/genre ids through the prior's own vocabulary
 * (stored in the converted file's metadata; v2 for 5b/5b_lyrics/upsamplers, v3 for
 * 1b_lyrics), lyric tokens through its text processor, and per window the offset, window
 * length and re-centred lyric window (jukebox/prior/prior.py get_y; reference §d.2, §f).
 */
import { JukeboxError } from '../errors.js';
import { META } from '../model-file.js';
import type { Prior } from '../prior/prior.js';
import { artistId, genreIds, parseVocabulary, type Vocabulary } from '../labels/vocab.js';
import { lyricWindow, tokenizeLyrics } from '../labels/lyrics.js';
import type { WindowLabels } from './sample-level.js';

export interface LabelRequest {
  artist?: string | number;
  genre?: string | number | (string | number)[];
  lyrics?: string;
  /** Samples of the whole song. */
  totalLength: number;
}

interface BaseRows {
  n: number;
  /** [total_length, 0, 0, artist, genres...] per sample (offset and length set per window). */
  rows: Int32Array;
  /** The whole lyrics as tokens (lyric models). */
  lyricTokens: number[];
}

export interface Labeler {
  baseRows(n: number, r: LabelRequest): BaseRows;
  windowLabels(base: BaseRows, start: number): WindowLabels;
}

function vocabularyOf(prior: Prior): Vocabulary | undefined {
  const raw = prior.metadata[META.vocab];
  return raw ? parseVocabulary(raw, `${prior.path} (metadata ${META.vocab})`) : undefined;
}

export function labelerFor(prior: Prior, opts: { allowUnknown: boolean }): Labeler {
  const s = prior.structure;
  const L = s.labels;
  const vocab = vocabularyOf(prior);
  const version = L.v3 ? 'v3' : 'v2';
  const inRange = (id: number, what: string, bins: number) => {
    if (id >= bins) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what} id ${id} is outside [0, ${bins}) for ${prior.path}`);
    return id;
  };
  return {
    baseRows(n, r) {
      const len = 4 + L.maxBowGenreSize;
      // Without a name the original's "unknown" id 0 is used.
      const artist = inRange(r.artist === undefined ? 0 : artistId(vocab, r.artist, opts), 'artist', L.artistBins);
      const genres = (r.genre === undefined ? [0] : genreIds(vocab, r.genre, L.maxBowGenreSize, opts)).map((g) =>
        g < 0 ? g : inRange(g, 'genre', L.genreBins),
      );
      const rows = new Int32Array(n * len).fill(-1);
      for (let b = 0; b < n; b++) rows.set([r.totalLength, 0, 0, artist, ...genres], b * len);
      const lyricTokens = s.nTokens > 0 && r.lyrics ? tokenizeLyrics(r.lyrics, version) : [];
      return { n, rows, lyricTokens };
    },
    windowLabels(base, start) {
      const len = 4 + L.maxBowGenreSize;
      const y = base.rows.slice();
      const offset = start * s.rawToTokens;
      const duration = s.nCtx * s.rawToTokens;
      for (let b = 0; b < base.n; b++) {
        y[b * len + 1] = offset;
        y[b * len + 2] = duration;
      }
      if (s.nTokens === 0) return { y };
      const total = base.rows[0];
      const win = lyricWindow(base.lyricTokens, s.nTokens, total, offset, duration).tokens;
      const lyrics = new Int32Array(base.n * s.nTokens);
      for (let b = 0; b < base.n; b++) lyrics.set(win, b * s.nTokens);
      return { y, lyrics };
    },
  };
}
