/**
 * Artist and genre vocabularies (reference §f.1; jukebox/data/artist_genre_processor.py).
 *
 * The original reads `ids/{v2,v3}_{artist,genre}_ids.txt` (`name;id` lines) and looks names
 * up with two rule sets: v2 (5b, 5b_lyrics, upsamplers) normalises to [a-z0-9_] and treats
 * a genre as a bag of words; v3 (1b_lyrics) only lowercases and treats a genre as one name.
 * We keep those rules exactly, but an unknown name is an error with suggestions instead of a
 * silent 0 (the original prints a warning and uses 0, which quietly changes the music).
 */
import { readFile } from 'node:fs/promises';
import { JukeboxError } from '../errors.js';

export type VocabVersion = 'v2' | 'v3';
export type VocabKind = 'artist' | 'genre';

/** Stored as JSON in a converted model's metadata: names (already lowercased) to ids. */
export interface Vocabulary {
  version: VocabVersion;
  artists: Record<string, number>;
  genres: Record<string, number>;
}

export interface LookupOptions {
  /** Map unknown names to id 0 ("unknown"), as the original does, instead of throwing. */
  allowUnknown?: boolean;
}

/** A genre: a name (v2: a bag of words), an id, "#id" strings, or a list of those. */
export type GenreInput = string | number | readonly (string | number)[];

// Python's str.strip() whitespace (str.isspace): unlike JS trim() it includes U+001C-U+001F
// and U+0085 and excludes U+FEFF.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/**
 * Parses an original `ids/*.txt` file. Like the original: each line is stripped, split on
 * ';' into exactly a name and an id, the name is lowercased (JS toLowerCase and Python
 * str.lower agree except for characters newer than Python's Unicode tables), and a later
 * line wins over an earlier one with the same name (v3 lists "speaker" twice). Several
 * names may share an id, and the empty name is valid (v2: ";0").
 */
export function parseIdsFile(text: string, source: string): Map<string, number> {
  const ids = new Map<string, number>();
  // Python's text mode splits lines on \n, \r\n and \r; a final newline ends the last line.
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const where = `${source}:${i + 1}`;
    const line = raw.replace(PY_STRIP, '');
    const parts = line.split(';');
    if (parts.length !== 2) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${where}: expected "name;id", got ${JSON.stringify(raw)}`);
    }
    const id = parts[1].replace(PY_STRIP, '');
    if (!/^\+?[0-9]+$/.test(id) || !isInt32(Number(id))) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${where}: id ${JSON.stringify(parts[1])} is not a non-negative integer`);
    }
    ids.set(parts[0].toLowerCase(), Number(id));
  });
  return ids;
}

export async function vocabularyFromFiles(artistPath: string, genrePath: string, version: VocabVersion): Promise<Vocabulary> {
  if (version !== 'v2' && version !== 'v3') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `vocabulary version must be "v2" or "v3", got ${JSON.stringify(version)}`);
  }
  const [artists, genres] = await Promise.all([artistPath, genrePath].map(async (path) => parseIdsFile(await readText(path), path)));
  // Object.fromEntries defines own properties, so a name like "__proto__" stays a name.
  return { version, artists: Object.fromEntries(artists), genres: Object.fromEntries(genres) };
}

async function readText(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    // fatal: invalid UTF-8 is an error, as in Python; a leading BOM is dropped.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${path} is not valid UTF-8`, { cause: e });
  }
}

/** Checks a vocabulary read back from JSON (a model file's metadata). */
export function parseVocabulary(json: string, source: string): Vocabulary {
  const bad = (why: string): JukeboxError => new JukeboxError('ERR_HPARAMS', `${source}: invalid label vocabulary: ${why}`);
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const o = v as Partial<Vocabulary> | null;
  if (typeof o !== 'object' || o === null) throw bad('not an object');
  if (o.version !== 'v2' && o.version !== 'v3') throw bad(`version ${JSON.stringify(o.version)}`);
  for (const kind of ['artists', 'genres'] as const) {
    const table = o[kind];
    if (typeof table !== 'object' || table === null || Array.isArray(table)) throw bad(`${kind} is not an object`);
    for (const [name, id] of Object.entries(table)) {
      if (!isInt32(id) || id < 0) throw bad(`${kind}[${JSON.stringify(name)}] = ${JSON.stringify(id)}`);
    }
  }
  return o as Vocabulary;
}

