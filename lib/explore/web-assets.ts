/**
 * Where the explorer page lives: lib/explore/web built by lib/explore/web/build.mjs
 * (esbuild, part of "npm run build") into dist/explore-web, which the package ships.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { packageRoot } from '../native.js';

export const WEB_ASSETS = ['index.html', 'app.js', 'app.css'];

export function webAssetsDir(): string {
  return join(packageRoot, 'dist', 'explore-web');
}

/** The built page's folder, or an error saying how to build it. */
export function checkWebAssets(): string {
  const dir = webAssetsDir();
  const missing = WEB_ASSETS.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    throw new JukeboxError('ERR_IO', `the explorer page is not built (${missing.join(', ')} missing in ${dir}): run "npm run build:web" in the package folder`);
  }
  return dir;
}
