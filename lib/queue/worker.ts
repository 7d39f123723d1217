/**
 * runWorker(): takes generation jobs from a BullMQ queue and runs each with generate(),
 * writing the job's output folder (shared storage) as `jukebox generate` would.
 *
 * Nothing is lost when a worker dies: generate() saves every level's codes after each
 * window, the worker holds a lock on its job that it renews every lockSeconds/2 (its
 * heartbeat), and when the lock lapses (SIGKILL, a machine gone) any other worker's stalled
 * check puts the job back on the queue; whoever takes it next resumes from the saved codes
 * (generate's `resume`), so no finished window is sampled twice and, the random streams
 * being keyed by seed, level, window, sample and position, the codes equal an uninterrupted
 * run. Stopping a worker (its signal) hands its running jobs back the same way, at once.
 * A job that fails for a reason a retry cannot fix (a bad artist name, a missing model, bad
 * codes) fails once, its error on the job; other failures are retried (attempts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { JukeboxError } from '../errors.js';
import { loadAudio, writeAudio } from '../audio/decode.js';
import type { Backend } from '../backend.js';
import { loadJukebox, type GenerateOptions, type Jukebox, type LoadJukeboxOptions } from '../generate/generate.js';
import { readSavedCodes, sampleWavName, writeRunAudio, type RunState } from '../generate/run-files.js';
import { DEFAULT_HOP_FRACTIONS, levelWindows } from '../generate/schedule.js';
import { readLevelCodes } from '../cli/commands.js';
import { cancelKey } from './client.js';
import { checkRedis, queueLibraries, queueName, redactRedisUrl, redisConnection, type QueueConnectionOptions } from './connection.js';
import {
  decodeF32,
  decodeI32,
  defaultWorkerName,
  failureReason,
  isRetryable,
  parseJobData,
  type GenerationJobData,
  type GenerationJobResult,
  type JobModel,
  type QueueJobProgress,
} from './job-data.js';

export interface RunWorkerOptions extends QueueConnectionOptions {
  /** Jobs run at once in this process (default 1; the engine serialises its native calls, so more mainly overlaps I/O). */
  concurrency?: number;
  /** Model folder for jobs that name none (default: the package's default model). Loaded at start, so a bad one fails the worker, not its jobs. */
  model?: string;
  backend?: Backend;
  /**
   * Heartbeat: the worker renews its lock on each running job every lockSeconds/2; a job
   * whose lock lapses (its worker died) is taken over by another worker within about
   * 2 x lockSeconds. Default 30. Every worker of a queue should use the same value.
   */
  lockSeconds?: number;
  /** Times a job may lose its worker before it is failed as crashing its workers (default 2). */
  maxStalls?: number;
  /** Shown on the job and in its log (default host:pid). */
  name?: string;
  /** Stop: running jobs are handed back to the queue at once (their finished windows kept), then runWorker returns. */
  signal?: AbortSignal;
  /** Drain: take no new job, finish the running ones, then return. */
  drainSignal?: AbortSignal;
  /** Return after this many jobs finished or failed (default: no limit). */
  maxJobs?: number;
  /** Least milliseconds between two progress updates of a job (default 500). */
  progressIntervalMs?: number;
  onEvent?: (e: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'ready'; worker: string; queue: string; redis: string; redisVersion: string; model: string; backend: string; concurrency: number }
  | { type: 'warning'; message: string }
  | { type: 'job-started'; id: string; sample: number; samples: number; attempt: number; outputDir: string }
  | { type: 'job-resumed'; id: string; savedWindows: number; detail: string }
  | { type: 'job-done'; id: string; result: GenerationJobResult }
  | { type: 'job-failed'; id: string; reason: string; willRetry: boolean }
  | { type: 'job-handed-back'; id: string }
  | { type: 'job-lost'; id: string };

export interface WorkerSummary {
  worker: string;
  completed: number;
  failed: number;
  handedBack: number;
}

const HANDBACK = Symbol('handback');
const CANCELLED = Symbol('cancelled');
const LOCK_LOST = Symbol('lock lost');

