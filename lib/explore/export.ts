/**
 * `jukebox explore --export DIR`: the explorer as a folder of static files, to share results
 * without a server (any web host, or opened straight from disk). The page is the same; the
 * catalogue says it is not live, so job controls are hidden. Files keep the paths their URLs
 * name (files/<root>/..., derived/...), so the catalogue's URLs need no rewriting.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { parseWav } from '../audio/wav.js';
import { CatalogBuilder, readAlignment } from './catalog.js';
import type { Catalog } from './catalog-types.js';
import { catalogScript, exploreRoots } from './server.js';
import { resolveInRoots } from './safe-path.js';
import { spectrogramPng } from './spectrogram.js';
import { alignmentHeatmapPng } from './alignment-view.js';
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
  const jobs: { url: string; make: () => Buffer | string }[] = [];
  const source = (url: string, prefix: string, strip = '') => {
    const segs = url.split('/').slice(prefix.split('/').length);
    if (strip) segs[segs.length - 1] = segs[segs.length - 1].slice(0, -strip.length);
    const r = resolveInRoots(roots, segs);
    if (!r.ok) throw new JukeboxError('ERR_IO', `${url}: ${r.reason}`);
    return r.abs;
  };
  for (const s of catalog.samples) {
    for (const l of s.levels) {
      jobs.push({ url: l.audioUrl, make: () => source(l.audioUrl, 'files') });
      jobs.push({
        url: l.spectrogramUrl,
        make: () => {
          const path = source(l.spectrogramUrl, 'derived/spectrogram', '.png');
          const wav = parseWav(readFileSync(path), path);
          return spectrogramPng(wav.channels[0], wav.sampleRate).png;
        },
      });
    }
    for (const c of s.codes) jobs.push({ url: c.url, make: () => source(c.url, 'files') });
    if (s.alignment) {
      const url = s.alignment.heatmapUrl;
      jobs.push({
        url,
        make: () => {
          const segs = url.split('/').slice(2);
          const npz = resolveInRoots(roots, [...segs.slice(0, -1), 'alignment.npz']);
          if (!npz.ok) throw new JukeboxError('ERR_IO', `${url}: ${npz.reason}`);
          const a = readAlignment(npz.abs, s.index)!;
          return alignmentHeatmapPng(a.weights, a.tokens, a.lyricTokens).png;
        },
      });
    }
  }
  const seen = new Set<string>();
  let done = 0;
  for (const j of jobs) {
    done++;
    if (seen.has(j.url)) continue;
    seen.add(j.url);
    const dest = join(o.out, ...j.url.split('/').map((p) => decodeURIComponent(p)));
    mkdirSync(dirname(dest), { recursive: true });
    const made = j.make();
    if (typeof made === 'string') copyFileSync(made, dest);
    else writeFileSync(dest, made);
    o.onProgress?.(done, jobs.length);
    // Let a progress bar draw between files.
    if (done % 8 === 0) await new Promise((r) => setImmediate(r));
  }
  return { catalog, files: seen.size };
}
