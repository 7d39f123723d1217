/**
 * Lyrics as the lyric priors see them (reference §f.2, f.3; jukebox/data/text_processor.py and
 * get_relevant_lyric_tokens in jukebox/data/labels.py): transliterated to ASCII, reduced to a
 * small character vocabulary, tokenised, and a window of n_tokens of them chosen for each
 * stretch of audio.
 */
import unidecode from 'unidecode';
import { JukeboxError } from '../errors.js';

export type LyricsVersion = 'v2' | 'v3';

// Token id = index + 1; id 0 is <unk>, used only as left padding. v3 (1b_lyrics) lacks '+'
// ("in v3 we missed +", the original README), so every id after '-' is one lower than in v2.
const CHARS: Record<LyricsVersion, string> = {
  v2: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:;!?-+\'"()[] \t\n',
  v3: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:;!?-\'"()[] \t\n',
};
const IDS: Record<LyricsVersion, Map<string, number>> = {
  v2: new Map([...CHARS.v2].map((c, i) => [c, i + 1])),
  v3: new Map([...CHARS.v3].map((c, i) => [c, i + 1])),
};

/** n_vocab of the lyric model: 80 for v2, 79 for v3 (the characters plus <unk>). */
export function lyricsVocabSize(version: LyricsVersion): number {
  return chars(version).length + 1;
}

/**
 * The original's TextProcessor.clean: unidecode to ASCII, backslash to newline, then delete
 * every character outside the vocabulary (its regex lists exactly the vocabulary's characters).
 * So '\r', '*', '&' and '/' vanish, and so does '+' in v3, while the "[?]" that unidecode
 * writes for some characters survives.
 */
export function cleanLyrics(text: string, version: LyricsVersion): string {
  const ids = IDS[checkVersion(version)];
  let out = '';
  for (const c of transliterate(text).replaceAll('\\', '\n')) if (ids.has(c)) out += c;
  return out;
}

export function tokenizeLyrics(text: string, version: LyricsVersion): number[] {
  const ids = IDS[checkVersion(version)];
  return [...cleanLyrics(text, version)].map((c) => ids.get(c)!);
}

/** Tokens back to text; the padding token 0 becomes ''. */
export function textise(tokens: readonly number[], version: LyricsVersion): string {
  const cs = chars(version);
  return tokens
    .map((t) => {
      if (!Number.isInteger(t) || t < 0 || t > cs.length) {
        throw new JukeboxError('ERR_INVALID_ARGUMENT', `lyric token ${t} is outside the ${version} vocabulary (0..${cs.length})`);
      }
      return t === 0 ? '' : cs[t - 1];
    })
    .join('');
}

function chars(version: LyricsVersion): string {
  return CHARS[checkVersion(version)];
}

function checkVersion(version: LyricsVersion): LyricsVersion {
  if (version !== 'v2' && version !== 'v3') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `lyrics version must be "v2" or "v3", got ${JSON.stringify(version)}`);
  }
  return version;
}

// Python unidecode 1.1.1's output where the npm package's differs, for Latin-1, Cyrillic,
// Armenian and Hebrew letters, general punctuation, currency, math operators that turn up in
// text, angle brackets and Hepburn kana.
const OVERRIDES = new Map<number, string>([
  [0xbc, ' 1/4 '], [0xbd, ' 1/2 '], [0xbe, ' 3/4 '],
  [0x404, 'Ie'], [0x42a, "'"], [0x44a, "'"],
  [0x589, ':'],
  [0x5be, '-'], [0x5d0, 'A'], [0x5d7, 'KH'], [0x5e5, 'TS'], [0x5e6, 'TS'], [0x5e9, 'SH'], [0x5f1, 'OY'],
  [0x2028, '\n'], [0x2029, '\n\n'],
  [0x2047, '??'], [0x204e, '*'], [0x2052, '%'], [0x2053, '~'], [0x2057, "''''"], [0x205f, ' '], [0x2060, ''],
  [0x20b0, 'Pf'], [0x20b1, 'P'], [0x20b2, 'G'], [0x20b3, 'A'], [0x20b4, 'UAH'], [0x20b5, 'C|'], [0x20b6, 'L'], [0x20b7, 'Sm'],
  [0x20b8, 'T'], [0x20b9, 'Rs'], [0x20ba, 'L'], [0x20bb, 'M'], [0x20bc, 'm'], [0x20bd, 'R'], [0x20be, 'l'], [0x20bf, 'BTC'],
  [0x2116, 'No. '], [0x2120, '(sm)'], [0x2122, '(tm)'],
  [0x2212, '-'], [0x2215, '/'], [0x2216, '\\'], [0x2217, '*'], [0x2223, '|'], [0x2236, ':'], [0x223c, '~'],
  [0x2264, '<='], [0x2265, '>='], [0x2266, '<='], [0x2267, '>='],
  [0x2329, '<'], [0x232a, '> '], [0x27e6, '['], [0x27e8, '<'], [0x27e9, '> '],
  [0x3057, 'shi'], [0x3061, 'chi'], [0x3063, 'tsu'], [0x3064, 'tsu'], [0x30b7, 'shi'], [0x30c1, 'chi'], [0x30c3, 'tsu'], [0x30c4, 'tsu'],
  [0x30ff, ''],
]);

