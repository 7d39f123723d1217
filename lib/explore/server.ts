/**
 * `jukebox explore`'s web server: the page (built into dist/explore-web), the catalogue of
 * the folders it was given, their files (with HTTP ranges, so the browser can seek in
 * audio), spectrograms and alignment heatmaps drawn on request, and the job API.
 *
 * It listens on 127.0.0.1 unless told otherwise, answers only requests whose Host header
 * names it (a web page elsewhere cannot reach it through DNS rebinding), takes jobs only as
 * JSON POSTs from its own origin, and serves no file outside the given folders
 * (lib/explore/safe-path.ts). Files from those folders are data, never the page: they are
 * served only as types a browser does not execute, anything else as a download
 * (lib/explore/file-types.ts). Uploads stream to disk under a global bound
 * (lib/explore/uploads.ts) and are decoded in a worker with limits (lib/explore/audio-decoder.ts).
 */
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { isJukeboxError, JukeboxError } from '../errors.js';
import type { DecodeLimits } from './audio-decoder.js';
import { CatalogBuilder, sampleId, type ExploreRoot, type RunFolder } from './catalog.js';
import type { Catalog, JobRequest } from './catalog-types.js';
import { JobManager } from './jobs.js';
import { GenerationQueue } from '../queue/client.js';
import { redactRedisUrl } from '../queue/connection.js';
import { contentDisposition, EXPLORED_FILE_CSP, exploredFileType } from './file-types.js';
import { resolveResource } from './safe-path.js';
import { DEFAULT_UPLOAD_LIMITS, discardBody, receiveToFile, UploadAborted, UploadGate, UploadTooLarge, type UploadLimits } from './uploads.js';
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
  /** Largest audio upload for prime jobs, in bytes (default 256 MiB); a larger one is answered 413. */
  maxUploadBytes?: number;
  /** Uploads received at once (default 2); another is answered 429 with Retry-After. */
  maxConcurrentUploads?: number;
  /** Bytes the uploads in progress may add up to (default 384 MiB, at least maxUploadBytes); past it, 429. */
  maxUploadBytesInFlight?: number;
  /** Bounds on decoding an upload: time, memory growth, longest audio (lib/explore/audio-decoder.ts). */
  decodeLimits?: Partial<DecodeLimits>;
  /**
   * Run continue/upsample/prime jobs on this Redis job queue (`jukebox worker`s that see the
   * folders run them) and list the queue's other jobs, instead of running jobs in the server.
   */
  queue?: { redis: string; queue?: string };
}

export interface ExploreServer {
  url: string;
  server: Server;
  catalog(): Catalog;
  close(): Promise<void>;
}

/** Types of the page's own files (the package's asset folder) and of what the server makes. */
const TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

