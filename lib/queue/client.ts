/**
 * The submitting side of the job queue: enqueueGeneration() puts one job per sample of a
 * run on a BullMQ queue (so the samples spread over the workers), and GenerationQueue
 * follows, lists and cancels jobs (for `jukebox submit --wait` and the explorer).
 *
 * Every job of a run has the run's seed and its own sample index, so sample i's codes equal
 * sample i of `jukebox generate --samples N` with that seed. A run of one sample writes its
 * output folder itself; a run of N writes one output folder per sample, <outputDir>/sample_<i>,
 * each holding exactly what `jukebox generate` writes for one sample.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Job, JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JukeboxError, type JukeboxErrorCode } from '../errors.js';
import type { GenerateOptions } from '../generate/generate.js';
import type { RunState } from '../generate/run-files.js';
import { readNpz } from '../npz.js';
import { checkRedis, queueLibraries, queueName, redactRedisUrl, redisConnection, type QueueConnectionOptions } from './connection.js';
import {
  defaultWorkerName,
  encodeF32,
  encodeI32,
  JOB_DATA_VERSION,
  JOB_NAME,
  MAX_INLINE_BYTES,
  parseFailureReason,
  type GenerationJobData,
  type GenerationJobResult,
  type JobModel,
  type QueueJobProgress,
} from './job-data.js';

export interface EnqueueGenerationOptions
  extends QueueConnectionOptions,
    Omit<GenerateOptions, 'prompt' | 'codes' | 'outputDir' | 'resume' | 'signal' | 'onProgress' | 'onWindow' | 'sampleOffset'> {
  /**
   * Where the results go, on storage every worker sees (a shared filesystem path): one
   * sample writes this folder as `jukebox generate -o` would; N samples write
   * <outputDir>/sample_0 .. sample_{N-1}, one generate output folder each.
   */
  outputDir: string;
  /** Audio to continue from: a file every worker can read, or mono samples at the model's rate (as generate()'s prompt). */
  prompt?: string | Float32Array;
  /** With a prompt file: use only its first seconds. */
  promptSeconds?: number;
  /** Codes to continue or upsample: an .npz of level_L arrays (a file every worker can read), or codes[level][sample] as generate() takes. */
  codes?: string | (Int32Array[] | undefined)[];
  /** WAV sample format (default s16). */
  format?: 's16' | 'f32';
  /** A model folder (or a VQ-VAE and priors, bottom level first) the workers load; default: each worker's own. */
  model?: string | { vqvae: string; priors: (string | undefined | null)[] };
  /** Tries per job for failures a retry can fix (a flaky disk, memory; default 3). A dead worker's job is taken over without using one. */
  attempts?: number;
  /** @internal the sample explorer: recorded in each job's run.json. */
  parent?: RunState['parent'];
  /** Aborts before the jobs are added. */
  signal?: AbortSignal;
}

export interface QueuedJob {
  id: string;
  sample: number;
  outputDir: string;
}

export interface EnqueuedRun {
  queue: string;
  /** Id shared by the run's jobs (their ids are <run>-<sample>). */
  run: string;
  seed: number;
  jobs: QueuedJob[];
}

export type QueueJobState = 'queued' | 'running' | 'done' | 'failed' | 'missing';

export interface QueueJobStatus {
  id: string;
  state: QueueJobState;
  /** BullMQ's own state (waiting, active, delayed, prioritized, completed, failed...). */
  queueState: string;
  run: string;
  sample: number;
  samples: number;
  outputDir: string;
  progress: QueueJobProgress | null;
  result: GenerationJobResult | null;
  error: { message: string; code: JukeboxErrorCode } | null;
  /** Times the job was started (a takeover after a dead worker or a hand-back starts it again). */
  starts: number;
  queuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  data: GenerationJobData | null;
}

/** Finished jobs are kept this long (so `--wait` and the explorer can still read them). */
const KEEP_DONE = { age: 7 * 86400, count: 20_000 };
const KEEP_FAILED = { age: 30 * 86400 };

