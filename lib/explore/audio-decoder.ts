/**
 * Decodes the explorer's uploaded audio off the server's event loop: each file is decoded in
 * its own worker thread (lib/explore/audio-worker.ts, compiled into dist/ like the rest of
 * the package), one file at a time, and the worker is stopped when it runs past a time limit
 * or makes the process grow past a memory limit. Decoding and resampling are plain
 * JavaScript and WebAssembly loops: on the main thread, one hostile file (a tiny WAV that
 * declares 1 Hz) once froze every request for 21 s and grew the server to 3 GB.
 *
 * Memory: a worker's `resourceLimits` bound only its JavaScript heap, not the ArrayBuffers
 * that hold decoded samples nor a WebAssembly decoder's memory, which are most of what
 * decoding uses. So the process's resident size is also watched while a worker runs, and the
 * worker stopped once it has grown by more than the limit. (That counts whatever else the
 * process allocates meanwhile, too; running one decode at a time keeps it meaningful.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { JukeboxError } from '../errors.js';
import { packageRoot } from '../native.js';
import { DECODE_REQUEST, type DecodeReply, type DecodeRequest } from './audio-decoder-types.js';

export interface DecodeLimits {
  /** A worker still decoding after this long is stopped. */
  timeoutMs: number;
  /** A worker is stopped once the process has grown by this much since it started. */
  memoryMb: number;
  /** Longest audio accepted, in seconds. */
  maxSeconds: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { timeoutMs: 60_000, memoryMb: 2048, maxSeconds: 20 * 60 };

/** How often the process's size is looked at while a worker decodes. */
const WATCH_MS = 25;

export type DecodeResult = Extract<DecodeReply, { ok: true }>;

/** The compiled worker; the package resolves its own files from its root, as web-assets.ts does. */
export function audioWorkerPath(): string {
  return join(packageRoot, 'dist', 'explore', 'audio-worker.js');
}

export class AudioDecoder {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly workers = new Set<Worker>();
  private disposed = false;

  constructor(private readonly limits: DecodeLimits = DEFAULT_DECODE_LIMITS) {}

  /**
   * Decodes one file in a worker, after the ones before it. Refusals of the file (not audio,
   * out of bounds, too slow, too big) are ERR_AUDIO_FORMAT with a message naming `name`;
   * `signal` stops the worker (ERR_ABORTED).
   */
  decode(r: Omit<DecodeRequest, 'kind' | 'maxSeconds'>, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<DecodeResult> {
    const run = this.queue.then(() => this.runWorker({ ...r, kind: DECODE_REQUEST, maxSeconds: this.limits.maxSeconds }, o.timeoutMs ?? this.limits.timeoutMs, o.signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Stops every worker. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }

  private runWorker(r: DecodeRequest, timeoutMs: number, signal?: AbortSignal): Promise<DecodeResult> {
    if (this.disposed) return Promise.reject(new JukeboxError('ERR_DISPOSED', 'the explorer is shutting down'));
    if (signal?.aborted) return Promise.reject(new JukeboxError('ERR_ABORTED', 'cancelled'));
    const file = audioWorkerPath();
    if (!existsSync(file)) {
      return Promise.reject(new JukeboxError('ERR_IO', `the explorer's audio worker is not built (${file} is missing): run "npm run build:ts" in the package folder`));
    }
    return new Promise<DecodeResult>((resolve, reject) => {
      const worker = new Worker(file, {
        workerData: r,
        // The JavaScript heap only (see the top of this file); the decoded samples are
        // ArrayBuffers, watched below.
        resourceLimits: { maxOldGenerationSizeMb: Math.max(64, Math.min(512, this.limits.memoryMb)), maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
      });
      this.workers.add(worker);
      const startRss = process.memoryUsage.rss();
      let settled = false;
      const finish = (e: Error | undefined, value?: DecodeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(watch);
        signal?.removeEventListener('abort', onAbort);
        this.workers.delete(worker);
        void worker.terminate();
        if (e) reject(e);
        else resolve(value!);
      };
      const stop = (message: string, code: 'ERR_AUDIO_FORMAT' | 'ERR_ABORTED' = 'ERR_AUDIO_FORMAT') => finish(new JukeboxError(code, message));
      const timer = setTimeout(
        () => stop(`${r.name}: decoding took longer than ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 100) / 10} s` : `${timeoutMs} ms`} and was stopped (is the file very long, or damaged?)`),
        timeoutMs,
      );
      const watch = setInterval(() => {
        if (process.memoryUsage.rss() - startRss > this.limits.memoryMb * 2 ** 20) {
          stop(`${r.name}: decoding needed more than ${this.limits.memoryMb} MiB and was stopped (is the file very long, or damaged?)`);
        }
      }, WATCH_MS);
      const onAbort = () => stop('cancelled', 'ERR_ABORTED');
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: DecodeReply) => {
        if (m.ok) return finish(undefined, m);
        // The file's fault (unreadable, out of bounds) is a refusal; anything else is ours.
        finish(new JukeboxError(m.code === 'ERR_AUDIO_FORMAT' || m.code === 'ERR_INVALID_ARGUMENT' ? 'ERR_AUDIO_FORMAT' : 'ERR_IO', m.message));
      });
      worker.on('error', (e: Error & { code?: string }) => {
        if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') return stop(`${r.name}: decoding ran out of memory and was stopped (is the file very long, or damaged?)`);
        finish(new JukeboxError('ERR_IO', `the audio worker failed: ${e.message}`, { cause: e }));
      });
      worker.on('exit', (code) => finish(new JukeboxError('ERR_IO', `the audio worker stopped (exit code ${code}) before it answered`)));
    });
  }
}