/** Loaded models, shared by the worker's jobs: its own stays loaded, others are kept while used (and the last two). */
class ModelCache {
  private readonly entries = new Map<string, { jb: Promise<Jukebox>; users: number; used: number }>();
  constructor(
    private readonly backend: Backend | undefined,
    own: Jukebox,
  ) {
    this.entries.set('', { jb: Promise.resolve(own), users: 1, used: Infinity });
  }

  async acquire(m: JobModel | undefined): Promise<{ jb: Jukebox; release: () => void }> {
    const key = m ? JSON.stringify(m) : '';
    let e = this.entries.get(key);
    if (!e) {
      const opts: LoadJukeboxOptions =
        m && 'dir' in m ? { model: m.dir, backend: this.backend } : { vqvae: m!.vqvae, priors: m!.priors.map((p) => p ?? undefined), backend: this.backend };
      e = { jb: loadJukebox(opts), users: 0, used: Date.now() };
      this.entries.set(key, e);
      e.jb.catch(() => this.entries.delete(key));
    }
    e.users++;
    e.used = Date.now();
    const entry = e;
    try {
      const jb = await entry.jb;
      return { jb, release: () => (entry.users--, this.evict()) };
    } catch (err) {
      entry.users--;
      throw err;
    }
  }

  private evict(): void {
    const idle = [...this.entries].filter(([k, e]) => k !== '' && e.users === 0).sort((a, b) => b[1].used - a[1].used);
    for (const [k, e] of idle.slice(2)) {
      this.entries.delete(k);
      void e.jb.then((jb) => jb.dispose(), () => {});
    }
  }

  async dispose(): Promise<void> {
    for (const e of this.entries.values()) await e.jb.then((jb) => jb.dispose(), () => {});
    this.entries.clear();
  }
}

/** The job's prompt (decoded at the model's rate) and codes (this sample's row), as generate() takes them. */
async function jobInputs(d: GenerationJobData, jb: Jukebox): Promise<Pick<GenerateOptions, 'prompt' | 'codes'>> {
  if (d.prompt && 'path' in d.prompt) {
    const audio = await loadAudio(d.prompt.path, { sampleRate: jb.sampleRate });
    return { prompt: d.prompt.seconds ? audio.samples.subarray(0, Math.round(d.prompt.seconds * jb.sampleRate)) : audio.samples };
  }
  if (d.prompt) return { prompt: decodeF32(d.prompt.samples, 'prompt') };
  if (d.codes && 'path' in d.codes) {
    const codes: (Int32Array[] | undefined)[] = [];
    for (let l = 0; l < jb.vqvae.levels; l++) {
      let c: { n: number; t: number; data: Int32Array } | undefined;
      try {
        c = readLevelCodes(d.codes.path, l);
      } catch (e) {
        if (!(e instanceof JukeboxError && /has no array/.test(e.message))) throw e;
      }
      if (!c) {
        codes.push(undefined);
        continue;
      }
      const row = c.n === 1 ? 0 : d.sample;
      if (row >= c.n) throw new JukeboxError('ERR_CODES', `${d.codes.path}: level_${l} holds ${c.n} samples, not sample ${d.sample}`);
      codes.push([c.data.slice(row * c.t, (row + 1) * c.t)]);
    }
    return { codes };
  }
  if (d.codes) return { codes: d.codes.levels.map((c, l) => (c ? [decodeI32(c, `codes of level ${l}`)] : undefined)) };
  return {};
}

