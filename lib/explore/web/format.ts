/** Text the page shows for numbers, dates and settings. */
import type { SampleEntry } from '../catalog-types.js';

export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '0:00';
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return seconds < 10 ? `${m}:${s.toFixed(1).padStart(4, '0')}` : `${m}:${String(Math.floor(s)).padStart(2, '0')}`;
}

/** Whole seconds as m:ss (list rows). */
export function mmss(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '0:00';
  const t = Math.round(seconds);
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/** "Nov 24, 18:02" (with the year when it is not this year): list rows. */
export function whenShort(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const year = d.getFullYear() === new Date().getFullYear() ? undefined : 'numeric';
  return d.toLocaleString(undefined, { year, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
}

export function when(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function temperature(t: number | number[]): string {
  return Array.isArray(t) ? t.map((x) => x.toFixed(2)).join('/') : t.toFixed(2);
}

/** "T 0.99 · top-k 40 · levels 2,1,0" */
export function settingsSummary(s: SampleEntry): string {
  const parts = [`T ${temperature(s.settings.temperature)}`];
  if (s.settings.topK > 0) parts.push(`top-k ${s.settings.topK}`);
  if (s.settings.topP > 0) parts.push(`top-p ${s.settings.topP}`);
  parts.push(`levels ${s.settings.levels.join(',')}`);
  if (s.settings.primedSeconds > 0) parts.push(`primed ${s.settings.primedSeconds.toFixed(1)} s`);
  return parts.join(' · ');
}

export function excerpt(text: string | null, n = 60): string {
  if (!text) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}

export function title(s: SampleEntry): string {
  return [s.artist ?? 'unknown artist', s.genre ?? 'unknown genre'].join(' — ');
}

/** Everything the filter box searches. */
export function haystack(s: SampleEntry): string {
  return [s.artist, s.genre, s.lyrics, s.model, String(s.seed), s.runPath].join(' ').toLowerCase();
}

export type SortKey = 'newest' | 'oldest' | 'duration' | 'artist' | 'genre' | 'seed';

export const SORTS: [SortKey, string][] = [
  ['newest', 'newest first'],
  ['oldest', 'oldest first'],
  ['duration', 'longest first'],
  ['artist', 'artist'],
  ['genre', 'genre'],
  ['seed', 'seed'],
];

export function sortSamples(list: SampleEntry[], key: SortKey): SampleEntry[] {
  // Samples without an artist or genre go last; ties keep the newest first.
  const by = (f: (s: SampleEntry) => string | number | null, dir = 1) => (a: SampleEntry, b: SampleEntry) => {
    const x = f(a);
    const y = f(b);
    if (x === null || y === null) return x === y ? newestFirst(a, b) : x === null ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * dir || newestFirst(a, b);
  };
  const newestFirst = (a: SampleEntry, b: SampleEntry) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0) || a.index - b.index || a.id.localeCompare(b.id);
  const cmp = {
    newest: by((s) => s.createdAt, -1),
    oldest: by((s) => s.createdAt),
    duration: by((s) => s.duration, -1),
    artist: by((s) => s.artist?.toLowerCase() ?? null),
    genre: by((s) => s.genre?.toLowerCase() ?? null),
    seed: by((s) => s.seed),
  }[key];
  return [...list].sort(cmp);
}