/** Seconds a client refused for too many uploads at once is asked to wait. */
const UPLOAD_RETRY_AFTER_S = 5;

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
  const maxBytes = o.maxUploadBytes ?? DEFAULT_UPLOAD_LIMITS.maxBytes;
  const uploadLimits: UploadLimits = {
    maxBytes,
    maxConcurrent: Math.max(1, o.maxConcurrentUploads ?? DEFAULT_UPLOAD_LIMITS.maxConcurrent),
    // At least one largest upload must fit, or files without a Content-Length could never come in.
    maxBytesInFlight: Math.max(maxBytes, o.maxUploadBytesInFlight ?? DEFAULT_UPLOAD_LIMITS.maxBytesInFlight),
  };
  const uploads = new UploadGate(uploadLimits);
  const queue = o.queue ? await GenerationQueue.open(o.queue) : undefined;
  const build = () => {
    const b = builder.build(jobsEnabled);
    if (queue) b.catalog.queue = { name: queue.name, redis: redactRedisUrl(queue.url) };
    return b;
  };
  let current: { catalog: Catalog; runs: RunFolder[] } = build();
  const rescan = () => (current = build());
  const jobs = new JobManager({
    roots,
    model: o.model,
    queue,
    decodeLimits: o.decodeLimits,
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
      // The page's own files, from the package only: nothing in an explored folder is ever
      // served at these paths (those files live under files/, as downloads or inert types).
      if (path === '/' || path === '/index.html') return sendAsset(req, res, join(assets, 'index.html'));
      if (path === '/app.js' || path === '/app.css') return sendAsset(req, res, join(assets, path.slice(1)));
      if (path === '/catalog.json') return sendBody(res, 200, TYPES['.json'], JSON.stringify(rescan().catalog));
      if (path === '/catalog.js') return sendBody(res, 200, TYPES['.js'], catalogScript(rescan().catalog));
      if (segments[0] === 'files' || segments[0] === 'derived') {
        const r = resolveResource(roots, segments);
        if (!r.ok) return sendError(res, r.status, r.reason);
        if (r.kind === 'file') return sendExploredFile(req, res, r.abs, decodeURIComponent(segments[segments.length - 1]));
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
      if (path === '/api/primes') return receivePrime(req, res);
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

  /**
   * An upload to prime a job with. Streamed to a file as it arrives (never held in memory),
   * under the gate's bounds; refused with 413 (too large: by its Content-Length before a byte
   * is read, or once the stream passes the cap) or 429 (too many at once), the partial file
   * removed. Then decoded in a worker (400 with the reason when it is not usable audio).
   */
  async function receivePrime(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Audio to continue from; any non-form content type (a cross-origin page cannot send
    // one without a preflight this server never approves).
    const type = req.headers['content-type'] ?? '';
    if (!/^(audio\/[\w.+-]+|application\/octet-stream)\b/.test(type)) {
      return refuseUpload(req, res, 415, 'send the audio file as the body (Content-Type audio/* or application/octet-stream)');
    }
    const tooLarge = `the file is too large: at most ${formatBytes(uploadLimits.maxBytes)} can be uploaded`;
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if (declared !== undefined && declared > uploadLimits.maxBytes) return refuseUpload(req, res, 413, tooLarge);
    const release = uploads.tryAcquire(declared ?? uploadLimits.maxBytes);
    if (!release) {
      return refuseUpload(req, res, 429, `too many uploads at once (at most ${uploadLimits.maxConcurrent}, ${formatBytes(uploadLimits.maxBytesInFlight)} in all): try again in a few seconds`, {
        'Retry-After': String(UPLOAD_RETRY_AFTER_S),
      });
    }
    try {
      const { id, partPath } = jobs.newUpload();
      try {
        await receiveToFile(req, partPath, uploadLimits.maxBytes);
      } catch (e) {
        if (e instanceof UploadTooLarge) return refuseUpload(req, res, 413, tooLarge);
        if (e instanceof UploadAborted) return void res.destroy();
        throw e;
      }
      let name = 'audio';
      try {
        name = decodeURIComponent(String(req.headers['x-filename'] ?? 'audio'));
      } catch {
        /* keep the default name */
      }
      try {
        return sendJson(res, 201, await jobs.addPrime(id, partPath, name));
      } catch (e) {
        if (isJukeboxError(e, 'ERR_AUDIO_FORMAT')) return sendError(res, 400, e.message);
        throw e;
      }
    } finally {
      release();
    }
  }

  /** An answer before the body was read: the rest is read and dropped (up to a bound), so the client sees it. */
  function refuseUpload(req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    sendError(res, status, message);
    discardBody(req, uploadLimits.maxBytes);
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
  }).catch(async (e: unknown) => {
    await jobs.dispose();
    await queue?.close();
    throw e;
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = (o.host ?? '127.0.0.1').includes(':') ? `[${o.host}]` : (o.host ?? '127.0.0.1');
  return {
    url: `http://${shownHost}:${port}/`,
    server,
    catalog: () => rescan().catalog,
    async close() {
      await jobs.dispose();
      await queue?.close();
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

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${Math.round((n / 2 ** 20) * 10) / 10} MiB` : `${Math.round(n / 1024)} KiB`;
}

/** One of the page's own files, from the package's asset folder. */
function sendAsset(req: IncomingMessage, res: ServerResponse, path: string): void {
  if (!existsSync(path)) {
    if (WEB_ASSETS.some((a) => path.endsWith(a))) return sendError(res, 500, 'the explorer page is not built: run "npm run build:web" in the package');
    return sendError(res, 404, 'no such file');
  }
  securityHeaders(res);
  res.setHeader('Content-Type', TYPES[/\.[a-z0-9]+$/i.exec(path)?.[0].toLowerCase() ?? ''] ?? 'application/octet-stream');
  sendFile(req, res, path);
}

/**
 * A file from an explored folder, typed by the name the URL gives it: an inert type the page
 * uses, or else a download (file-types.ts). Its own CSP sandboxes it should it ever be shown
 * as a document.
 */
function sendExploredFile(req: IncomingMessage, res: ServerResponse, path: string, name: string): void {
  const t = exploredFileType(name);
  securityHeaders(res);
  res.setHeader('Content-Security-Policy', EXPLORED_FILE_CSP);
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Content-Type', t.type);
  res.setHeader('Content-Disposition', contentDisposition(name, t.inline));
  sendFile(req, res, path);
}

/** A file, whole or one byte range (audio seeking asks for ranges); its type headers are set by the caller. */
function sendFile(req: IncomingMessage, res: ServerResponse, path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    res.removeHeader('Content-Type');
    res.removeHeader('Content-Disposition');
    return sendError(res, 404, 'no such file');
  }
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'no-cache');
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