/** The key a worker polls to learn that its running job was cancelled. */
export function cancelKey(queue: string, id: string): string {
  return `bull:${queue}:jukebox-cancel:${id}`;
}

function fail(m: string, code: JukeboxErrorCode = 'ERR_INVALID_ARGUMENT'): never {
  throw new JukeboxError(code, m);
}

function jobModel(m: EnqueueGenerationOptions['model']): JobModel | undefined {
  if (m === undefined) return undefined;
  if (typeof m === 'string') return { dir: resolve(m) };
  if (!m.vqvae) fail('model: give a folder, or { vqvae, priors }');
  return { vqvae: resolve(m.vqvae), priors: m.priors.map((p) => (p ? resolve(p) : null)) };
}

/** Samples held by an .npz of level_L arrays (checked: every level holds 1 or `n`). */
function checkCodesFile(path: string, n: number): void {
  if (!existsSync(path) || !statSync(path).isFile()) fail(`codes file ${path} does not exist`, 'ERR_IO');
  const arrays = readNpz(path);
  const levels = Object.keys(arrays).filter((k) => /^level_\d+$/.test(k));
  if (levels.length === 0) fail(`${path} has no level_L arrays`, 'ERR_CODES');
  for (const k of levels) {
    const shape = arrays[k].shape;
    const rows = shape.length === 2 ? shape[0] : 1;
    if (rows !== 1 && rows !== n) fail(`${path}: ${k} holds ${rows} samples; expected 1 or ${n} (--samples)`, 'ERR_CODES');
  }
}

/** The jobs of one run, checked and ready to add (nothing is sent). */
export function buildRunJobs(o: Omit<EnqueueGenerationOptions, 'redis' | 'queue'>): { run: string; seed: number; jobs: { id: string; data: GenerationJobData }[] } {
  const n = o.samples ?? 1;
  if (!Number.isInteger(n) || n < 1) fail(`samples must be a positive integer, got ${o.samples}`);
  if (typeof o.seconds !== 'number' || !(o.seconds > 0)) fail(`seconds must be > 0, got ${o.seconds}`);
  if (o.totalSeconds !== undefined && !(o.totalSeconds >= o.seconds)) fail('totalSeconds must be at least seconds');
  if (!o.outputDir) fail('outputDir is needed: a folder on storage every worker sees');
  if (o.seed !== undefined && (!Number.isInteger(o.seed) || o.seed < 0)) fail(`seed must be a non-negative integer, got ${o.seed}`);
  if (o.levels?.some((l) => !Number.isInteger(l) || l < 0)) fail('levels must be level numbers');
  const attempts = o.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) fail('attempts must be a positive integer');
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  const run = randomBytes(4).toString('hex');
  const root = resolve(o.outputDir);

  let prompt: GenerationJobData['prompt'];
  if (typeof o.prompt === 'string') {
    const path = resolve(o.prompt);
    if (!existsSync(path) || !statSync(path).isFile()) fail(`prompt file ${path} does not exist`, 'ERR_IO');
    if (o.promptSeconds !== undefined && !(o.promptSeconds > 0)) fail('promptSeconds must be > 0');
    prompt = { path, ...(o.promptSeconds !== undefined ? { seconds: o.promptSeconds } : {}) };
  } else if (o.prompt) {
    if (o.prompt.byteLength > MAX_INLINE_BYTES) fail(`the prompt is ${o.prompt.byteLength} bytes: write it to a file on shared storage and pass its path`);
    prompt = { samples: encodeF32(o.prompt) };
  }
  if (prompt && o.codes) fail('give either a prompt or codes to continue from, not both');
  if (typeof o.codes === 'string') checkCodesFile(resolve(o.codes), n);
  if (Array.isArray(o.codes)) {
    o.codes.forEach((c, l) => {
      if (c && c.length !== 0 && c.length !== 1 && c.length !== n) fail(`codes for level ${l} hold ${c.length} samples; expected 1 or ${n}`, 'ERR_CODES');
    });
  }
  const settings = {
    ...(o.artist !== undefined ? { artist: o.artist } : {}),
    ...(o.genre !== undefined ? { genre: o.genre } : {}),
    ...(o.lyrics !== undefined ? { lyrics: o.lyrics } : {}),
    seconds: o.seconds,
    ...(o.totalSeconds !== undefined ? { totalSeconds: o.totalSeconds } : {}),
    ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
    ...(o.topK !== undefined ? { topK: o.topK } : {}),
    ...(o.topP !== undefined ? { topP: o.topP } : {}),
    seed,
    ...(o.levels ? { levels: [...o.levels] } : {}),
    ...(o.hopFractions ? { hopFractions: [...o.hopFractions] } : {}),
    ...(o.allowUnknownLabels ? { allowUnknownLabels: true } : {}),
  };
  const model = jobModel(o.model);
  const by = defaultWorkerName();
  const jobs = Array.from({ length: n }, (_, i) => {
    let codes: GenerationJobData['codes'];
    if (typeof o.codes === 'string') codes = { path: resolve(o.codes) };
    else if (o.codes) {
      codes = { levels: o.codes.map((c) => (c && c.length ? encodeI32(c.length === 1 ? c[0] : c[i]) : null)) };
      const bytes = codes.levels.reduce((s, c) => s + (c?.length ?? 0), 0);
      if (bytes > (MAX_INLINE_BYTES * 4) / 3) fail('the codes are too large to travel in a job: write them to an .npz on shared storage and pass its path');
    }
    const data: GenerationJobData = {
      version: JOB_DATA_VERSION,
      run,
      sample: i,
      samples: n,
      outputDir: n === 1 ? root : join(root, `sample_${i}`),
      settings,
      ...(prompt ? { prompt } : {}),
      ...(codes ? { codes } : {}),
      format: o.format ?? 's16',
      ...(model ? { model } : {}),
      ...(o.parent ? { parent: o.parent } : {}),
      submitted: { at: Date.now(), by },
    };
    return { id: `${run}-${i}`, data };
  });
  return { run, seed, jobs };
}

