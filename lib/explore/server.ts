/**
 * `jukebox explore`'s web server: the page (built into dist/explore-web), the catalogue of
 * the folders it was given, their files (with HTTP ranges, so the browser can seek in
 * audio), spectrograms and alignment heatmaps drawn on request, and the job API.
 *
 * It listens on 127.0.0.1 unless told otherwise, answers only requests whose Host header
 * names it (a web page elsewhere cannot reach it through DNS rebinding), takes jobs only as
 * JSON POSTs from its own origin, and serves no file outside the given folders
 * (lib/explore/safe-path.ts).
 */
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { CatalogBuilder, sampleId, type ExploreRoot, type RunFolder } from './catalog.js';
import type { Catalog, JobRequest } from './catalog-types.js';
import { JobManager } from './jobs.js';
import { resolveResource } from './safe-path.js';
import { checkWebAssets, WEB_ASSETS } from './web-assets.js';

export interface ExploreServerOptions {
  /** Folders holding generate output folders (or output folders themselves). */
  dirs: string[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Model folder for jobs, instead of the one each run.json names. */
  model?: string;
  /** Allow continue/upsample jobs (default true). */
  jobs?: boolean;
}

export interface ExploreServer {
  url: string;
  server: Server;
  catalog(): Catalog;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.wav': 'audio/wav',
  '.npz': 'application/octet-stream',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Largest audio upload for prime jobs. */
const MAX_UPLOAD = 256 * 2 ** 20;

const CSP = "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/** Resolves each folder; fails with a clear error for one that does not exist. */
export function exploreRoots(dirs: string[]): ExploreRoot[] {
  if (dirs.length === 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'name at least one output folder to explore');
  return dirs.map((d) => {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new JukeboxError('ERR_IO', `${d} is not a folder`);
    return { label: d, path: realpathSync(d) };
  });
}

export async function startExploreServer(o: ExploreServerOptions): Promise<ExploreServer> {
  const roots = exploreRoots(o.dirs);
  const assets = checkWebAssets();
  const builder = new CatalogBuilder(roots);
  const jobsEnabled = o.jobs !== false;
  let current: { catalog: Catalog; runs: RunFolder[] } = builder.build(jobsEnabled);
  const rescan = () => (current = builder.build(jobsEnabled));
  const jobs = new JobManager({
    roots,
    model: o.model,
    findSample(id) {
      for (const run of current.runs) {
        const m = id.startsWith(`${run.id}~`) ? Number(id.slice(run.id.length + 1)) : NaN;
        if (Number.isInteger(m) && m >= 0 && m < run.state.samples) return { run, index: m };
      }
      return undefined;
    },
    latestRun() {
      return [...current.runs].sort((a, b) => b.mtime.getTime() - a.mtime.getTime())[0];
    },
    rescan(dir) {
      rescan();
      const run = current.runs.find((r) => r.abs === dir);
      return run ? Array.from({ length: run.state.samples }, (_, i) => sampleId(run, i)).filter((id) => current.catalog.samples.some((s) => s.id === id)) : [];
    },
  });
  const images = new ImageCache(64);

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendError(res, 500, (e as Error).message);
      else res.destroy();
    });
  });

  let port = 0;
  // On loopback only the names of this machine are accepted (DNS rebinding); a server the
  // user opened to the network (--host) is reached by names it cannot know.
  const loopback = ['127.0.0.1', 'localhost', '::1'].includes(o.host ?? '127.0.0.1');
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  const hostOk = (h: string | undefined) => !loopback || allowedHosts().has(h ?? '');

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostOk(req.headers.host)) return sendError(res, 403, 'unexpected Host header');
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const segments = path.split('/').slice(1);
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/' || path === '/index.html') return sendFile(req, res, join(assets, 'index.html'));
      if (path === '/app.js' || path === '/app.css') return sendFile(req, res, join(assets, path.slice(1)));
      if (path === '/catalog.json') return sendBody(res, 200, TYPES['.json'], JSON.stringify(rescan().catalog));
      if (path === '/catalog.js') return sendBody(res, 200, TYPES['.js'], catalogScript(rescan().catalog));
      if (segments[0] === 'files' || segments[0] === 'derived') {
        const r = resolveResource(roots, segments);
        if (!r.ok) return sendError(res, r.status, r.reason);
        if (r.kind === 'file') return sendFile(req, res, r.abs);
        return sendBody(res, 200, TYPES['.png'], images.get(r.key, r.draw, r.source));
      }
      if (path === '/api/jobs') return sendJson(res, 200, jobs.list());
      const ev = /^\/api\/jobs\/([0-9a-f]+)\/events$/.exec(path);
      if (ev) return jobEvents(req, res, ev[1]);
      return sendError(res, 404, 'not found');
    }
    if (req.method === 'POST') {
      // Only this page may start or stop work: a JSON content type cannot be sent across
      // origins without a preflight this server never approves, and the Origin must be ours.
      const origin = req.headers.origin;
      if (origin !== undefined && origin.replace(/^https?:\/\//, '') !== req.headers.host) return sendError(res, 403, 'cross-origin request refused');
      if (!jobsEnabled) return sendError(res, 403, 'jobs are turned off on this server');
      if (path === '/api/jobs') {
        if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return sendError(res, 415, 'send JSON (Content-Type: application/json)');
        let body: JobRequest;
        try {
          body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8')) as JobRequest;
        } catch (e) {
          return sendError(res, 400, `the request body is not JSON: ${(e as Error).message}`);
        }
        try {
          rescan();
          return sendJson(res, 201, jobs.submit(body));
        } catch (e) {
          if (e instanceof JukeboxError) return sendError(res, 400, e.message);
          throw e;
        }
      }
      if (path === '/api/primes') {
        // Audio to continue from; any non-form content type (a cross-origin page cannot send
        // one without a preflight this server never approves).
        const type = req.headers['content-type'] ?? '';
        if (!/^(audio\/[\w.+-]+|application\/octet-stream)\b/.test(type)) return sendError(res, 415, 'send the audio file as the body (Content-Type audio/* or application/octet-stream)');
        let bytes: Buffer;
        try {
          bytes = await readBody(req, MAX_UPLOAD);
        } catch (e) {
          return sendError(res, 413, `the file is too large (at most ${MAX_UPLOAD / 2 ** 20} MiB): ${(e as Error).message}`);
        }
        let name = 'audio';
        try {
          name = decodeURIComponent(String(req.headers['x-filename'] ?? 'audio'));
        } catch {
          /* keep the default name */
        }
        try {
          return sendJson(res, 201, await jobs.addPrime(name, bytes));
        } catch (e) {
          if (e instanceof JukeboxError) return sendError(res, 400, e.message);
          throw e;
        }
      }
      const cancel = /^\/api\/jobs\/([0-9a-f]+)\/cancel$/.exec(path);
      if (cancel) {
        const info = jobs.cancel(cancel[1]);
        return info ? sendJson(res, 200, info) : sendError(res, 404, 'no such job');
      }
      return sendError(res, 404, 'not found');
    }
    res.setHeader('Allow', 'GET, HEAD, POST');
    return sendError(res, 405, 'method not allowed');
  }

  function jobEvents(req: IncomingMessage, res: ServerResponse, id: string): void {
    if (!jobs.get(id)) return sendError(res, 404, 'no such job');
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    let unsubscribe: (() => void) | undefined;
    const stop = () => {
      unsubscribe?.();
      clearInterval(keepAlive);
    };
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    unsubscribe = jobs.subscribe(id, (info) => {
      if (res.destroyed) return stop();
      res.write(`event: job\ndata: ${JSON.stringify(info)}\n\n`);
      if (info.state === 'done' || info.state === 'failed' || info.state === 'cancelled') {
        stop();
        res.end();
      }
    });
    // A page that goes away only stops its stream, never the job.
    req.on('close', stop);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new JukeboxError('ERR_IO', `port ${o.port} is in use: pick another with --port, or leave it out for a free one`) : e),
    );
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = (o.host ?? '127.0.0.1').includes(':') ? `[${o.host}]` : (o.host ?? '127.0.0.1');
  return {
    url: `http://${shownHost}:${port}/`,
    server,
    catalog: () => rescan().catalog,
    async close() {
      await jobs.dispose();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function catalogScript(c: Catalog): string {
  // JSON in a script: "</script>" and U+2028/9 must not end or break it.
  const json = JSON.stringify(c).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return `window.__JUKEBOX_CATALOG__ = ${json};\n`;
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('Referrer-Policy', 'no-referrer');
}

function sendBody(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  securityHeaders(res);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendBody(res, status, TYPES['.json'], JSON.stringify(value));
}

function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

/** A file, whole or one byte range (audio seeking asks for ranges). */
function sendFile(req: IncomingMessage, res: ServerResponse, path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    if (WEB_ASSETS.some((a) => path.endsWith(a))) return sendError(res, 500, 'the explorer page is not built: run "npm run build:web" in the package');
    return sendError(res, 404, 'no such file');
  }
  const ext = /\.[a-z0-9]+$/i.exec(path)?.[0].toLowerCase() ?? '';
  securityHeaders(res);
  res.setHeader('Content-Type', TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'no-cache');
  if (ext === '.npz' || ext === '.wav') res.setHeader('Content-Disposition', `inline; filename="${path.split(/[\\/]/).pop()!.replace(/[^\w.-]/g, '_')}"`);
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  if (req.headers.range !== undefined && range && size > 0) {
    if (range[1] === '') {
      start = Math.max(0, size - Number(range[2]));
    } else {
      start = Number(range[1]);
      if (range[2] !== '') end = Math.min(end, Number(range[2]));
    }
    if (start > end || start >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      res.end();
      return;
    }
    res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
  } else {
    res.writeHead(200, { 'Content-Length': size });
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(path, { start, end });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

/** The request body; past `limit` bytes the rest is drained and the promise fails. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      req.resume();
      return reject(new Error(`${req.headers['content-length']} bytes`));
    }
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= limit) chunks.push(c);
    });
    req.on('end', () => (n > limit ? reject(new Error(`${n} bytes`)) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** Drawn images, kept while their source file is unchanged; the oldest go first. */
class ImageCache {
  private readonly map = new Map<string, { key: string; png: Buffer }>();
  constructor(private readonly limit: number) {}

  get(id: string, draw: () => Buffer, file: string): Buffer {
    const st = statSync(file);
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.map.get(id);
    if (hit?.key === key) {
      this.map.delete(id);
      this.map.set(id, hit);
      return hit.png;
    }
    const png = draw();
    this.map.set(id, { key, png });
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value!);
    return png;
  }
}