/** Per level, the windows an earlier attempt finished (its saved codes cover them), for the job's log. */
function savedWindows(jb: Jukebox, d: GenerationJobData, dir: string): { count: number; detail: string } {
  const vq = jb.vqvae;
  const L = vq.levels;
  const topHop = vq.hopLengths[L - 1];
  const sampleLength = Math.floor((d.settings.seconds * vq.sampleRate) / topHop) * topHop;
  const saved = readSavedCodes(dir, L);
  const levels = [...(d.settings.levels ?? jb.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0))].sort((a, b) => b - a);
  let count = 0;
  const parts: string[] = [];
  for (const level of levels) {
    const prior = jb.priors[level];
    if (!prior) continue;
    const have = saved[level]?.[0]?.length ?? 0;
    const hop = d.settings.hopFractions?.[level] ?? DEFAULT_HOP_FRACTIONS[level] ?? 0.5;
    const windows = levelWindows(sampleLength / prior.structure.rawToTokens, prior.structure.nCtx, hop);
    const done = windows.filter((w) => w.start + w.length <= have).length;
    count += done;
    parts.push(`level ${level} ${done}/${windows.length}`);
  }
  return { count, detail: parts.join(', ') };
}

/**
 * Runs a worker until its signal (hand back), drainSignal (finish) or maxJobs; resolves with
 * what it did. Fails at once when Redis cannot be reached or the worker's model cannot load.
 */
