/**
 * `jukebox explore [DIR...]`: serve the sample explorer over generate output folders on
 * 127.0.0.1 (a free port unless --port), print the URL and open a browser (unless
 * --no-open); or, with --export, write the explorer as static files.
 */
import { spawn } from 'node:child_process';
import { exportSite } from '../explore/export.js';
import { startExploreServer } from '../explore/server.js';
import { progressBar } from './progress.js';
import type { Log } from './commands.js';

export interface ExploreArgs {
  dirs: string[];
  port?: number;
  host?: string;
  open: boolean;
  export?: string;
  model?: string;
  jobs: boolean;
  /** Run the jobs on this Redis job queue (jukebox worker) and show its jobs. */
  redis?: string;
  queue?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Runs until the signal aborts (Ctrl-C), then stops the server and its jobs. */
export async function exploreCommand(a: ExploreArgs, log: Log, signal?: AbortSignal): Promise<void> {
  if (a.export) {
    const bar = progressBar('export');
    const r = await exportSite({ dirs: a.dirs, out: a.export, onProgress: (d, t) => bar.update(d / t) }).finally(() => bar.stop());
    log(`wrote ${a.export}: ${r.catalog.samples.length} sample(s), ${r.files} file(s); open ${a.export}/index.html or put the folder on any web host`);
    for (const p of r.catalog.problems) log(`note: ${p}`);
    return;
  }
  if (a.host && !LOOPBACK.has(a.host)) {
    log(`warning: listening on ${a.host}: anyone who can reach this machine can listen to the samples and start jobs`);
  }
  const s = await startExploreServer({ dirs: a.dirs, port: a.port, host: a.host, model: a.model, jobs: a.jobs, ...(a.redis ? { queue: { redis: a.redis, queue: a.queue } } : {}) });
  const c = s.catalog();
  log(`explorer: ${s.url}  (${c.samples.length} sample(s) in ${a.dirs.join(', ')}; Ctrl-C stops it)`);
  if (c.queue) log(`jobs run on queue "${c.queue.name}" at ${c.queue.redis}: start "jukebox worker --redis URL" on machines that see these folders`);
  for (const p of c.problems) log(`note: ${p}`);
  if (a.open) openBrowser(s.url, log);
  await new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await s.close();
}

function openBrowser(url: string, log: Log): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => log(`(could not open a browser with ${cmd}: open ${url} yourself)`));
    child.unref();
  } catch {
    log(`(could not open a browser: open ${url} yourself)`);
  }
}