function jobOptions(attempts: number, id: string): JobsOptions {
  return { jobId: id, attempts, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: KEEP_DONE, removeOnFail: KEEP_FAILED };
}

function toState(s: string): QueueJobState {
  if (s === 'active') return 'running';
  if (s === 'completed') return 'done';
  if (s === 'failed') return 'failed';
  if (s === 'unknown') return 'missing';
  return 'queued'; // waiting, delayed (a retry's back-off), prioritized, paused, waiting-children
}

function statusOf(job: Job, queueState: string): QueueJobStatus {
  const d = job.data as GenerationJobData;
  const state = toState(queueState);
  const progress = job.progress && typeof job.progress === 'object' ? (job.progress as QueueJobProgress) : null;
  return {
    id: job.id!,
    state,
    queueState,
    run: d?.run ?? '',
    sample: d?.sample ?? 0,
    samples: d?.samples ?? 1,
    outputDir: d?.outputDir ?? '',
    progress,
    result: state === 'done' ? ((job.returnvalue as GenerationJobResult) ?? null) : null,
    error: state === 'failed' ? parseFailureReason(job.failedReason) : null,
    starts: job.attemptsStarted ?? 0,
    queuedAt: job.timestamp,
    startedAt: job.processedOn ?? null,
    finishedAt: state === 'done' || state === 'failed' ? (job.finishedOn ?? null) : null,
    data: d && d.version === JOB_DATA_VERSION ? d : null,
  };
}

function missing(id: string): QueueJobStatus {
  return {
    id, state: 'missing', queueState: 'unknown', run: '', sample: 0, samples: 1, outputDir: '', progress: null, result: null,
    error: { message: `job ${id} is not on the queue (never added, or removed)`, code: 'ERR_INVALID_ARGUMENT' },
    starts: 0, queuedAt: 0, startedAt: null, finishedAt: null, data: null,
  };
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Called with a job's status whenever it changes (state or progress). */
  onUpdate?: (s: QueueJobStatus) => void;
}