/**
 * ASCII transliteration as Python's unidecode 1.1.1 (the version the original pins) does it.
 * The npm `unidecode` package carries the same Text::Unidecode-derived tables for almost all
 * of the BMP (CJK and Hangul identical), but must be called one character at a time: on a
 * whole string its UTF-8 sniffing regex skips e.g. "Ã©". Its tables also escape some
 * outputs with a stray backslash ("\@" for 'ə'), which cleaning would turn into a newline,
 * so "\x" is undone to "x". OVERRIDES patches the places where Python's tables differ and
 * ordinary text goes; elsewhere (IPA extensions, enclosed and CJK-compatibility symbols,
 * Arabic ligatures, Greek mathematical letters) a rare character may still transliterate
 * differently.
 */
export function transliterate(text: string): string {
  let out = '';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    if (cp < 0x80) out += c;
    // C1 controls: Python's table is empty there; the package reads them as Windows-1252.
    else if (cp <= 0x9f) continue;
    else if (OVERRIDES.has(cp)) out += OVERRIDES.get(cp);
    else if (isEnclosedOrStyled(cp) && /^[\x20-\x7e]+$/.test(c.normalize('NFKC'))) out += c.normalize('NFKC');
    else out += unidecode(c).replace(/\\(.)/gs, '$1');
  }
  return out;
}

/**
 * Enclosed alphanumerics ("①", "⑴", "ⓐ") and mathematical alphanumerics (styled "𝐀𝐁𝐂"
 * text), where Python's tables give what NFKC gives; the package has nothing for the first
 * and drops everything outside the BMP.
 */
function isEnclosedOrStyled(cp: number): boolean {
  return (cp >= 0x2460 && cp <= 0x24ff) || (cp >= 0x1d400 && cp <= 0x1d7ff);
}

/**
 * The original's get_relevant_lyric_tokens: the n lyric tokens for the audio window
 * [offset, offset + duration) of a song totalLength samples long. Lyrics shorter than n are
 * left-padded with 0 (index -1). Otherwise the window is centred at the same fraction of the
 * lyrics as the audio window's centre is of the song, clamped to stay inside the lyrics.
 *
 * At sampling time the original calls this with offset, duration and totalLength taken from
 * the int64 label tensor (prior.get_y), so `len * (offset + duration / 2.0) / total` runs as
 * float32 tensor math: each operand is converted to float32 and each operation rounded to
 * float32, left to right, and int() truncates. Math.fround at every step reproduces that;
 * float64 arithmetic can pick a mid one token away (only get_label's first row, which the
 * sampler always replaces, uses Python floats).
 */
export function lyricWindow(
  fullTokens: readonly number[],
  nTokens: number,
  totalLength: number,
  offset: number,
  duration: number,
): { tokens: number[]; indices: number[] } {
  if (!Number.isInteger(nTokens) || nTokens < 0) throw new JukeboxError('ERR_HPARAMS', `n_tokens must be a non-negative integer, got ${nTokens}`);
  const len = fullTokens.length;
  if (len < nTokens) {
    const pad = nTokens - len;
    return {
      tokens: [...new Array<number>(pad).fill(0), ...fullTokens],
      indices: Array.from({ length: nTokens }, (_, i) => (i < pad ? -1 : i - pad)),
    };
  }
  if (!(offset >= 0 && offset < totalLength)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `offset ${offset} is outside the song (0 <= offset < total length ${totalLength})`);
  }
  // The original slices [mid - n//2, mid + n//2), which is n tokens only for even n.
  if (nTokens % 2 !== 0) throw new JukeboxError('ERR_HPARAMS', `n_tokens must be even, got ${nTokens}`);
  const f = Math.fround;
  const centre = f(f(offset) + f(f(duration) / 2));
  const raw = Math.trunc(f(f(f(len) * centre) / f(totalLength)));
  const half = nTokens / 2;
  const mid = Math.min(Math.max(raw, half), len - half);
  const indices = Array.from({ length: nTokens }, (_, i) => mid - half + i);
  return { tokens: indices.map((i) => fullTokens[i]), indices };
}