export async function runWorker(o: RunWorkerOptions): Promise<WorkerSummary> {
  const name = queueName(o);
  const emit = (e: WorkerEvent) => o.onEvent?.(e);
  const worker = o.name ?? defaultWorkerName();
  const concurrency = o.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new JukeboxError('ERR_INVALID_ARGUMENT', `concurrency must be a positive integer, got ${o.concurrency}`);
  const lockMs = Math.round((o.lockSeconds ?? 30) * 1000);
  if (!(lockMs >= 500)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `lockSeconds must be at least 0.5, got ${o.lockSeconds}`);
  const progressMs = o.progressIntervalMs ?? 500;
  const summary: WorkerSummary = { worker, completed: 0, failed: 0, handedBack: 0 };
  if (o.signal?.aborted || o.drainSignal?.aborted) return summary;

  const info = await checkRedis(o.redis);
  if (info.maxmemoryPolicy && info.maxmemoryPolicy !== 'noeviction') {
    emit({ type: 'warning', message: `Redis's maxmemory-policy is ${info.maxmemoryPolicy}: under memory pressure it may drop jobs; set it to noeviction` });
  }
  const { UnrecoverableError, WaitingError, Worker } = (await queueLibraries()).bullmq;
  const own = await loadJukebox({ model: o.model, backend: o.backend });
  const models = new ModelCache(o.backend, own);
  const connection = await redisConnection(o.redis);
  const running = new Map<string, AbortController>();
  let finished = 0;
  let closing: Promise<void> | undefined;
  let stopping: 'handback' | 'finish' | undefined;

  const processor = async (job: Job, token?: string): Promise<GenerationJobResult> => {
    const ctl = new AbortController();
    const id = job.id!;
    running.set(id, ctl);
    if (stopping === 'handback') ctl.abort(HANDBACK);
    try {
      return await runJob(job, ctl);
    } catch (e) {
      const why = ctl.signal.aborted ? ctl.signal.reason : undefined;
      if (why === HANDBACK) {
        await job.log(`${worker}: handed back (stopping); the finished windows are saved`).catch(() => {});
        await job.moveToWait(token);
        summary.handedBack++;
        emit({ type: 'job-handed-back', id });
        throw new WaitingError();
      }
      if (why === LOCK_LOST) {
        emit({ type: 'job-lost', id });
        throw new Error(`${worker} lost its lock on the job (it was taken over by another worker)`);
      }
      const reason = why === CANCELLED ? 'cancelled [ERR_ABORTED]' : failureReason(e);
      const retry = why !== CANCELLED && isRetryable(e) && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      await job.log(`${worker}: failed: ${reason}${retry ? ' (will be retried)' : ''}`).catch(() => {});
      summary.failed++;
      emit({ type: 'job-failed', id, reason, willRetry: retry });
      throw why !== CANCELLED && isRetryable(e) ? new Error(reason) : new UnrecoverableError(reason);
    } finally {
      running.delete(id);
      if (!(ctl.signal.reason === HANDBACK || ctl.signal.reason === LOCK_LOST) && o.maxJobs !== undefined && ++finished >= o.maxJobs) void stop('finish');
    }
  };

  async function runJob(job: Job, ctl: AbortController): Promise<GenerationJobResult> {
    const id = job.id!;
    const t0 = Date.now();
    const d = parseJobData(job.data);
    const attempt = Math.max(1, job.attemptsStarted ?? 1);
    const dir = d.outputDir;
    emit({ type: 'job-started', id, sample: d.sample, samples: d.samples, attempt, outputDir: dir });
    const log = (line: string) => void job.log(`attempt ${attempt} ${worker}: ${line}`).catch(() => {});
    log(`started (sample ${d.sample} of ${d.samples}, seed ${d.settings.seed}) -> ${dir}`);

    let last = 0;
    let lastKey = '';
    let pending: Promise<void> = Promise.resolve();
    const progress: QueueJobProgress = {
      phase: 'load', level: -1, window: 0, windows: 0, token: 0, tokens: 0, fraction: 0, etaSeconds: null, worker, pid: process.pid, attempt, resumedWindows: 0,
    };
    const report = (change: Partial<QueueJobProgress>, force = false) => {
      Object.assign(progress, change);
      const key = `${progress.phase}:${progress.level}`;
      const now = Date.now();
      if (!force && key === lastKey && now - last < progressMs) return;
      last = now;
      lastKey = key;
      const snapshot = { ...progress };
      pending = pending.then(() => job.updateProgress(snapshot)).catch(() => {});
    };
    report({}, true);
    // A cancel request (GenerationQueue.cancel) is a key this polls about once a second.
    const poll = setInterval(() => {
      connection.exists(cancelKey(name, id)).then((n) => n && ctl.abort(CANCELLED), () => {});
    }, 1000);
    const { jb, release } = await models.acquire(d.model);
    try {
      ctl.signal.throwIfAborted();
      const vq = jb.vqvae;
      const inputs = await jobInputs(d, jb);
      const order = [...(d.settings.levels ?? jb.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0))].sort((a, b) => b - a);
      // Each level's share of the job: its tokens (the top level has the fewest).
      const weights = order.map((l) => 1 / vq.hopLengths[l]);
      const totalWeight = weights.reduce((a, b) => a + b, 0);
      let f0: { f: number; t: number } | undefined;

      let resume = attempt > 1 && existsSync(join(dir, 'run.json'));
      if (resume) {
        const saved = savedWindows(jb, d, dir);
        progress.resumedWindows = saved.count;
        log(`resuming: ${saved.count} window(s) saved by an earlier attempt (${saved.detail}), not sampled again`);
        emit({ type: 'job-resumed', id, savedWindows: saved.count, detail: saved.detail });
      }
      let sampled = 0;
      const options: GenerateOptions = {
        ...d.settings,
        ...inputs,
        samples: 1,
        sampleOffset: d.sample,
        outputDir: dir,
        signal: ctl.signal,
        onProgress: (p) => {
          if (p.phase === 'decode') return report({ phase: 'decode', level: p.level, window: 0, windows: 1, token: 0, tokens: 1, fraction: 0.98, etaSeconds: null });
          const i = order.indexOf(p.level);
          const inLevel = (p.window + p.token / Math.max(1, p.tokens)) / Math.max(1, p.windows);
          const fraction = (0.97 * (weights.slice(0, i).reduce((a, b) => a + b, 0) + weights[i] * inLevel)) / totalWeight;
          const now = Date.now();
          if (!f0) f0 = { f: fraction, t: now };
          const pace = (fraction - f0.f) / Math.max(1, now - f0.t);
          report({
            phase: 'sample', level: p.level, window: p.window, windows: p.windows, token: p.token, tokens: p.tokens, fraction,
            etaSeconds: fraction - f0.f > 0.01 && pace > 0 ? Math.round((1 - fraction) / pace / 1000) : null,
          });
        },
        onWindow: (w) => {
          sampled++;
          log(`sampled level ${w.level} window ${w.window + 1}/${w.windows}`);
        },
      };
      let result;
      try {
        result = await jb.generate({ ...options, resume });
      } catch (e) {
        // The folder holds another run's files (not this job's): start afresh.
        if (!(resume && e instanceof JukeboxError && e.message.startsWith('cannot resume '))) throw e;
        log(`the folder holds another run (${e.message}); starting afresh`);
        resume = false;
        result = await jb.generate({ ...options, resume });
      }
      report({ phase: 'write', fraction: 0.99, etaSeconds: null }, true);
      const files = await writeRunAudio(dir, result, d.format);
      if (d.parent) {
        // The explorer's jobs: levels that came from the parent's codes are decoded too, and run.json names the parent.
        const lowest = result.levels[result.levels.length - 1];
        for (let l = 0; l < vq.levels; l++) {
          const c = result.codes[l];
          if (!c || result.levelAudio[l] || c[0].length * vq.hopLengths[l] !== result.sampleLength) continue;
          const audio = await vq.decode(c, l, { signal: ctl.signal });
          const path = join(dir, sampleWavName(l, 0, lowest));
          await writeAudio(path, audio[0], vq.sampleRate, d.format);
          files.push(path);
        }
        const runJson = join(dir, 'run.json');
        const state = JSON.parse(readFileSync(runJson, 'utf8')) as RunState;
        state.parent = d.parent;
        writeFileSync(runJson, JSON.stringify(state, null, 2) + '\n');
      }
      const out: GenerationJobResult = {
        outputDir: dir, files, seed: result.seed, sample: d.sample, levels: result.levels, seconds: result.sampleLength / result.sampleRate,
        worker, attempt, sampledWindows: sampled, resumedWindows: progress.resumedWindows, elapsedSeconds: (Date.now() - t0) / 1000,
      };
      log(`done in ${out.elapsedSeconds.toFixed(1)} s: sampled ${sampled} window(s)${resume ? `, resumed ${progress.resumedWindows}` : ''}`);
      report({ phase: 'write', fraction: 1, etaSeconds: 0 }, true);
      await pending;
      summary.completed++;
      emit({ type: 'job-done', id, result: out });
      return out;
    } finally {
      clearInterval(poll);
      release();
      await pending;
    }
  }

  const bull = new Worker(name, processor, {
    connection,
    concurrency,
    autorun: false,
    name: worker,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    maxStalledCount: o.maxStalls ?? 2,
  });
  let lastError = 0;
  bull.on('error', (e) => {
    // (Redis going away shows here once per reconnect attempt: say it at most every 10 s.)
    if (Date.now() - lastError < 10_000) return;
    lastError = Date.now();
    emit({ type: 'warning', message: `queue: ${e.message}` });
  });
  bull.on('lockRenewalFailed', (ids) => {
    for (const id of ids) running.get(id)?.abort(LOCK_LOST);
  });

  const stop = (how: 'handback' | 'finish'): Promise<void> => {
    if (how === 'handback') {
      stopping = 'handback';
      for (const c of running.values()) c.abort(HANDBACK);
    } else stopping ??= 'finish';
    closing ??= bull.close();
    return closing;
  };
  const onStop = () => void stop('handback');
  const onDrain = () => void stop('finish');
  o.signal?.addEventListener('abort', onStop, { once: true });
  o.drainSignal?.addEventListener('abort', onDrain, { once: true });
  try {
    await bull.waitUntilReady();
    emit({
      type: 'ready', worker, queue: name, redis: redactRedisUrl(o.redis), redisVersion: info.version,
      model: o.model ?? 'the default model (models/default)', backend: own.backend.reason, concurrency,
    });
    const runLoop = bull.run();
    await runLoop.catch((e) => {
      throw new JukeboxError('ERR_IO', `the worker stopped: ${(e as Error).message}`, { cause: e });
    });
    await closing;
    return summary;
  } finally {
    o.signal?.removeEventListener('abort', onStop);
    o.drainSignal?.removeEventListener('abort', onDrain);
    if (!closing) await bull.close().catch(() => {});
    await models.dispose();
    connection.disconnect();
  }
}
