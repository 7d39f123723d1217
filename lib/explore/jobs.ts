/**
 * Jobs the explorer page starts: "continue" a sample from a chosen time (its codes up to
 * that time kept at every level, the rest sampled), or "upsample" a sample that has only
 * upper-level codes. One job runs at a time (they use every core); the others queue. A job
 * writes a new output folder inside the sample's root (explore-jobs/<action>-<time>), which
 * the next catalogue scan lists with a link to its parent. A cancelled or failed job's
 * folder is removed. Jobs live in the server, not in a page: a closed tab or a dropped
 * connection does not stop one.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { JukeboxError } from '../errors.js';
import { loadJukebox, type GenerateOptions, type GenerateProgress, type Jukebox, type LoadJukeboxOptions } from '../generate/generate.js';
import { codesPath, readSavedCodes, sampleWavName, writeRunAudio, type RunState } from '../generate/run-files.js';
import { writeAudio } from '../audio/decode.js';
import { defaultModelDir, defaultModelSet, readModelSet } from '../model-set.js';
import { openModelFile } from '../model-file.js';
import { vqvaeHparamsOf } from '../vqvae/vqvae.js';
import { hopLengths } from '../vqvae/hparams.js';
import type { GenerationQueue, QueueJobStatus } from '../queue/client.js';
import { AudioDecoder, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './audio-decoder.js';
import type { ExploreRoot, RunFolder } from './catalog.js';
import type { JobInfo, JobRequest, PrimeInfo } from './catalog-types.js';

/** What the job manager needs from the server. */
export interface JobHost {
  roots: ExploreRoot[];
  /** The run and sample index behind a catalogue id (from the latest scan). */
  findSample(id: string): { run: RunFolder; index: number } | undefined;
  /** Rescans the folders; returns the catalogue ids of the samples of the run at `dir`. */
  rescan(dir: string): string[];
  /** The newest run in the folders (its model is the one prime jobs use). */
  latestRun(): RunFolder | undefined;
  /** A model folder that overrides the one recorded in run.json (`jukebox explore --model`). */
  model?: string;
  /** Bounds on decoding uploaded audio (lib/explore/audio-decoder.ts); defaults otherwise. */
  decodeLimits?: Partial<DecodeLimits>;
  /**
   * Run the jobs on this Redis job queue (`jukebox explore --redis`) instead of in the
   * server: `jukebox worker`s that see these folders run them, and the queue's other jobs
   * (from `jukebox submit`) are listed too.
   */
  queue?: GenerationQueue;
}

/** What planning a job needs to know of its model (from the loaded model, or the files' headers when a queue runs it). */
interface ModelShape {
  levels: number;
  sampleRate: number;
  hopLengths: number[];
  /** Levels the model has a prior for. */
  priorLevels: number[];
}

/** A job's generate() settings (without samples, seed, outputDir, signal, onProgress). */
type JobOptions = Omit<GenerateOptions, 'samples' | 'seed' | 'outputDir' | 'signal' | 'onProgress'>;

type Listener = (job: JobInfo) => void;

interface Job {
  info: JobInfo;
  controller: AbortController;
  listeners: Set<Listener>;
  lastSent: number;
  /** Whether a running update with progress (0 < fraction < 1) has gone out yet. */
  progressSent?: boolean;
  /** Queue mode: the job on the queue, and the folder it writes (removed if it fails or is cancelled). */
  queueId?: string;
  outDir?: string;
  root?: string;
  /** A job on the queue this server did not start (jukebox submit, another explorer). */
  foreign?: boolean;
}

/** How often the queue is read while it has jobs to follow, and how long after the page last asked. */
const QUEUE_POLL_MS = 1000;
const QUEUE_IDLE_MS = 15_000;

/** Longest result a continue job may ask for, in seconds (a typo should not start hours of work). */
const MAX_SECONDS = 3600;
/** A prime job decodes its file again at the model's rate (resampling); it may take longer than the check at upload. */
const PRIME_JOB_DECODE_MS = 5 * 60_000;
/** Partial uploads older than this, left by a server that stopped mid-upload, are removed at start. */
const STALE_PART_MS = 60 * 60_000;