/** The name an artist is looked up under (v2: norm, v3: lowercase). */
function artistKey(version: VocabVersion, artist: string): string {
  return version === 'v2' ? normV2(artist) : artist.toLowerCase();
}

/** The names a genre string is looked up under: v2 a bag of normalised words, v3 one name. */
function genreKeys(version: VocabVersion, genre: string): string[] {
  return version === 'v2' ? normV2(genre).split('_') : [genre.toLowerCase()];
}

/**
 * The original's norm(): lowercase, every character outside [a-z0-9] becomes '_', runs of
 * '_' collapse to one, and leading/trailing '_' go ("Céline Dion" -> "c_line_dion").
 * Replacing whole runs at once is the same thing, and treats a surrogate pair as one run.
 */
function normV2(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
}

/**
 * An artist's id. A number or a "#123" string is an id (some artist names are digits, e.g.
 * v2 "112", so a bare numeric string is still a name). Without a vocabulary (a model converted
 * without id files) only ids are accepted.
 */
export function artistId(vocab: Vocabulary | undefined, artist: string | number, opts: LookupOptions = {}): number {
  const ids = explicitIds(artist);
  if (ids?.length === 1) return checkId(vocab, 'artist', ids[0]);
  if (ids) throw new JukeboxError('ERR_INVALID_ARGUMENT', `give one artist id, got ${JSON.stringify(artist)}`);
  const name = artist as string;
  if (!vocab) return noVocabulary('artist', name, opts);
  const key = artistKey(vocab.version, name);
  return lookup(vocab, 'artist', key, opts, `unknown artist ${describe(name, key)}`, name);
}

/**
 * A genre's ids padded with -1 to maxBowGenreSize slots. Each string is looked up with the
 * vocabulary's rules (v2: every word a slot; v3: the whole string one slot); numbers and
 * "#id" strings ("#2 #8" gives two) are ids.
 */
export function genreIds(vocab: Vocabulary | undefined, genre: GenreInput, maxBowGenreSize: number, opts: LookupOptions = {}): number[] {
  if (!Number.isInteger(maxBowGenreSize) || maxBowGenreSize < 1) {
    throw new JukeboxError('ERR_HPARAMS', `max_bow_genre_size must be a positive integer, got ${maxBowGenreSize}`);
  }
  const ids: number[] = [];
  for (const g of typeof genre === 'string' || typeof genre === 'number' ? [genre] : genre) {
    const explicit = explicitIds(g);
    if (explicit) ids.push(...explicit.map((id) => checkId(vocab, 'genre', id)));
    else if (!vocab) ids.push(noVocabulary('genre', g as string, opts));
    else ids.push(...genreNameIds(vocab, g as string, opts));
  }
  if (ids.length > maxBowGenreSize) {
    throw new JukeboxError(
      'ERR_INVALID_ARGUMENT',
      `genre ${JSON.stringify(genre)} gives ${ids.length} ids (${ids.join(', ')}) but this model takes at most ${maxBowGenreSize}`,
    );
  }
  return [...ids, ...new Array<number>(maxBowGenreSize - ids.length).fill(-1)];
}

function genreNameIds(vocab: Vocabulary, genre: string, opts: LookupOptions): number[] {
  const keys = genreKeys(vocab.version, genre);
  if (vocab.version === 'v3') return [lookup(vocab, 'genre', keys[0], opts, `unknown genre ${describe(genre, keys[0])}`, genre)];
  // v2: each word is looked up, and suggested for, on its own.
  const words = keys.map((k) => JSON.stringify(k)).join(', ');
  return keys.map((key) => lookup(vocab, 'genre', key, opts, `genre ${JSON.stringify(genre)} is the bag of words ${words}, and ${JSON.stringify(key)}`, key));
}

