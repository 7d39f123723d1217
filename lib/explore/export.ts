/**
 * `jukebox explore --export DIR`: the explorer as a folder of static files, to share results
 * without a server (any web host, or opened straight from disk). The page is the same; the
 * catalogue says it is not live, so job controls are hidden. Files keep the paths their URLs
 * name (files/<root>/..., derived/...), so the catalogue's URLs need no rewriting.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { CatalogBuilder } from './catalog.js';
import type { Catalog } from './catalog-types.js';
import { catalogScript, exploreRoots } from './server.js';
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
  for (const f of WEB_ASSETS) copyFileSync(join(assets, f), join(o.out, f));
  writeFileSync(join(o.out, 'catalog.js'), catalogScript(catalog));
  writeFileSync(join(o.out, 'catalog.json'), JSON.stringify(catalog));

  // Every URL of the catalogue becomes a file at that path.
  const urls = catalog.samples.flatMap((s) => [
    ...s.levels.flatMap((l) => [l.audioUrl, l.spectrogramUrl]),
    ...s.codes.map((c) => c.url),
    ...(s.alignment ? [s.alignment.heatmapUrl] : []),
  ]);
  const seen = new Set<string>();
  let done = 0;
  for (const url of urls) {
    done++;
    if (seen.has(url)) continue;
    seen.add(url);
    const r = resolveResource(roots, url.split('/'));
    if (!r.ok) throw new JukeboxError('ERR_IO', `${url}: ${r.reason}`);
    const dest = join(o.out, ...url.split('/').map((p) => decodeURIComponent(p)));
    mkdirSync(dirname(dest), { recursive: true });
    if (r.kind === 'file') copyFileSync(r.abs, dest);
    else writeFileSync(dest, r.draw());
    o.onProgress?.(done, urls.length);
    // Let a progress bar draw between files.
    if (done % 8 === 0) await new Promise((next) => setImmediate(next));
  }
  return { catalog, files: seen.size };
}
