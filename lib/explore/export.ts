/**
 * `jukebox explore --export DIR`: the explorer as a folder of static files, to share results
 * without a server (any web host, or opened straight from disk). The page is the same; the
 * catalogue says it is not live, so job controls are hidden. Files keep the paths their URLs
 * name (files/<root>/..., derived/...), so the catalogue's URLs need no rewriting.
 *
 * Only inert types are copied from the folders (WAV, NPZ, PNG, JSON: lib/explore/file-types.ts),
 * and only when their content is what their name says: a static host types files by their
 * extension, and a page opened from disk has no headers at all, so an HTML or script file
 * from a folder, or HTML behind a .wav name, must not end up in the site. Such a file is
 * left out and named in the catalogue's problems.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { CatalogBuilder } from './catalog.js';
import type { Catalog } from './catalog-types.js';
import { catalogScript, exploreRoots } from './server.js';
import { exportRefusal } from './file-types.js';
import { resolveResource } from './safe-path.js';
import { checkWebAssets, WEB_ASSETS } from './web-assets.js';

export interface ExportOptions {
  dirs: string[];
  out: string;
  onProgress?: (done: number, total: number) => void;
}

export async function exportSite(o: ExportOptions): Promise<{ catalog: Catalog; files: number }> {
  const roots = exploreRoots(o.dirs);
  const assets = checkWebAssets();
  if (existsSync(o.out) && readdirSync(o.out).length > 0 && !existsSync(join(o.out, 'catalog.js'))) {
    throw new JukeboxError('ERR_IO', `${o.out} is not empty and not an earlier export: name a new folder`);
  }
  const { catalog } = new CatalogBuilder(roots).build(false);
  mkdirSync(o.out, { recursive: true });
  // The page's own files come from the package, never from the explored folders.
  for (const f of WEB_ASSETS) copyFileSync(join(assets, f), join(o.out, f));
  // Now, so that an interrupted export is still recognised as one (and may be redone).
  writeFileSync(join(o.out, 'catalog.js'), catalogScript(catalog));

  // Every URL of the catalogue becomes a file at that path.
  const urls = catalog.samples.flatMap((s) => [
    ...s.levels.flatMap((l) => [l.audioUrl, l.spectrogramUrl]),
    ...s.codes.map((c) => c.url),
    ...(s.alignment ? [s.alignment.heatmapUrl] : []),
  ]);
  const seen = new Set<string>();
  let done = 0;
  let files = 0;
  for (const url of urls) {
    done++;
    if (seen.has(url)) continue;
    seen.add(url);
    const r = resolveResource(roots, url.split('/'));
    if (!r.ok) throw new JukeboxError('ERR_IO', `${url}: ${r.reason}`);
    const parts = url.split('/').map((p) => decodeURIComponent(p));
    const dest = join(o.out, ...parts);
    if (r.kind === 'file') {
      const refused = exportRefusal(parts[parts.length - 1], r.abs);
      if (refused) {
        catalog.problems.push(`not exported: ${url}: ${refused}`);
        continue;
      }
    }
    mkdirSync(dirname(dest), { recursive: true });
    if (r.kind === 'file') copyFileSync(r.abs, dest);
    else writeFileSync(dest, r.draw());
    files++;
    o.onProgress?.(done, urls.length);
    // Let a progress bar draw between files.
    if (done % 8 === 0) await new Promise((next) => setImmediate(next));
  }
  // Again at the end, naming the files left out.
  writeFileSync(join(o.out, 'catalog.js'), catalogScript(catalog));
  writeFileSync(join(o.out, 'catalog.json'), JSON.stringify(catalog));
  return { catalog, files };
}