/** A number, or the ids of a string made only of "#123" items ("#2 #8", "#2,#8"); undefined for a name. */
function explicitIds(v: string | number): number[] | undefined {
  if (typeof v === 'number') return [v];
  return /^\s*#\d+(?:[\s,]+#\d+)*\s*$/.test(v) ? v.match(/\d+/g)!.map(Number) : undefined;
}

function checkId(vocab: Vocabulary | undefined, kind: VocabKind, id: number): number {
  // Ids are stored as int32 label rows; with a vocabulary they must also be one of its rows.
  const max = vocab ? Math.max(-1, ...Object.values(table(vocab, kind))) : 2 ** 31 - 1;
  if (!Number.isInteger(id) || id < 0 || id > max) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${kind} id ${id} is out of range: ids go from 0 to ${max}`);
  }
  return id;
}

function noVocabulary(kind: VocabKind, name: string, opts: LookupOptions): number {
  if (opts.allowUnknown) return 0;
  throw new JukeboxError(
    'ERR_INVALID_ARGUMENT',
    `this model has no ${kind} vocabulary (it was converted without id files), so ${kind} ${JSON.stringify(name)} cannot be looked up: give a numeric id ("#123")`,
  );
}

function lookup(vocab: Vocabulary, kind: VocabKind, key: string, opts: LookupOptions, what: string, query: string): number {
  const names = table(vocab, kind);
  if (Object.hasOwn(names, key)) return names[key];
  if (opts.allowUnknown) return 0;
  const near = nearestNames(vocab, kind, query, 5);
  let hint = near.length ? ` Closest: ${near.map((n) => `${JSON.stringify(n.name)} (#${n.id})`).join(', ')}.` : '';
  // a small vocabulary (the default model's): list it all
  const all = Object.keys(names).filter((n) => names[n] > 0);
  if (all.length <= 40) hint += ` Known ${kind}s: ${all.sort().join(', ')}.`;
  throw new JukeboxError(
    'ERR_INVALID_ARGUMENT',
    `${what} is not in the ${vocab.version} ${kind} vocabulary.${hint} ` +
      `Give a listed name or a numeric id ("#123"), or allow unknown names to map them to 0 ("unknown") as the original does.`,
  );
}

function describe(input: string, key: string): string {
  return JSON.stringify(input) + (key === input ? '' : ` (looked up as ${JSON.stringify(key)})`);
}

function table(vocab: Vocabulary, kind: VocabKind): Record<string, number> {
  return kind === 'artist' ? vocab.artists : vocab.genres;
}

/**
 * Up to k vocabulary names close to `query`, best first: names containing the query (shortest
 * first; for queries of 3 characters or more), then names within a small edit distance. Both sides are compared loosely (accents
 * and punctuation dropped, lowercase), so "Celine Dion" finds v2 "c_line_dion" and v3
 * "céline dion". For error messages and for searching the vocabulary from the CLI.
 */
export function nearestNames(vocab: Vocabulary, kind: VocabKind, query: string, k: number): { name: string; id: number }[] {
  const q = loose(query);
  if (q === '') return [];
  const limit = Math.max(2, Math.floor(q.length * 0.4));
  const scored: { name: string; id: number; score: number }[] = [];
  for (const [name, id] of Object.entries(table(vocab, kind))) {
    const n = loose(name);
    if (n === '') continue;
    // Containing the query outranks any edit distance; among those, shorter is closer.
    if (q.length >= 3 && n.includes(q)) scored.push({ name, id, score: -1 / n.length });
    else {
      const d = editDistance(q, n, limit);
      if (d <= limit) scored.push({ name, id, score: d });
    }
  }
  scored.sort((a, b) => a.score - b.score || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return scored.slice(0, Math.max(0, k)).map(({ name, id }) => ({ name, id }));
}

function loose(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Levenshtein distance, giving up (returning limit + 1) once it must exceed limit. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, cur[j]);
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length];
}

function isInt32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;
}
