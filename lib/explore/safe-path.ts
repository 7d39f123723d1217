/**
 * URL paths to files, for the explorer's server: only files inside the folders the user
 * named, whatever the URL says. A path is refused when a segment is empty, "." or "..",
 * holds a slash, backslash or NUL after decoding, or when the file it reaches (symbolic
 * links resolved) lies outside its root.
 */
import { realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import type { ExploreRoot } from './catalog.js';

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
