/**
 * Label rows, lyrics and vocabularies against the original implementation: the fixture labels
 * the original wrote, expectations computed with the original code (text_processor.py with
 * unidecode 1.1.1, artist_genre_processor.py with the real id files, get_relevant_lyric_tokens
 * on int64 tensors), and the rules of reference §f on small vocabularies of our own.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isJukeboxError, type JukeboxErrorCode } from '../lib/errors.js';
import { labelRow, windowLabels } from '../lib/labels/labels.js';
import { cleanLyrics, lyricWindow, lyricsVocabSize, textise, tokenizeLyrics, transliterate, type LyricsVersion } from '../lib/labels/lyrics.js';
import {
  artistId,
  genreIds,
  nearestNames,
  parseIdsFile,
  parseVocabulary,
  vocabularyFromFiles,
  type Vocabulary,
} from '../lib/labels/vocab.js';
import { fixture, readI32, repoRoot } from './helpers/fixtures.js';

function expectError(fn: () => unknown, code: JukeboxErrorCode, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(isJukeboxError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  for (const p of parts) expect((err as Error).message).toMatch(p);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// ---------------------------------------------------------------------------------------------
// Fixtures written by the original (test/fixtures/priors)

interface FixtureLabel {
  artist_id: number;
  genre_ids: number[];
  total_length: number;
  offset: number;
  sample_length: number;
  lyrics_raw: string | null;
  lyrics_cleaned: string | null;
  full_tokens: number[];
  window_indices: number[];
  window_tokens: number[];
}
interface FixturePrior {
  n_tokens: number;
  raw_to_tokens: number;
  effective_hparams: { labels_v3: boolean; max_bow_genre_size: number };
  labels: FixtureLabel[];
}
const priors = (JSON.parse(readFileSync(fixture('priors/manifest.json'), 'utf8')) as { priors: Record<string, FixturePrior> }).priors;
const version = (p: FixturePrior): LyricsVersion => (p.effective_hparams.labels_v3 ? 'v3' : 'v2');

describe('fixture labels of the original', () => {
  const lyricPriors = ['prior_1b_lyrics_like', 'prior_5b_lyrics_like'] as const;

  it('are the lyric models expected (v3 with 24 tokens, v2 with 32)', () => {
    expect([version(priors.prior_1b_lyrics_like), priors.prior_1b_lyrics_like.n_tokens]).toEqual(['v3', 24]);
    expect([version(priors.prior_5b_lyrics_like), priors.prior_5b_lyrics_like.n_tokens]).toEqual(['v2', 32]);
  });

  for (const name of lyricPriors) {
    describe(name, () => {
      const p = priors[name];
      it.each(p.labels.map((l, i) => [i, l] as const))('row %i: clean, tokenise and window as the original', (_, l) => {
        expect(cleanLyrics(l.lyrics_raw!, version(p))).toBe(l.lyrics_cleaned);
        expect(tokenizeLyrics(l.lyrics_raw!, version(p))).toEqual(l.full_tokens);
        expect(textise(l.full_tokens, version(p))).toBe(l.lyrics_cleaned);
        const w = lyricWindow(l.full_tokens, p.n_tokens, l.total_length, l.offset, l.sample_length);
        expect(w.tokens).toEqual(l.window_tokens);
        expect(w.indices).toEqual(l.window_indices);
      });
    });
  }

  it('include both a sliding window and a left-padded one', () => {
    for (const name of lyricPriors) {
      const [long, short] = priors[name].labels;
      expect(long.window_indices[0]).toBeGreaterThan(0);
      expect(short.window_indices[0]).toBe(-1);
    }
  });

  for (const name of Object.keys(priors)) {
    it(`${name}: labelRow gives the original's y rows exactly`, () => {
      const p = priors[name];
      const mb = p.effective_hparams.max_bow_genre_size;
      const width = 4 + mb + p.n_tokens;
      const y = readI32(`priors/${name}/y.i32.bin`);
      expect(y.length).toBe(p.labels.length * width);
      p.labels.forEach((l, i) => {
        const row = labelRow(
          {
            totalLength: l.total_length,
            offset: l.offset,
            sampleLength: l.sample_length,
            artist: l.artist_id,
            genre: l.genre_ids,
            lyrics: l.lyrics_raw ?? undefined,
          },
          { maxBowGenreSize: mb, nTokens: p.n_tokens, lyricsVersion: version(p) },
        );
        expect(Array.from(row.y)).toEqual(Array.from(y.subarray(i * width, (i + 1) * width)));
        expect(row.lyricIndices).toEqual(l.window_indices);
        // The sampler's first window (start 0) reproduces the same row.
        expect(Array.from(windowLabels(row, 0, p.raw_to_tokens, l.sample_length).y)).toEqual(Array.from(row.y));
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Lyrics

describe('lyrics vocabulary', () => {
  it('has 80 (v2) and 79 (v3) entries with the ids of reference §f.2', () => {
    expect(lyricsVocabSize('v2')).toBe(80);
    expect(lyricsVocabSize('v3')).toBe(79);
    const all = 'AZaz09.,:;!?-+\'"()[] \t\n';
    expect(tokenizeLyrics(all, 'v2')).toEqual([1, 26, 27, 52, 53, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79]);
    // v3 has no '+': it is deleted, and every id after '-' is one lower.
    expect(tokenizeLyrics(all, 'v3')).toEqual([1, 26, 27, 52, 53, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78]);
  });

  it('textise inverts tokenise, maps padding to "" and rejects ids outside the vocabulary', () => {
    expect(textise([0, 0, 8, 35, 70], 'v2')).toBe('Hi+');
    expect(textise([0, 8, 35, 70], 'v3')).toBe("Hi'");
    expectError(() => textise([80], 'v2'), 'ERR_INVALID_ARGUMENT', /80/);
    expectError(() => textise([79], 'v3'), 'ERR_INVALID_ARGUMENT');
    expectError(() => textise([-1], 'v3'), 'ERR_INVALID_ARGUMENT');
    expectError(() => tokenizeLyrics('x', 'v4' as LyricsVersion), 'ERR_INVALID_ARGUMENT', /v4/);
  });
});

describe('cleanLyrics (expectations from the original TextProcessor with unidecode 1.1.1)', () => {
  // [input, v2 cleaned, v3 cleaned]
  const cases: [string, string, string][] = [
    ["Céline Dion — «Pour que tu m'aimes encore»", "Celine Dion -- Pour que tu m'aimes encore", "Celine Dion -- Pour que tu m'aimes encore"],
    ['“Smart quotes” and ‘single’ ones – en dash … ellipsis', `"Smart quotes" and 'single' ones - en dash ... ellipsis`, `"Smart quotes" and 'single' ones - en dash ... ellipsis`],
    ['Über Straße: Ça ira! ¿Dónde? Mañana, Łódź, İstanbul', 'Uber Strasse: Ca ira! ?Donde? Manana, Lodz, Istanbul', 'Uber Strasse: Ca ira! ?Donde? Manana, Lodz, Istanbul'],
    ['東京の夜 さくら, 我爱你 사랑해', 'Dong Jing noYe  sakura, Wo Ai Ni  saranghae', 'Dong Jing noYe  sakura, Wo Ai Ni  saranghae'],
    ['Emoji 😀🎶❤️ ★ ♪ © ® ™ ° × ÷ € £ ½', 'Emoji [?]   (c) (r) (tm) deg x  EUR PS  12 ', 'Emoji [?]   (c) (r) (tm) deg x  EUR PS  12 '],
    ['tab\there, back\\slash, CR\r\nLF, form\x0cfeed', 'tab\there, back\nslash, CR\nLF, formfeed', 'tab\there, back\nslash, CR\nLF, formfeed'],
    ['a+b=c & d*e/f #1 @you <tag> {x} |pipe| ~tilde_ `tick` $5 50%', 'a+bc  def 1 you tag x pipe tilde tick 5 50', 'abc  def 1 you tag x pipe tilde tick 5 50'],
    ['Ə ə 𝐁𝐨𝐥𝐝 ① ⑵ − ≤ – ‑', '  Bold 1 (2) -  - -', '  Bold 1 (2) -  - -'],
    ['\x85\x93quoted\x94 \u00a0nbsp\u2028next\u2029para', 'quoted  nbsp\nnext\n\npara', 'quoted  nbsp\nnext\n\npara'],
    ['Привет, мир! Ελλάδα. שלום', 'Privet, mir! Ellada. SHlvm', 'Privet, mir! Ellada. SHlvm'],
  ];
  it.each(cases)('%j', (input, v2, v3) => {
    expect(cleanLyrics(input, 'v2')).toBe(v2);
    expect(cleanLyrics(input, 'v3')).toBe(v3);
  });

  it('transliterates like Python unidecode where the npm tables differ or misbehave', () => {
    // Python: ["A(c)", "@", "", " 1/2 ", "shichitsu", "1(2)", "A9", "", "Bei Jing ", ...]
    expect(transliterate('Ã©')).toBe('A(c)'); // the package skips "Ã" when called on a whole string
    expect(transliterate('ə')).toBe('@'); // its table says "\@", which cleaning would make a newline
    expect(transliterate('\x85')).toBe(''); // C1 control, not Windows-1252 "..."
    expect(transliterate('½')).toBe(' 1/2 ');
    expect(transliterate('しちつ')).toBe('shichitsu');
    expect(transliterate('①⑵')).toBe('1(2)');
    expect(transliterate('𝐀𝟗')).toBe('A9');
    expect(transliterate('😀')).toBe('');
    expect(transliterate('北京')).toBe('Bei Jing ');
    expect(transliterate('—“”‘’…')).toBe(`--""''...`);
    expect(transliterate('Ъ\u2028™')).toBe("'\n(tm)");
  });

  it('keeps "[?]" and deletes characters outside the vocabulary rather than mapping them to <unk>', () => {
    expect(tokenizeLyrics('a*b', 'v2')).toEqual([27, 28]);
    expect(tokenizeLyrics('[?]', 'v3')).toEqual([74, 68, 75]);
    expect(tokenizeLyrics('', 'v2')).toEqual([]);
  });
});

describe('lyricWindow (get_relevant_lyric_tokens)', () => {
  const full = range(100).map((i) => (i % 79) + 1);

  it('left-pads lyrics shorter than the window with 0 (index -1)', () => {
    expect(lyricWindow([5, 6], 4, 1000, 999, 10)).toEqual({ tokens: [0, 0, 5, 6], indices: [-1, -1, 0, 1] });
    expect(lyricWindow([], 3, 1000, 0, 10)).toEqual({ tokens: [0, 0, 0], indices: [-1, -1, -1] });
    // Odd windows and any offset are fine while padding: the original checks neither there.
    expect(lyricWindow([5], 3, 10, 50, 10).indices).toEqual([-1, -1, 0]);
  });

  it('centres on the same fraction of the lyrics as the audio window is of the song', () => {
    // mid = int(100 * (500 + 100 / 2) / 1000) = 55
    const w = lyricWindow(full, 10, 1000, 500, 100);
    expect(w.indices).toEqual(range(10).map((i) => 50 + i));
    expect(w.tokens).toEqual(w.indices.map((i) => full[i]));
  });

  it('clamps at the start and at the end of the lyrics', () => {
    expect(lyricWindow(full, 10, 1000, 0, 2).indices).toEqual(range(10));
    expect(lyricWindow(full, 10, 1000, 999, 1000).indices).toEqual(range(10).map((i) => 90 + i));
    expect(lyricWindow(full.slice(0, 10), 10, 1000, 600, 100).indices).toEqual(range(10));
  });

  it('uses float32 arithmetic, as the original does on the int64 label tensor', () => {
    // Both cases were checked with the original function on torch.long tensors (torch 1.13).
    const f64 = (len: number, total: number, offset: number, duration: number): number => Math.trunc((len * (offset + duration / 2)) / total);
    // A 33 s song (1455300 samples) with 3268 lyric tokens, 1b_lyrics window at start 0.
    expect(f64(3268, 1455300, 0, 786432)).toBe(882);
    expect(lyricWindow(range(3268), 384, 1455300, 0, 786432).indices[0]).toBe(883 - 192);
    // A small one where float32 rounds the other way.
    expect(f64(111, 176083, 157015, 64)).toBe(99);
    expect(lyricWindow(range(111), 4, 176083, 157015, 64).indices).toEqual([96, 97, 98, 99]);
  });

  it('rejects what the original asserts on: offset outside the song, odd windows over long lyrics', () => {
    expectError(() => lyricWindow(full, 10, 1000, 1000, 100), 'ERR_INVALID_ARGUMENT', /offset 1000/);
    expectError(() => lyricWindow(full, 10, 1000, -1, 100), 'ERR_INVALID_ARGUMENT');
    expectError(() => lyricWindow(full, 9, 1000, 0, 100), 'ERR_HPARAMS', /even/);
    expectError(() => lyricWindow(full, -1, 1000, 0, 100), 'ERR_HPARAMS');
  });
});

// ---------------------------------------------------------------------------------------------
// Label rows and windows

describe('labelRow and windowLabels', () => {
  const vocab: Vocabulary = {
    version: 'v2',
    artists: { unknown: 0, '': 0, alan_jackson: 1, c_line_dion: 2 },
    genres: { unknown: 0, country: 1, rock: 2, pop: 3 },
  };
  const opts = { vocab, maxBowGenreSize: 5, nTokens: 8, lyricsVersion: 'v2' as const };
  const lyrics = 'old town road, ride till I cannot no more';
  const base = labelRow({ totalLength: 441000, offset: 44100, sampleLength: 8192, artist: 'Alan Jackson', genre: 'Country Rock', lyrics }, opts);

  it('lays out [total, offset, length, artist, genres..., lyric window...]', () => {
    const full = tokenizeLyrics(lyrics, 'v2');
    const w = lyricWindow(full, 8, 441000, 44100, 8192);
    expect(Array.from(base.y)).toEqual([441000, 44100, 8192, 1, 1, 2, -1, -1, -1, ...w.tokens]);
    expect(base.fullTokens).toEqual(full);
    expect(base.lyricIndices).toEqual(w.indices);
  });

  it('moves the offset with the window, sets the full window length and re-centres the lyrics', () => {
    const snapshot = Array.from(base.y);
    const win = windowLabels(base, 1000, 128, 786432);
    const w = lyricWindow(base.fullTokens, 8, 441000, 44100 + 128000, 786432);
    expect(Array.from(win.y)).toEqual([441000, 44100 + 128000, 786432, 1, 1, 2, -1, -1, -1, ...w.tokens]);
    expect(win.lyricIndices).toEqual(w.indices);
    expect(win.lyricIndices).not.toEqual(base.lyricIndices);
    expect(Array.from(base.y)).toEqual(snapshot);
    expectError(() => windowLabels(base, 3102, 128, 786432), 'ERR_INVALID_ARGUMENT', /past the end/);
    expectError(() => windowLabels(base, -1, 128, 786432), 'ERR_INVALID_ARGUMENT');
  });

  it('pads a lyric model without lyrics and ignores lyrics for a model without lyric tokens', () => {
    const row = labelRow({ totalLength: 100, offset: 0, sampleLength: 10, artist: 0, genre: 0 }, opts);
    expect(Array.from(row.y.subarray(9))).toEqual(new Array(8).fill(0));
    const plain = labelRow({ totalLength: 100, offset: 0, sampleLength: 10, artist: '#2', genre: ['#3', 'rock'], lyrics }, { ...opts, nTokens: 0 });
    expect(Array.from(plain.y)).toEqual([100, 0, 10, 2, 3, 2, -1, -1, -1]);
    expect(windowLabels(plain, 5, 2, 10).y[1]).toBe(10);
  });

  it('validates lengths and offsets', () => {
    const l = { totalLength: 100, offset: 0, sampleLength: 10, artist: 0, genre: 0 };
    expectError(() => labelRow({ ...l, offset: 100 }, opts), 'ERR_INVALID_ARGUMENT', /past the end/);
    expectError(() => labelRow({ ...l, totalLength: 0 }, opts), 'ERR_INVALID_ARGUMENT');
    expectError(() => labelRow({ ...l, totalLength: 2 ** 31 }, opts), 'ERR_INVALID_ARGUMENT');
    expectError(() => labelRow({ ...l, sampleLength: 1.5 }, opts), 'ERR_INVALID_ARGUMENT');
    expectError(() => labelRow(l, { ...opts, nTokens: -2 }), 'ERR_HPARAMS');
  });
});

// ---------------------------------------------------------------------------------------------
// Vocabularies

describe('parseIdsFile', () => {
  it('lowercases names, lets later lines win, allows shared ids and the empty name', () => {
    const ids = parseIdsFile('Unknown;0\r\nvarious;0\n;0\nSpeaker;5\nCéline Dion;7\rspeaker;9\n', 'ids.txt');
    expect([...ids]).toEqual([['unknown', 0], ['various', 0], ['', 0], ['speaker', 9], ['céline dion', 7]]);
  });

  it('strips lines like Python (not JS trim) and accepts " 5" and "+5" ids as int() does', () => {
    const ids = parseIdsFile('\x1c a b ;+5\n\ufeffc; 6\u3000\n', 'ids.txt');
    expect([...ids]).toEqual([['a b ', 5], ['\ufeffc', 6]]);
  });

  it('names the file and line of a malformed line', () => {
    expectError(() => parseIdsFile('a;1\n\nb;2\n', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:2');
    expectError(() => parseIdsFile('a;1\nb;2;3\n', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:2');
    expectError(() => parseIdsFile('a;1\nb\n', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:2');
    expectError(() => parseIdsFile('a;x\n', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:1', /"x"/);
    expectError(() => parseIdsFile('a;-1\n', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:1');
    expectError(() => parseIdsFile('', 'v9.txt'), 'ERR_INVALID_ARGUMENT', 'v9.txt:1');
  });
});

describe('vocabulary files and JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jukebox-vocab-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string | Buffer): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it('reads id files (dropping a BOM) into a JSON round-trippable vocabulary', async () => {
    const a = write('artists.txt', '\ufeffUnknown;0\nThe Beatles;1\n__proto__;2\n');
    const g = write('genres.txt', 'unknown;0\nrock;1\n');
    const vocab = await vocabularyFromFiles(a, g, 'v3');
    expect(vocab).toEqual({ version: 'v3', artists: { unknown: 0, 'the beatles': 1, ['__proto__']: 2 }, genres: { unknown: 0, rock: 1 } });
    expect(artistId(vocab, '__proto__')).toBe(2);
    const back = parseVocabulary(JSON.stringify(vocab), 'model.safetensors');
    expect(back).toEqual(vocab);
    expect(artistId(back, 'THE BEATLES')).toBe(1);
  });

  it('reports unreadable and non-UTF-8 files', async () => {
    const g = write('g.txt', 'rock;1\n');
    await expect(vocabularyFromFiles(join(dir, 'missing.txt'), g, 'v2')).rejects.toMatchObject({ code: 'ERR_IO' });
    const bad = write('bad.txt', Buffer.from([0x61, 0xff, 0x3b, 0x31, 0x0a]));
    await expect(vocabularyFromFiles(bad, g, 'v2')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /UTF-8/ });
    await expect(vocabularyFromFiles(g, g, 'v1' as 'v2')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('rejects malformed vocabulary JSON', () => {
    expectError(() => parseVocabulary('{', 'm'), 'ERR_HPARAMS');
    expectError(() => parseVocabulary('{"version":"v4","artists":{},"genres":{}}', 'm'), 'ERR_HPARAMS', /version/);
    expectError(() => parseVocabulary('{"version":"v2","artists":[],"genres":{}}', 'm'), 'ERR_HPARAMS', /artists/);
    expectError(() => parseVocabulary('{"version":"v2","artists":{"a":-1},"genres":{}}', 'm'), 'ERR_HPARAMS', /"a"/);
  });
});

describe('lookup rules', () => {
  const v2: Vocabulary = {
    version: 'v2',
    artists: { unknown: 0, various: 0, '': 0, c_line_dion: 557, ac_dc: 3, '112': 4, the_beatles: 5, beach_boys: 6 },
    genres: { unknown: 0, blues: 2, rock: 8, hip: 3, hop: 4, pop: 14 },
  };
  const v3: Vocabulary = {
    version: 'v3',
    artists: { unknown: 0, 'céline dion': 5220, 'ac/dc': 3, 'the beatles': 7 },
    genres: { unknown: 0, 'classic pop': 134, 'blues rock': 9, rock: 10 },
  };

  it('v2: norm() artists, bag-of-words genres padded with -1', () => {
    expect(artistId(v2, 'Céline Dion')).toBe(557);
    expect(artistId(v2, '  AC/DC!! ')).toBe(3);
    expect(artistId(v2, '__c__line__dion__')).toBe(557);
    expect(artistId(v2, '')).toBe(0);
    expect(artistId(v2, '112')).toBe(4); // a digit-only string is a name
    expect(genreIds(v2, 'Blues Rock', 5)).toEqual([2, 8, -1, -1, -1]);
    expect(genreIds(v2, 'hip-hop/POP', 5)).toEqual([3, 4, 14, -1, -1]);
    expectError(() => genreIds(v2, 'blues rock hip hop pop rock', 5), 'ERR_INVALID_ARGUMENT', /6 ids/);
  });

  it('v3: lowercase only, one genre slot', () => {
    expect(artistId(v3, 'Céline Dion')).toBe(5220);
    expect(artistId(v3, 'AC/DC')).toBe(3);
    expect(genreIds(v3, 'Classic Pop', 1)).toEqual([134]);
    expectError(() => artistId(v3, 'celine dion'), 'ERR_INVALID_ARGUMENT', '"céline dion" (#5220)');
    expectError(() => artistId(v3, ' the beatles'), 'ERR_INVALID_ARGUMENT', '"the beatles" (#7)');
    expectError(() => genreIds(v3, 'Blues-Rock', 1), 'ERR_INVALID_ARGUMENT', '"blues-rock"', '"blues rock" (#9)');
    expectError(() => genreIds(v3, ['rock', 'classic pop'], 1), 'ERR_INVALID_ARGUMENT', /at most 1/);
  });

  it('accepts numeric ids ("#5", 5, lists) within the vocabulary range', () => {
    expect(artistId(v2, 557)).toBe(557);
    expect(artistId(v2, ' #557 ')).toBe(557);
    expect(genreIds(v2, '#2 #8', 5)).toEqual([2, 8, -1, -1, -1]);
    expect(genreIds(v2, [2, '#8', 'pop'], 5)).toEqual([2, 8, 14, -1, -1]);
    expectError(() => artistId(v2, 558), 'ERR_INVALID_ARGUMENT', /0 to 557/);
    expectError(() => artistId(v2, -1), 'ERR_INVALID_ARGUMENT');
    expectError(() => artistId(v2, 1.5), 'ERR_INVALID_ARGUMENT');
    expectError(() => artistId(v2, '#1 #2'), 'ERR_INVALID_ARGUMENT', /one artist id/);
    expectError(() => genreIds(v3, '#135', 1), 'ERR_INVALID_ARGUMENT', /0 to 134/);
  });

  it('throws on unknown names with suggestions, or maps them to 0 with allowUnknown', () => {
    expectError(() => artistId(v2, 'Beatles'), 'ERR_INVALID_ARGUMENT', '"Beatles"', '"the_beatles" (#5)', /allow unknown/);
    expectError(() => artistId(v2, 'constructor'), 'ERR_INVALID_ARGUMENT', /unknown artist "constructor"/);
    expectError(() => genreIds(v2, 'Blues Rok', 5), 'ERR_INVALID_ARGUMENT', '"rok"', '"rock" (#8)');
    expect(artistId(v2, 'Nobody', { allowUnknown: true })).toBe(0);
    expect(genreIds(v2, 'blues polka', 5, { allowUnknown: true })).toEqual([2, 0, -1, -1, -1]);
    expect(genreIds(v3, 'polka', 1, { allowUnknown: true })).toEqual([0]);
  });

  it('without a vocabulary accepts ids only', () => {
    expect(artistId(undefined, 17)).toBe(17);
    expect(genreIds(undefined, [2, 7, 1], 5)).toEqual([2, 7, 1, -1, -1]);
    expectError(() => artistId(undefined, 'Queen'), 'ERR_INVALID_ARGUMENT', /no artist vocabulary/);
    expect(artistId(undefined, 'Queen', { allowUnknown: true })).toBe(0);
  });

  it('nearestNames ranks containing names first, then by edit distance, ignoring accents and punctuation', () => {
    expect(nearestNames(v2, 'artist', 'Celine Dion', 3)).toEqual([{ name: 'c_line_dion', id: 557 }]);
    expect(nearestNames(v3, 'artist', 'celine-dion', 3)).toEqual([{ name: 'céline dion', id: 5220 }]);
    expect(nearestNames(v2, 'artist', 'beatles', 3)).toEqual([{ name: 'the_beatles', id: 5 }]);
    expect(nearestNames(v2, 'artist', 'beach boy', 3)).toEqual([{ name: 'beach_boys', id: 6 }]);
    expect(nearestNames(v2, 'artist', 'zzzzzz', 3)).toEqual([]);
    // Short queries match by edit distance only, not as substrings of "rock".
    expect(nearestNames(v2, 'genre', 'o', 10).map((n) => n.name)).toEqual(['hop', 'pop']);
  });
});

// ---------------------------------------------------------------------------------------------
// The original id files (../shared/jukebox-ids, not shipped), against lookups done by the
// original ArtistGenreProcessor.

const idsDir = join(repoRoot, '..', 'shared', 'jukebox-ids');
const hasIds = existsSync(join(idsDir, 'v3_artist_ids.txt'));

describe.skipIf(!hasIds)('the original id files (../shared/jukebox-ids; skipped when absent)', () => {
  const load = (v: 'v2' | 'v3'): Promise<Vocabulary> => vocabularyFromFiles(join(idsDir, `${v}_artist_ids.txt`), join(idsDir, `${v}_genre_ids.txt`), v);

  it('have the sizes of reference §f.1', () => {
    const read = (f: string): Map<string, number> => parseIdsFile(readFileSync(join(idsDir, f), 'utf8'), f);
    const lines = (f: string): number => readFileSync(join(idsDir, f), 'utf8').split('\n').filter(Boolean).length;
    const v2a = read('v2_artist_ids.txt');
    expect(lines('v2_artist_ids.txt')).toBe(4111);
    expect(new Set(v2a.values()).size).toBe(4109);
    expect(Math.max(...v2a.values())).toBe(4108);
    const v3a = read('v3_artist_ids.txt');
    expect(lines('v3_artist_ids.txt')).toBe(7898);
    expect(v3a.size).toBe(7897);
    expect(v3a.get('speaker')).toBe(7896);
    expect(read('v2_genre_ids.txt').size).toBe(120);
    expect(read('v3_genre_ids.txt').size).toBe(604);
  });

  it('v2 lookups match the original', async () => {
    const v = await load('v2');
    const artists: [string, number][] = [
      ['Céline Dion', 557], ['The Beatles', 278], ['AC/DC', 1184], ['Beyoncé', 957], ['Sigur Rós', 2357], ['  Alan   Jackson ', 145],
      ['alan_jackson', 145], ['2Pac', 527], ['112', 990], ["Guns N' Roses", 993], ['Björk', 1070], ['', 0], ['unknown', 0],
      ['Motörhead', 2403], ['Pink Floyd', 649], ['50 Cent', 353], ['Hans Zimmer', 472], ['frank sinatra', 121],
    ];
    for (const [name, id] of artists) expect(artistId(v, name), name).toBe(id);
    const genres: [string, number[]][] = [
      ['Blues Rock', [2, 8]], ['Hip Hop', [3, 4]], ['Pop', [14]], ['R&B', [17, 18]], ['Country-Rock', [11, 8]], ['classic pop', [51, 14]],
      ['Electronic/Dance', [22, 5]], ['alternative rock', [12, 8]], ['k-pop', [117, 14]], ['Música Popular Brasileira', [0, 0, 0, 0]],
    ];
    for (const [name, ids] of genres) expect(genreIds(v, name, 5, { allowUnknown: true }), name).toEqual([...ids, ...new Array(5 - ids.length).fill(-1)]);
    expect(genreIds(v, 'Blues Rock', 5)).toEqual([2, 8, -1, -1, -1]);
    expectError(() => genreIds(v, 'Música Popular Brasileira', 5), 'ERR_INVALID_ARGUMENT', '"m"');
  });

  it('v3 lookups match the original', async () => {
    const v = await load('v3');
    const artists: [string, number][] = [
      ['Céline Dion', 5220], ['céline dion', 5220], ['The Beatles', 7026], ['AC/DC', 355], ['Beyoncé', 6553], ['2Pac', 6044], ['112', 1969],
      ["Guns N' Roses", 559], ['Björk', 5185], ['unknown', 0], ['speaker', 7896], ['Motörhead', 2672], ['Pink Floyd', 4998],
      ['50 Cent', 5877], ['frank sinatra', 3085],
    ];
    for (const [name, id] of artists) expect(artistId(v, name), name).toBe(id);
    // The original maps these to 0 (not in the v3 list after lowercasing).
    for (const name of ['Sigur Rós', '  Alan   Jackson ', 'alan_jackson', '', 'İlhan', 'Hans Zimmer']) {
      expect(artistId(v, name, { allowUnknown: true }), name).toBe(0);
      expectError(() => artistId(v, name), 'ERR_INVALID_ARGUMENT');
    }
    const genres: [string, number][] = [
      ['Blues Rock', 282], ['Hip Hop', 54], ['Pop', 497], ['R&B', 219], ['classic pop', 134], ['Classic Pop', 134], ['rock', 40],
      ['jazz', 230], ['soundtrack', 453], ['alternative rock', 485], ['k-pop', 345], ['Country-Rock', 0],
    ];
    for (const [name, id] of genres) expect(genreIds(v, name, 1, { allowUnknown: true }), name).toEqual([id]);
  });

  it('suggest close names for unknown artists and genres', async () => {
    const [v2, v3] = await Promise.all([load('v2'), load('v3')]);
    expectError(() => artistId(v2, 'Celine Dion'), 'ERR_INVALID_ARGUMENT', '"celine_dion"', '"c_line_dion" (#557)');
    expectError(() => artistId(v3, 'Celine Dion'), 'ERR_INVALID_ARGUMENT', '"céline dion" (#5220)');
    expectError(() => artistId(v3, 'beatles'), 'ERR_INVALID_ARGUMENT', '"the beatles" (#7026)');
    expectError(() => genreIds(v3, 'Country-Rock', 1), 'ERR_INVALID_ARGUMENT', '"country rock" (#546)');
    expect(nearestNames(v2, 'artist', 'queen', 3).map((n) => n.name)).toEqual(['queen', 'queensr_che', 'queens_of_the_stone_age']);
  });

  it('serialise to well under 400 KB of JSON', async () => {
    for (const v of ['v2', 'v3'] as const) expect(JSON.stringify(await load(v)).length).toBeLessThan(400_000);
  });
});
