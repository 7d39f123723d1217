/**
 * URL paths to files, for the explorer's server: only files inside the folders the user
 * named, whatever the URL says. A path is refused when a segment is empty, "." or "..",
 * holds a slash, backslash or NUL after decoding, or when the file it reaches (symbolic
 * links resolved) lies outside its root.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { JukeboxError } from '../errors.js';
import { parseWav } from '../audio/wav.js';
import { readAlignment, type ExploreRoot } from './catalog.js';
import { spectrogramPng } from './spectrogram.js';
import { alignmentHeatmapPng } from './alignment-view.js';

export type Resolved = { ok: true; abs: string; rootIndex: number; rel: string; name: string } | { ok: false; status: 400 | 403 | 404; reason: string };

/** segments: the URL path after its prefix, still percent-encoded: [rootIndex, ...dirs, file]. */
export function resolveInRoots(roots: ExploreRoot[], segments: string[]): Resolved {
  if (segments.length < 2) return { ok: false, status: 404, reason: 'no such file' };
  const [first, ...rest] = segments;
  if (!/^\d{1,4}$/.test(first) || Number(first) >= roots.length) return { ok: false, status: 404, reason: 'no such folder' };
  const root = roots[Number(first)];
  const parts: string[] = [];
  for (const raw of rest) {
    let p: string;
    try {
      p = decodeURIComponent(raw);
    } catch {
      return { ok: false, status: 400, reason: 'bad percent-encoding in the path' };
    }
    if (p === '' || p === '.' || p === '..' || /[/\\\0]/.test(p)) return { ok: false, status: 403, reason: 'path outside the explored folders' };
    parts.push(p);
  }
  const joined = join(root.path, ...parts);
  let real: string;
  try {
    real = realpathSync(joined);
  } catch {
    return { ok: false, status: 404, reason: 'no such file' };
  }
  if (real !== root.path && !real.startsWith(root.path.endsWith(sep) ? root.path : root.path + sep)) {
    return { ok: false, status: 403, reason: 'path outside the explored folders' };
  }
  try {
    if (!statSync(real).isFile()) return { ok: false, status: 404, reason: 'not a file' };
  } catch {
    return { ok: false, status: 404, reason: 'no such file' };
  }
  const name = parts[parts.length - 1];
  return { ok: true, abs: real, rootIndex: Number(first), rel: parts.slice(0, -1).join('/') || '.', name };
}

/**
 * What a catalogue URL path names (its segments still percent-encoded): a file below a
 * root ("files/..."), or an image drawn from one ("derived/spectrogram/.../x.wav.png" from
 * the WAV, "derived/heatmap/.../sample_N.png" from the folder's alignment.npz). The live
 * server serves these and the static export writes them, so both read URLs the same way.
 */
export type Resource =
  | { ok: true; kind: 'file'; abs: string }
  | { ok: true; kind: 'image'; key: string; source: string; draw: () => Buffer }
  | { ok: false; status: 400 | 403 | 404; reason: string };

export function resolveResource(roots: ExploreRoot[], segments: string[]): Resource {
  if (segments[0] === 'files') {
    const r = resolveInRoots(roots, segments.slice(1));
    return r.ok ? { ok: true, kind: 'file', abs: r.abs } : r;
  }
  const last = segments[segments.length - 1] ?? '';
  if (segments[0] === 'derived' && segments[1] === 'spectrogram') {
    if (!last.endsWith('.wav.png')) return { ok: false, status: 404, reason: 'no such image' };
    const r = resolveInRoots(roots, [...segments.slice(2, -1), last.slice(0, -'.png'.length)]);
    if (!r.ok) return r;
    return {
      ok: true,
      kind: 'image',
      key: r.abs,
      source: r.abs,
      draw: () => {
        const wav = parseWav(readFileSync(r.abs), r.abs);
        return spectrogramPng(wav.channels[0], wav.sampleRate).png;
      },
    };
  }
  if (segments[0] === 'derived' && segments[1] === 'heatmap') {
    const m = /^sample_(\d+)\.png$/.exec(last);
    if (!m) return { ok: false, status: 404, reason: 'no such image' };
    const r = resolveInRoots(roots, [...segments.slice(2, -1), 'alignment.npz']);
    if (!r.ok) return r;
    return {
      ok: true,
      kind: 'image',
      key: `${r.abs}#${m[1]}`,
      source: r.abs,
      draw: () => {
        const a = readAlignment(r.abs, Number(m[1]));
        if (!a) throw new JukeboxError('ERR_IO', 'no alignment for that sample');
        return alignmentHeatmapPng(a.weights, a.tokens, a.lyricTokens).png;
      },
    };
  }
  return { ok: false, status: 404, reason: 'not found' };
}