/**
 * The user's name for an uploaded file, kept only as text to show: its base name with
 * anything but letters, digits, '.', '-' and '_' replaced. The file on disk is named
 * <id>.<ext> whatever this says.
 */
export function displayName(name: string): string {
  return basename(name.replace(/\\/g, '/')).replace(/[^\w.-]+/g, '_').replace(/^\.+/, '').slice(-80) || 'audio';
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  private model: { key: string; jb: Jukebox } | undefined;
  private disposed = false;
  private readonly primes = new Map<string, PrimeInfo & { path: string; root: string }>();
  private readonly decoder: AudioDecoder;
  private poller: ReturnType<typeof setTimeout> | undefined;
  private lastAsked = 0;

  constructor(private readonly host: JobHost) {
    this.decoder = new AudioDecoder({ ...DEFAULT_DECODE_LIMITS, ...host.decodeLimits });
    removeStaleParts(this.primesDir());
  }

  /** Where uploads are kept: the first folder's explore-jobs/primes (no run.json there, so it is not listed). */
  private primesDir(): string {
    return join(this.host.roots[0].path, 'explore-jobs', 'primes');
  }

  /**
   * A new upload's id and the file to stream it into, <id>.part in the uploads folder (the
   * server writes it as the body arrives; addPrime checks it and gives it its name).
   */
  newUpload(): { id: string; partPath: string } {
    const dir = this.primesDir();
    mkdirSync(dir, { recursive: true });
    const id = randomBytes(8).toString('hex');
    return { id, partPath: join(dir, `${id}.part`) };
  }

  list(): JobInfo[] {
    if (this.host.queue) {
      // The page asks every few seconds: keep reading the queue while it does.
      this.lastAsked = Date.now();
      this.startPolling();
    }
    return [...this.jobs.values()].map((j) => j.info);
  }

  get(id: string): JobInfo | undefined {
    return this.jobs.get(id)?.info;
  }

  /**
   * Keeps an uploaded audio file (streamed to `partPath` by newUpload's caller) for prime
   * jobs. It is decoded once here, in a worker with a time and memory limit, so a file that is
   * not audio, or out of bounds, is refused at once with the reason (ERR_AUDIO_FORMAT; the
   * file is removed). A good one is renamed <id>.<ext>, the extension from the container its
   * bytes show (never from `clientName`, which is kept only as sanitised text to show).
   */
  async addPrime(id: string, partPath: string, clientName: string): Promise<PrimeInfo> {
    const name = displayName(clientName);
    try {
      if (statSync(partPath).size === 0) throw new JukeboxError('ERR_AUDIO_FORMAT', 'the uploaded file is empty');
      const audio = await this.decoder.decode({ path: partPath, name });
      const path = join(this.primesDir(), `${id}.${audio.container ?? 'bin'}`);
      renameSync(partPath, path);
      const info = { id, name, duration: audio.durationSeconds };
      this.primes.set(id, { ...info, path, root: this.host.roots[0].path });
      return info;
    } catch (e) {
      rmSync(partPath, { force: true });
      throw e;
    }
  }

  /** Checks the request and queues it; throws ERR_INVALID_ARGUMENT with what is wrong. */
  submit(req: JobRequest): JobInfo {
    const bad = (m: string): never => {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', m);
    };
    if (!req || typeof req !== 'object') bad('the request must be a JSON object');
    if (req.action !== 'continue' && req.action !== 'upsample' && req.action !== 'prime') bad('action must be "continue", "upsample" or "prime"');
    const num = (v: unknown, what: string) => {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) bad(`${what} must be a number`);
    };
    num(req.fromSeconds, 'fromSeconds');
    num(req.seconds, 'seconds');
    num(req.temperature, 'temperature');
    if (req.temperature !== undefined && !(req.temperature > 0)) bad('temperature must be > 0');
    if (req.seed !== undefined && (!Number.isInteger(req.seed) || req.seed < 0)) bad('seed must be a non-negative integer');
    for (const k of ['artist', 'genre', 'lyrics', 'prime', 'sampleId'] as const) {
      if (req[k] !== undefined && typeof req[k] !== 'string') bad(`${k} must be a string`);
    }
    if (req.action === 'continue' || req.action === 'prime') {
      if (!(req.fromSeconds > 0)) bad(`${req.action}: fromSeconds must be > 0`);
      if (req.seconds === undefined || !(req.seconds > req.fromSeconds)) bad(`${req.action}: seconds (the length of the result) must be more than fromSeconds`);
      if (req.seconds! > MAX_SECONDS) bad(`${req.action}: at most ${MAX_SECONDS} seconds`);
    }
    if (req.action === 'prime') {
      const prime = this.primes.get(req.prime ?? '');
      if (!prime) bad('prime: upload the audio first (POST api/primes); this id is unknown');
      if (req.fromSeconds > prime!.duration + 1e-6) bad(`prime: the audio is only ${prime!.duration.toFixed(2)} s long`);
    } else {
      const found = this.host.findSample(req.sampleId ?? '');
      if (!found) bad(`no sample ${JSON.stringify(req.sampleId)} (reload the page)`);
      if (req.action === 'upsample' && found!.run.state.levels.every((l) => l === 0)) bad('upsample: this sample already has its bottom level');
    }
    const id = randomBytes(6).toString('hex');
    const job: Job = {
      info: { id, request: { ...req }, state: 'queued', fraction: 0, message: 'waiting for the job before it', etaSeconds: null, sampleIds: [] },
      controller: new AbortController(),
      listeners: new Set(),
      lastSent: 0,
    };
    this.jobs.set(id, job);
    if (this.host.queue) {
      job.info.message = 'sending to the queue';
      void this.enqueue(job, this.host.queue);
      return job.info;
    }
    this.queue.push(job);
    void this.pump();
    return job.info;
  }

  cancel(id: string): JobInfo | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (this.host.queue && (job.info.state === 'queued' || job.info.state === 'running')) {
      job.info.message = 'cancelling...';
      if (job.queueId) {
        const queueId = job.queueId;
        void this.host.queue.cancel(queueId).then(
          (r) => (r === 'removed' ? this.finishQueued(job, { state: 'cancelled', message: 'cancelled before it started' }) : this.poll()),
          (e: Error) => this.update(job, { message: `could not cancel: ${e.message}` }, true),
        );
      } else job.controller.abort(); // not on the queue yet
      this.update(job, {}, true);
      return job.info;
    }
    if (job.info.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.update(job, { state: 'cancelled', message: 'cancelled before it started' }, true);
    } else if (job.info.state === 'running') {
      job.info.message = 'cancelling...';
      job.controller.abort();
    }
    return job.info;
  }

  /** Calls fn with the job now and on every change; returns the unsubscribe function. */
  subscribe(id: string, fn: Listener): (() => void) | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    job.listeners.add(fn);
    fn(job.info);
    return () => job.listeners.delete(fn);
  }

  /** Stops every job and frees the model. */
  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.poller) clearTimeout(this.poller);
    this.poller = undefined;
    for (const j of this.queue.splice(0)) this.update(j, { state: 'cancelled', message: 'the server stopped' }, true);
    this.running?.controller.abort();
    await this.decoder.dispose();
    while (this.running) await new Promise((r) => setTimeout(r, 20));
    this.model?.jb.dispose();
    this.model = undefined;
  }

  private update(job: Job, change: Partial<JobInfo>, force = false): void {
    Object.assign(job.info, change);
    const now = Date.now();
    // Progress arrives per token; the page needs a few updates a second, not thousands. The
    // first real progress always goes out, so even a job done within the 100 ms shows some.
    const firstProgress = !job.progressSent && job.info.state === 'running' && job.info.fraction > 0 && job.info.fraction < 1;
    if (!force && !firstProgress && now - job.lastSent < 100) return;
    if (firstProgress) job.progressSent = true;
    job.lastSent = now;
    for (const fn of job.listeners) fn(job.info);
  }

  private async pump(): Promise<void> {
    if (this.running || this.disposed) return;
    const job = this.queue.shift();
    if (!job) return;
    this.running = job;
    this.update(job, { state: 'running', message: 'loading the model' }, true);
    let outDir: string | undefined;
    try {
      let root = '';
      outDir = await this.run(job, (d, r) => ((outDir = d), (root = r)));
      const ids = this.host.rescan(outDir);
      this.update(job, { state: 'done', fraction: 1, etaSeconds: 0, message: `done: ${relative(root, outDir)}`, sampleIds: ids }, true);
    } catch (e) {
      if (outDir) rmSync(outDir, { recursive: true, force: true });
      const aborted = e instanceof JukeboxError && e.code === 'ERR_ABORTED';
      this.update(job, aborted ? { state: 'cancelled', message: 'cancelled (its partial output was removed)' } : { state: 'failed', message: (e as Error).message }, true);
    } finally {
      this.running = undefined;
      void this.pump();
    }
  }

  private async run(job: Job, setOutDir: (dir: string, root: string) => void): Promise<string> {
    return job.info.request.action === 'prime' ? this.runPrime(job, setOutDir) : this.runFromSample(job, setOutDir);
  }

  /** continue / upsample: the sample's codes, labels and settings, more levels or more time. */
  private async runFromSample(job: Job, setOutDir: (dir: string, root: string) => void): Promise<string> {
    const req = job.info.request;
    const found = this.host.findSample(req.sampleId ?? '');
    if (!found) throw new JukeboxError('ERR_INVALID_ARGUMENT', `sample ${req.sampleId} is gone`);
    const jb = await this.loadModel(found.run.state);
    const vq = jb.vqvae;
    const shape: ModelShape = { levels: vq.levels, sampleRate: vq.sampleRate, hopLengths: vq.hopLengths, priorLevels: jb.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0) };
    const plan = this.planFromSample(job, found, shape);
    const outDir = await this.execute(job, jb, plan.root, setOutDir, plan.options);
    const runJson = join(outDir, 'run.json');
    const state = JSON.parse(readFileSync(runJson, 'utf8')) as RunState;
    state.parent = plan.parent(outDir);
    writeFileSync(runJson, JSON.stringify(state, null, 2) + '\n');
    return outDir;
  }

  /** What a continue / upsample job generates, and the parent its run.json names. */
  private planFromSample(
    job: Job,
    found: { run: RunFolder; index: number },
    shape: ModelShape,
  ): { root: string; options: JobOptions; parent: (outDir: string) => NonNullable<RunState['parent']> } {
    const req = job.info.request;
    const { run, index } = found;
    const s = run.state;
    const L = shape.levels;
    const sr = shape.sampleRate;
    const topHop = shape.hopLengths[L - 1];
    const parentCodes = readRunCodes(run.abs, index, L);
    const parentLowest = Math.min(...s.levels);
    const withPriors = shape.priorLevels;

    let seconds: number;
    let codes: (Int32Array[] | undefined)[];
    let levels: number[];
    if (req.action === 'continue') {
      if (!parentCodes[L - 1]) throw new JukeboxError('ERR_CODES', `${run.abs} has no top-level codes to continue from`);
      const keepTop = Math.floor((req.fromSeconds * sr) / topHop);
      if (keepTop < 1) throw new JukeboxError('ERR_INVALID_ARGUMENT', `continue: ${req.fromSeconds} s is shorter than one top-level code (${(topHop / sr).toFixed(3)} s)`);
      if (keepTop > parentCodes[L - 1]!.length) throw new JukeboxError('ERR_INVALID_ARGUMENT', `continue: the sample is only ${((parentCodes[L - 1]!.length * topHop) / sr).toFixed(2)} s long`);
      // Every level keeps the same stretch of audio: whole top-level codes.
      codes = parentCodes.map((c, l) => {
        const keep = (keepTop * topHop) / shape.hopLengths[l];
        return c && c.length >= keep ? [c.slice(0, keep)] : undefined;
      });
      seconds = req.seconds!;
      levels = withPriors;
    } else {
      codes = parentCodes.map((c, l) => (c && l >= parentLowest ? [c] : undefined));
      seconds = (parentCodes[parentLowest]!.length * shape.hopLengths[parentLowest]) / sr;
      levels = withPriors.filter((l) => l < parentLowest);
      if (levels.length === 0) throw new JukeboxError('ERR_MODEL_KIND', `the model has no upsampler below level ${parentLowest}`);
    }
    return {
      root: this.host.roots[run.rootIndex].path,
      options: {
        artist: s.artist ?? undefined,
        genre: s.genre ?? undefined,
        lyrics: s.lyrics ?? undefined,
        seconds,
        totalSeconds: Math.max(s.totalLength / sr, seconds),
        temperature: req.temperature ?? s.temperature,
        topK: s.topK,
        topP: s.topP,
        levels,
        codes,
        hopFractions: s.hopFractions,
      },
      parent: (outDir) => ({ run: relative(outDir, run.abs) || '.', sample: index, action: req.action as 'continue' | 'upsample', fromSeconds: req.action === 'continue' ? req.fromSeconds : 0 }),
    };
  }

  /** prime: a new song that starts with the first seconds of an uploaded file. */
  private async runPrime(job: Job, setOutDir: (dir: string, root: string) => void): Promise<string> {
    const req = job.info.request;
    const prime = this.primes.get(req.prime ?? '');
    if (!prime) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'the uploaded audio is gone (upload it again)');
    // The model: --model, else the one the newest run in the folders used, else the default.
    const jb = await this.loadModel(this.host.latestRun()?.state);
    // In a worker as at upload (a long file takes a while to resample); cancelling stops it.
    const audio = await this.decoder.decode(
      { path: prime.path, name: prime.name, sampleRate: jb.sampleRate, keepSeconds: req.fromSeconds },
      { signal: job.controller.signal, timeoutMs: PRIME_JOB_DECODE_MS },
    );
    const prompt = audio.samples!;
    return this.execute(job, jb, prime.root, setOutDir, {
      artist: req.artist || undefined,
      genre: req.genre || undefined,
      lyrics: req.lyrics || undefined,
      seconds: req.seconds!,
      temperature: req.temperature,
      prompt,
    });
  }

  /** Runs generate() into a new folder in the root, with progress; writes every level's audio. */
  private async execute(
    job: Job,
    jb: Jukebox,
    root: string,
    setOutDir: (dir: string, root: string) => void,
    o: Omit<GenerateOptions, 'samples' | 'seed' | 'outputDir' | 'signal' | 'onProgress'>,
  ): Promise<string> {
    const req = job.info.request;
    const vq = jb.vqvae;
    const outDir = jobFolder(root, job);
    mkdirSync(outDir, { recursive: true });
    setOutDir(outDir, root);
    const order = [...(o.levels ?? jb.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0))].sort((a, b) => b - a);
    const onProgress = (p: GenerateProgress) => {
      if (p.phase === 'decode') {
        this.update(job, { fraction: 0.97, message: `decoding level ${p.level}`, etaSeconds: null });
        return;
      }
      const inLevel = (p.window + p.token / Math.max(1, p.tokens)) / Math.max(1, p.windows);
      const fraction = (0.97 * (order.indexOf(p.level) + inLevel)) / order.length;
      this.update(job, {
        fraction,
        message: `level ${p.level}: window ${Math.min(p.window + 1, p.windows)}/${p.windows}, token ${p.token}/${p.tokens}`,
        etaSeconds: Number.isFinite(p.etaSeconds) ? Math.round(p.etaSeconds) : null,
      });
    };
    const result = await jb.generate({ ...o, samples: 1, seed: req.seed, outputDir: outDir, signal: job.controller.signal, onProgress });
    await writeRunAudio(outDir, result, 's16');
    // Levels that came from elsewhere (the parent's codes) are decoded too, so every level can be heard.
    const lowest = result.levels[result.levels.length - 1];
    for (let l = 0; l < vq.levels; l++) {
      const c = result.codes[l];
      // (not a level that holds only a prompt's codes: its audio would stop where the prompt does)
      if (!c || result.levelAudio[l] || c[0].length * vq.hopLengths[l] !== result.sampleLength) continue;
      const audio = await vq.decode(c, l, { signal: job.controller.signal });
      await writeAudio(join(outDir, sampleWavName(l, 0, lowest)), audio[0], vq.sampleRate, 's16');
    }
    return outDir;
  }

  /** The model of a run: --model, else the one its run.json names, else the default model. */
  private async loadModel(s: RunState | undefined): Promise<Jukebox> {
    const opts = this.modelOptions(s);
    const key = JSON.stringify(opts);
    if (this.model?.key === key) return this.model.jb;
    this.model?.jb.dispose();
    this.model = undefined;
    const jb = await loadJukebox({ ...opts, backend: 'cpu' });
    this.model = { key, jb };
    return jb;
  }

  /** The model of a run: --model, else the one its run.json names, else the default model (checked to be here). */
  private modelOptions(s: RunState | undefined): LoadJukeboxOptions {
    let opts: LoadJukeboxOptions;
    if (this.host.model) opts = { model: this.host.model };
    else if (!s) opts = {};
    else if (s.model?.dir) opts = { model: s.model.dir };
    else if (s.model) opts = { vqvae: s.model.vqvae, priors: s.model.priors.map((p) => p ?? undefined) };
    else opts = {};
    for (const f of [opts.model, opts.vqvae, ...(opts.priors ?? [])]) {
      if (f && !existsSync(f)) {
        throw new JukeboxError('ERR_IO', `the run's model file ${f} is gone: start the explorer with --model DIR to name the model to use`);
      }
    }
    return opts;
  }

  // ---- Queue mode (jukebox explore --redis): jobs run on `jukebox worker`s ----

  /** Plans the job as the server would run it, and puts it on the queue for a worker. */
  private async enqueue(job: Job, queue: GenerationQueue): Promise<void> {
    const req = job.info.request;
    try {
      let root: string;
      let options: Omit<JobOptions, 'prompt'> & { prompt?: string; promptSeconds?: number };
      let parent: ((outDir: string) => NonNullable<RunState['parent']>) | undefined;
      let state: RunState | undefined;
      if (req.action === 'prime') {
        const prime = this.primes.get(req.prime ?? '');
        if (!prime) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'the uploaded audio is gone (upload it again)');
        state = this.host.latestRun()?.state;
        root = prime.root;
        // The worker decodes the upload at its model's rate (the file is in the explored folder, which the workers see).
        options = { artist: req.artist || undefined, genre: req.genre || undefined, lyrics: req.lyrics || undefined, seconds: req.seconds!, temperature: req.temperature, prompt: prime.path, promptSeconds: req.fromSeconds };
      } else {
        const found = this.host.findSample(req.sampleId ?? '');
        if (!found) throw new JukeboxError('ERR_INVALID_ARGUMENT', `sample ${req.sampleId} is gone`);
        state = found.run.state;
        const plan = this.planFromSample(job, found, modelShape(this.modelOptions(state)));
        root = plan.root;
        parent = plan.parent;
        options = { ...plan.options, prompt: undefined };
      }
      const outDir = jobFolder(root, job);
      job.outDir = outDir;
      job.root = root;
      if (job.controller.signal.aborted) throw new JukeboxError('ERR_ABORTED', 'cancelled');
      const r = await queue.enqueue({ ...options, samples: 1, seed: req.seed, outputDir: outDir, model: this.queueModel(state), parent: parent?.(outDir), format: 's16' });
      job.queueId = r.jobs[0].id;
      this.update(job, { message: 'waiting for a worker', queue: { id: job.queueId, worker: null, starts: 0, outputDir: outDir } }, true);
      if (job.controller.signal.aborted) this.cancel(job.info.id);
      this.startPolling();
    } catch (e) {
      const aborted = e instanceof JukeboxError && e.code === 'ERR_ABORTED';
      this.update(job, aborted ? { state: 'cancelled', message: 'cancelled before it started' } : { state: 'failed', message: (e as Error).message }, true);
    }
  }

  /** The model a worker should load: the one this server would use, or none (the worker's own) for this package's default model. */
  private queueModel(s: RunState | undefined): { vqvae: string; priors: (string | undefined)[] } | string | undefined {
    const o = this.modelOptions(s);
    if (o.model) return resolve(o.model) === defaultModelDir() ? undefined : resolve(o.model);
    if (o.vqvae) return { vqvae: o.vqvae, priors: o.priors ?? [] };
    return undefined;
  }

  private startPolling(): void {
    if (this.poller || this.disposed || !this.host.queue) return;
    this.poller = setTimeout(() => void this.poll(), QUEUE_POLL_MS);
  }

  /** Reads the queue: this server's jobs, and the others waiting or running (or just finished). */
  private async poll(): Promise<void> {
    if (this.poller) clearTimeout(this.poller);
    this.poller = undefined;
    const queue = this.host.queue;
    if (!queue || this.disposed) return;
    try {
      const own = [...this.jobs.values()].filter((j) => j.queueId && !j.foreign && !isFinal(j.info.state));
      for (const s of await queue.status(own.map((j) => j.queueId!))) this.fromQueue(own.find((j) => j.queueId === s.id)!, s);
      if (Date.now() - this.lastAsked < QUEUE_IDLE_MS) {
        const byQueueId = new Map([...this.jobs.values()].filter((j) => j.queueId).map((j) => [j.queueId!, j]));
        const listed = await queue.list(30);
        for (const s of listed) {
          let job = byQueueId.get(s.id);
          if (!job) {
            // Another submitter's job: shown while it waits or runs (and once it ends, if seen running).
            if (isFinal(toInfoState(s))) continue;
            const id = createHash('sha256').update(`${queue.name}/${s.id}`).digest('hex').slice(0, 12);
            job = {
              info: { id, request: { action: 'generate', fromSeconds: 0, seconds: s.data?.settings.seconds, seed: s.data?.settings.seed }, state: 'queued', fraction: 0, message: '', etaSeconds: null, sampleIds: [] },
              controller: new AbortController(),
              listeners: new Set(),
              lastSent: 0,
              queueId: s.id,
              outDir: s.outputDir,
              foreign: true,
            };
            this.jobs.set(id, job);
          }
          if (job.foreign && !isFinal(job.info.state)) this.fromQueue(job, s);
        }
        // Others' jobs that left the list finished: read them once more.
        const gone = [...this.jobs.values()].filter((j) => j.foreign && !isFinal(j.info.state) && !listed.some((s) => s.id === j.queueId));
        for (const s of await queue.status(gone.map((j) => j.queueId!))) this.fromQueue(gone.find((j) => j.queueId === s.id)!, s);
      }
    } catch {
      /* Redis unreachable for a moment: try again at the next tick */
    }
    const open = [...this.jobs.values()].some((j) => j.queueId && !isFinal(j.info.state));
    if (open || Date.now() - this.lastAsked < QUEUE_IDLE_MS) this.startPolling();
  }

  /** A job's state on the queue, as the page shows jobs. */
  private fromQueue(job: Job, s: QueueJobStatus): void {
    const p = s.progress;
    const queueInfo = { id: s.id, worker: p?.worker ?? s.result?.worker ?? null, starts: s.starts, outputDir: s.outputDir };
    const title = job.foreign ? { sample: s.sample, samples: s.samples } : {};
    if (s.state === 'queued') {
      this.update(job, { state: 'queued', message: s.starts > 0 ? 'back on the queue (its worker stopped); the next one resumes it' : 'waiting for a worker', queue: { ...queueInfo, ...title } }, true);
    } else if (s.state === 'running') {
      const where = !p ? 'starting' : p.phase === 'sample' ? `level ${p.level}: window ${Math.min(p.window + 1, p.windows)}/${p.windows}, token ${p.token}/${p.tokens}` : p.phase === 'decode' ? `decoding level ${p.level}` : p.phase === 'load' ? 'loading the model' : 'writing';
      this.update(job, { state: 'running', fraction: p?.fraction ?? 0, message: `${where} on ${p?.worker ?? 'a worker'}`, etaSeconds: p?.etaSeconds ?? null, queue: { ...queueInfo, ...title } });
    } else if (s.state === 'done') {
      let ids: string[] = [];
      let where = s.outputDir;
      const root = this.host.roots.find((r) => s.outputDir === r.path || s.outputDir.startsWith(r.path + '/'));
      if (root) {
        ids = this.host.rescan(s.outputDir);
        where = relative(root.path, s.outputDir) || '.';
      }
      this.finishQueued(job, { state: 'done', fraction: 1, etaSeconds: 0, message: `done: ${where}`, sampleIds: ids, queue: { ...queueInfo, ...title } });
    } else {
      const cancelled = s.error?.code === 'ERR_ABORTED';
      this.finishQueued(job, cancelled ? { state: 'cancelled', message: 'cancelled (its partial output was removed)' } : { state: 'failed', message: s.error?.message ?? 'failed' });
    }
  }

  private finishQueued(job: Job, change: Partial<JobInfo>): void {
    // As a job run here: the folder of a failed or cancelled job is removed (not another submitter's).
    if (change.state !== 'done' && job.outDir && !job.foreign) rmSync(job.outDir, { recursive: true, force: true });
    this.update(job, change, true);
  }
}