/** A connection to one queue: add, follow, list and cancel generation jobs. */
export class GenerationQueue {
  readonly name: string;
  readonly url: string;
  private readonly connection: Redis;
  private readonly queue: Queue;
  private readonly bullmq: typeof import('bullmq');

  private constructor(url: string, name: string, connection: Redis, bullmq: typeof import('bullmq')) {
    this.url = url;
    this.name = name;
    this.connection = connection;
    this.bullmq = bullmq;
    this.queue = new bullmq.Queue(name, { connection });
    this.queue.on('error', () => {});
  }

  /** Connects (failing at once, with what to do, when Redis cannot be reached). */
  static async open(o: QueueConnectionOptions): Promise<GenerationQueue> {
    const name = queueName(o);
    await checkRedis(o.redis);
    const { bullmq } = await queueLibraries();
    const q = new GenerationQueue(o.redis, name, await redisConnection(o.redis), bullmq);
    await q.queue.waitUntilReady();
    return q;
  }

  /** Adds one job per sample; returns their ids (nothing is added when a check fails). */
  async enqueue(o: Omit<EnqueueGenerationOptions, 'redis' | 'queue'>): Promise<EnqueuedRun> {
    const built = buildRunJobs(o);
    o.signal?.throwIfAborted();
    const attempts = o.attempts ?? 3;
    await this.queue.addBulk(built.jobs.map((j) => ({ name: JOB_NAME, data: j.data, opts: jobOptions(attempts, j.id) })));
    return { queue: this.name, run: built.run, seed: built.seed, jobs: built.jobs.map((j) => ({ id: j.id, sample: j.data.sample, outputDir: j.data.outputDir })) };
  }

  async status(ids: string[]): Promise<QueueJobStatus[]> {
    return Promise.all(
      ids.map(async (id) => {
        // The state first, then the job: read the other way round, a job that failed (or
        // finished) in between comes back with state 'failed' but no failedReason (or no
        // return value) in the earlier snapshot. BullMQ sets both in one script.
        const state = await this.queue.getJobState(id);
        const job = await this.queue.getJob(id);
        if (!job) return missing(id);
        return statusOf(job as Job, state);
      }),
    );
  }

  /** Jobs waiting or running (oldest first), then the most recently finished (newest first), at most `limit` of each. */
  async list(limit = 50): Promise<QueueJobStatus[]> {
    const open = await this.queue.getJobs(['active', 'waiting', 'prioritized', 'delayed', 'paused'], 0, limit - 1, true);
    const done = await this.queue.getJobs(['completed', 'failed'], 0, limit - 1, false);
    const all = [...open, ...done].filter((j): j is Job => !!j && j.name === JOB_NAME);
    return Promise.all(
      all.map(async (j) => {
        const state = await j.getState();
        // finished since the listing was read: its reason or result is in a fresh copy only
        const fresh = (state === 'failed' || state === 'completed') && !j.finishedOn ? ((await this.queue.getJob(j.id!)) ?? j) : j;
        return statusOf(fresh as Job, state);
      }),
    );
  }

  /** Jobs per state, and the workers connected (null where the server does not allow CLIENT LIST). */
  async counts(): Promise<{ waiting: number; active: number; delayed: number; completed: number; failed: number; workers: number | null }> {
    const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    const workers = await this.queue.getWorkersCount().catch(() => null);
    return { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, workers };
  }

  /** Lines of a job's log (what its workers did: starts, sampled windows, resumes). */
  async logs(id: string): Promise<string[]> {
    return (await this.queue.getJobLogs(id, 0, -1, true)).logs;
  }

