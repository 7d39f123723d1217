/**
 * The label row y that conditions a prior (reference §f.3 and §d.2; jukebox/data/labels.py
 * Labeller.get_label and prior.get_y):
 *
 *   [total_length, offset, sample_length, artist_id, genre ids x max_bow_genre_size,
 *    lyric tokens x n_tokens]
 *
 * lengths in samples, genre slots padded with -1, lyric slots with 0. The sampler asks for a
 * row per window: the offset moves with the window and the lyric window re-centres on it.
 */
import { JukeboxError } from '../errors.js';
import { lyricWindow, tokenizeLyrics, type LyricsVersion } from './lyrics.js';
import { artistId, genreIds, type GenreInput, type LookupOptions, type Vocabulary } from './vocab.js';

export interface LabelInput {
  /** Length of the whole song, in samples. */
  totalLength: number;
  /** Where the sample starts in the song, in samples. */
  offset: number;
  /** Samples one window of the prior covers (n_ctx * raw_to_tokens). */
  sampleLength: number;
  /** A name, a numeric id or "#id" (see vocab.ts). */
  artist: string | number;
  genre: GenreInput;
  /** Unused by models without lyric tokens; missing or empty lyrics give all padding. */
  lyrics?: string;
}

export interface LabelOptions extends LookupOptions {
  /** The model's artist/genre vocabulary; without one only numeric ids are accepted. */
  vocab?: Vocabulary;
  maxBowGenreSize: number;
  /** Lyric slots of the row (0 for models without lyrics). */
  nTokens: number;
  lyricsVersion: LyricsVersion;
}

export interface LabelRow {
  y: Int32Array;
  /** All the lyrics' tokens, which every window's lyric slots are taken from. */
  fullTokens: readonly number[];
  /** Index into fullTokens of each lyric slot of y, -1 for padding (used for alignment). */
  lyricIndices: number[];
}

export function labelRow(input: LabelInput, opts: LabelOptions): LabelRow {
  const { totalLength, offset, sampleLength } = input;
  checkInt('total length', totalLength, 1);
  checkInt('sample length', sampleLength, 1);
  checkOffset(offset, totalLength);
  if (!Number.isInteger(opts.nTokens) || opts.nTokens < 0) {
    throw new JukeboxError('ERR_HPARAMS', `n_tokens must be a non-negative integer, got ${opts.nTokens}`);
  }
  const head = [
    totalLength,
    offset,
    sampleLength,
    artistId(opts.vocab, input.artist, opts),
    ...genreIds(opts.vocab, input.genre, opts.maxBowGenreSize, opts),
  ];
  // The original passes the same metadata to every level, so lyrics meeting a model without
  // lyric tokens (the upsamplers) are simply unused.
  const fullTokens = opts.nTokens > 0 ? tokenizeLyrics(input.lyrics ?? '', opts.lyricsVersion) : [];
  return withLyrics(head, fullTokens, opts.nTokens);
}

/**
 * The row for the window starting at token `start` of a level (prior.get_y): offset =
 * base offset + start * rawToTokens, sample_length = the full window's length in samples
 * (n_ctx * raw_to_tokens, even for a partial window), and the lyric slots re-centred on it.
 */
export function windowLabels(base: LabelRow, start: number, rawToTokens: number, sampleLength: number): LabelRow {
  checkInt('window start', start, 0);
  checkInt('raw_to_tokens', rawToTokens, 1);
  checkInt('sample length', sampleLength, 1);
  const nTokens = base.lyricIndices.length;
  const head = Array.from(base.y.subarray(0, base.y.length - nTokens));
  head[1] += start * rawToTokens;
  head[2] = sampleLength;
  checkOffset(head[1], head[0]);
  return withLyrics(head, base.fullTokens, nTokens);
}

function withLyrics(head: number[], fullTokens: readonly number[], nTokens: number): LabelRow {
  const { tokens, indices } = lyricWindow(fullTokens, nTokens, head[0], head[1], head[2]);
  return { y: Int32Array.from([...head, ...tokens]), fullTokens, lyricIndices: indices };
}

function checkInt(what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min || v >= 2 ** 31) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${what} must be an integer from ${min} to 2^31 - 1, got ${v}`);
  }
}

// The original asserts this for the lyric window, and its timing embedding needs
// offset / total_length in [0, 1).
function checkOffset(offset: number, totalLength: number): void {
  checkInt('offset', offset, 0);
  if (offset >= totalLength) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `offset ${offset} is past the end of the song (total length ${totalLength} samples)`);
  }
}