function isFinal(state: string): boolean {
  return state === 'done' || state === 'failed' || state === 'cancelled';
}

function toInfoState(s: QueueJobStatus): JobInfo['state'] {
  return s.state === 'running' ? 'running' : s.state === 'queued' ? 'queued' : s.state === 'done' ? 'done' : 'failed';
}

/** A new job's output folder: <root>/explore-jobs/<action>-<time>-<id>. */
function jobFolder(root: string, job: Job): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join(root, 'explore-jobs', `${job.info.request.action}-${stamp}-${job.info.id.slice(0, 4)}`);
}

/** A model's levels, rate and hops from its files' headers (nothing loaded): for planning jobs a queue runs. */
function modelShape(o: LoadJukeboxOptions): ModelShape {
  const set = o.model !== undefined ? readModelSet(o.model) : o.vqvae ? { vqvae: o.vqvae, priors: o.priors ?? [] } : defaultModelSet();
  const { hparams } = vqvaeHparamsOf(openModelFile(set.vqvae));
  return { levels: hparams.levels, sampleRate: hparams.sr, hopLengths: hopLengths(hparams), priorLevels: set.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0) };
}

/** One sample's codes at every level that has a codes file. */
function readRunCodes(dir: string, index: number, levels: number): (Int32Array | undefined)[] {
  return readSavedCodes(dir, levels).map((perSample, l) => {
    if (perSample && index >= perSample.length) throw new JukeboxError('ERR_CODES', `${codesPath(dir, l)} does not hold sample ${index}'s codes`);
    return perSample?.[index];
  });
}

/** Removes <id>.part files a stopped server left behind (not ones another server may still be writing). */
function removeStaleParts(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.endsWith('.part')) continue;
    try {
      if (Date.now() - statSync(join(dir, n)).mtimeMs > STALE_PART_MS) rmSync(join(dir, n), { force: true });
    } catch {
      /* gone already */
    }
  }
}