  /**
   * Cancels a job: one still waiting is removed; a running one is stopped by its worker
   * within a second or so (it fails with ERR_ABORTED, its folder keeps the finished windows).
   */
  async cancel(id: string): Promise<'removed' | 'cancelling' | 'finished' | 'missing'> {
    const job = await this.queue.getJob(id);
    if (!job) return 'missing';
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return 'finished';
    if (state !== 'active') {
      try {
        await job.remove();
        return 'removed';
      } catch {
        /* taken by a worker meanwhile: cancel it there */
      }
    }
    await this.connection.set(cancelKey(this.name, id), '1', 'EX', 86400);
    return 'cancelling';
  }

  /**
   * Follows the jobs until every one is done or failed (or the signal aborts: ERR_ABORTED,
   * the jobs stay on the queue). Returns their final statuses in the order given.
   */
  async wait(ids: string[], o: WaitOptions = {}): Promise<QueueJobStatus[]> {
    const wanted = new Set(ids);
    const latest = new Map<string, QueueJobStatus>();
    const eventsConnection = await redisConnection(this.url);
    const events = new this.bullmq.QueueEvents(this.name, { connection: eventsConnection });
    events.on('error', () => {});
    const put = (s: QueueJobStatus) => {
      const prev = latest.get(s.id);
      latest.set(s.id, s);
      if (!prev || prev.state !== s.state || JSON.stringify(prev.progress) !== JSON.stringify(s.progress)) o.onUpdate?.(s);
    };
    const final = (s: QueueJobStatus | undefined) => !!s && (s.state === 'done' || s.state === 'failed' || s.state === 'missing');
    const allFinal = () => ids.every((id) => final(latest.get(id)));
    let wake: () => void = () => {};
    const refresh = async (id: string) => {
      const [s] = await this.status([id]);
      put(s);
      if (final(s)) wake();
    };
    try {
      await events.waitUntilReady();
      const onEvent = ({ jobId }: { jobId: string }) => {
        if (wanted.has(jobId)) void refresh(jobId).catch(() => {});
      };
      events.on('active', onEvent);
      events.on('completed', onEvent);
      events.on('failed', onEvent);
      events.on('waiting', onEvent);
      events.on('progress', ({ jobId, data }) => {
        const s = latest.get(jobId);
        if (!s || !wanted.has(jobId) || typeof data !== 'object' || final(s)) return;
        put({ ...s, state: 'running', queueState: 'active', progress: data as QueueJobProgress });
      });
      // Everything once after the events stream is open (so nothing falls between), then
      // the open jobs again every few seconds as a safety net.
      for (const s of await this.status(ids)) put(s);
      while (!allFinal()) {
        if (o.signal?.aborted) throw new JukeboxError('ERR_ABORTED', 'stopped waiting (the jobs stay on the queue)');
        let onAbort = () => {};
        const timedOut = await new Promise<boolean>((r) => {
          const t = setTimeout(() => r(true), 5000);
          wake = onAbort = () => (clearTimeout(t), r(false));
          o.signal?.addEventListener('abort', onAbort, { once: true });
        });
        o.signal?.removeEventListener('abort', onAbort);
        wake = () => {};
        if (timedOut && !o.signal?.aborted) {
          for (const s of await this.status(ids.filter((id) => !final(latest.get(id))))) put(s);
        }
      }
      return ids.map((id) => latest.get(id)!);
    } finally {
      await events.close().catch(() => {});
      eventsConnection.disconnect();
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.connection.disconnect();
  }

  toString(): string {
    return `queue ${this.name} at ${redactRedisUrl(this.url)}`;
  }
}

/** Enqueues one generation job per sample (see GenerationQueue.enqueue) and disconnects. */
export async function enqueueGeneration(o: EnqueueGenerationOptions): Promise<EnqueuedRun> {
  const q = await GenerationQueue.open(o);
  try {
    return await q.enqueue(o);
  } finally {
    await q.close();
  }
}

/** Waits for jobs (see GenerationQueue.wait) and disconnects. */
export async function waitForJobs(o: QueueConnectionOptions & WaitOptions & { jobs: string[] }): Promise<QueueJobStatus[]> {
  const q = await GenerationQueue.open(o);
  try {
    return await q.wait(o.jobs, o);
  } finally {
    await q.close();
  }
}
