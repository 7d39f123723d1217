/**
 * What a generation job on the queue holds (one sample of a run: its index, the run's seed
 * and settings, where to write), what its progress and result look like, and which errors a
 * retry could fix. Shared by the submitting side (client.ts) and the workers (worker.ts).
 */
import { hostname } from 'node:os';
import { JukeboxError, type JukeboxErrorCode } from '../errors.js';
import type { RunState } from '../generate/run-files.js';

export const JOB_NAME = 'generate';
export const JOB_DATA_VERSION = 1;
/** Inline prompt audio or codes in one job above this are refused: put them in a file on shared storage. */
export const MAX_INLINE_BYTES = 32 * 2 ** 20;

/** generate()'s settings that travel with a job (every sample of a run has the same). */
export interface GenerationJobSettings {
  artist?: string | number;
  genre?: string | number | (string | number)[];
  lyrics?: string;
  seconds: number;
  totalSeconds?: number;
  temperature?: number | number[];
  topK?: number;
  topP?: number;
  seed: number;
  levels?: number[];
  hopFractions?: number[];
  allowUnknownLabels?: boolean;
}

/** The model a job asks for; without one, each worker's own (--model, else the default model). */
export type JobModel = { dir: string } | { vqvae: string; priors: (string | null)[] };

export interface GenerationJobData {
  version: typeof JOB_DATA_VERSION;
  /** Id shared by the jobs of one submission (one per sample). */
  run: string;
  /** The sample's index in the run (generate()'s sampleOffset): its random streams. */
  sample: number;
  samples: number;
  /** Absolute path of the job's own output folder, on storage every worker sees. */
  outputDir: string;
  settings: GenerationJobSettings;
  /** A file every worker can read (decoded at the model's rate), or mono samples at the model's rate (base64 float32). */
  prompt?: { path: string; seconds?: number } | { samples: string };
  /** An .npz of level_L arrays (this job takes its sample's row, or row 0 of a single one), or this sample's codes per level (base64 int32). */
  codes?: { path: string } | { levels: (string | null)[] };
  format: 's16' | 'f32';
  model?: JobModel;
  /** Written to run.json (jobs the sample explorer starts). */
  parent?: RunState['parent'];
  submitted: { at: number; by: string };
}

/** job.progress of a running job (at most a few updates a second). */
export interface QueueJobProgress {
  phase: 'load' | 'sample' | 'decode' | 'write';
  level: number;
  window: number;
  windows: number;
  token: number;
  tokens: number;
  /** 0..1 over the whole job (levels weighted by their tokens). */
  fraction: number;
  /** Seconds left for the whole job, estimated from this attempt's pace; null while unknown. */
  etaSeconds: number | null;
  /** The worker running it ("host:pid" unless named) and that process. */
  worker: string;
  pid: number;
  attempt: number;
  /** Windows already saved by an earlier attempt (not sampled again). */
  resumedWindows: number;
}

/** job.returnvalue of a finished job. */
export interface GenerationJobResult {
  outputDir: string;
  /** The WAV files written (every sampled level). */
  files: string[];
  seed: number;
  sample: number;
  levels: number[];
  seconds: number;
  worker: string;
  attempt: number;
  /** Windows sampled by the attempt that finished, and windows it found saved by earlier ones. */
  sampledWindows: number;
  resumedWindows: number;
  /** Seconds the finishing attempt took. */
  elapsedSeconds: number;
}

export function defaultWorkerName(): string {
  return `${hostname()}:${process.pid}`;
}

export function encodeF32(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}
export function encodeI32(a: Int32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}
function decodeBytes(s: string, size: number, what: string): Buffer {
  const b = Buffer.from(s, 'base64');
  if (b.length % size !== 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', `the job's ${what} is not a whole number of values`);
  return b;
}
export function decodeF32(s: string, what: string): Float32Array {
  const b = decodeBytes(s, 4, what);
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}
export function decodeI32(s: string, what: string): Int32Array {
  const b = decodeBytes(s, 4, what);
  const out = new Int32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/** Checks a job's data as a worker receives it (it may come from another version or a hand-made job). */
export function parseJobData(d: unknown): GenerationJobData {
  const bad = (m: string): never => {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `not a jukebox generation job: ${m}`);
  };
  if (!d || typeof d !== 'object') bad('its data is not an object');
  const j = d as Partial<GenerationJobData>;
  if (j.version !== JOB_DATA_VERSION) bad(`data version ${JSON.stringify(j.version)} (this worker reads version ${JOB_DATA_VERSION}: update the workers or the submitter)`);
  if (typeof j.outputDir !== 'string' || j.outputDir === '') bad('no outputDir');
  if (!Number.isInteger(j.sample) || j.sample! < 0) bad('sample must be a non-negative integer');
  if (!j.settings || typeof j.settings !== 'object') bad('no settings');
  const s = j.settings!;
  if (typeof s.seconds !== 'number' || !(s.seconds > 0)) bad('settings.seconds must be > 0');
  if (!Number.isInteger(s.seed) || s.seed < 0) bad('settings.seed must be a non-negative integer');
  if (j.format !== 's16' && j.format !== 'f32') bad('format must be s16 or f32');
  return j as GenerationJobData;
}

/** Errors a retry can fix: a full or flaky disk, a dropped connection, memory. Anything else (bad labels, a missing model, bad codes) fails once. */
const RETRYABLE_CODES = new Set<string>(['ERR_OUT_OF_MEMORY', 'ERR_NATIVE']);
const RETRYABLE_ERRNO = new Set(['EIO', 'ESTALE', 'EAGAIN', 'EBUSY', 'ETIMEDOUT', 'ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'EINTR', 'EHOSTUNREACH', 'ENETUNREACH']);

function errnoOf(e: unknown): string | undefined {
  for (let x: unknown = e, depth = 0; x && typeof x === 'object' && depth < 5; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

export function isRetryable(e: unknown): boolean {
  if (e instanceof JukeboxError) {
    if (RETRYABLE_CODES.has(e.code)) return true;
    return e.code === 'ERR_IO' && RETRYABLE_ERRNO.has(errnoOf(e) ?? '');
  }
  const errno = errnoOf(e);
  if (errno) return RETRYABLE_ERRNO.has(errno);
  return /Connection is closed|Stream isn't writeable/i.test((e as Error)?.message ?? '');
}

/** A job's failedReason: the message, then the code in brackets (as the CLI prints errors). */
export function failureReason(e: unknown): string {
  if (e instanceof JukeboxError) return `${e.message} [${e.code}]`;
  return `${(e as Error)?.message ?? String(e)} [${errnoOf(e) ? 'ERR_IO' : 'ERR_NATIVE'}]`;
}

export function parseFailureReason(reason: string | undefined): { message: string; code: JukeboxErrorCode } {
  const m = /^(.*) \[(ERR_[A-Z_]+)\]$/s.exec(reason ?? '');
  return m ? { message: m[1], code: m[2] as JukeboxErrorCode } : { message: reason || 'failed (no reason given)', code: 'ERR_IO' };
}
