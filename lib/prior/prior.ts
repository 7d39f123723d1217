/**
 * loadPrior: a top-level prior or upsampler, from a converted .safetensors (which records
 * its VQ-VAE's structure) or an original .pth.tar plus its VQ-VAE. Weights stay in the
 * file's dtype (fp16 stays fp16), read through a memory mapping by the native engine.
 *
 * This is the engine layer generate() builds on: teacher-forced forward (all logits of a
 * window) and the lyric encoder. Conditioning from labels and upper-level codes, the
 * KV-cached sampler and generate() itself are the next steps (see the issues).
 */
import { engineBackend, type Backend, type BackendChoice } from '../backend.js';
import { JukeboxError } from '../errors.js';
import { mergeHparams } from '../hparams/merge.js';
import type { Hparams } from '../hparams/presets.js';
import { META, detectKind, nativeWeight, openModelFile, storedHparams, type ModelFile } from '../model-file.js';
import { native, runAbortable, toJukeboxError, type NativeAbortFlag, type NativeWeight } from '../native.js';
import { vqvaeHparams, type VQVAEHparams } from '../vqvae/hparams.js';
import { checkTensors } from '../vqvae/validate.js';
import { vqvaeHparamsOf } from '../vqvae/vqvae.js';
import { priorKeys, priorPlan } from './layout.js';
import { priorStructure, type PriorStructure } from './structure.js';

export interface LoadPriorOptions {
  /** For .pth.tar files: the VQ-VAE it was built against (.safetensors or .pth.tar). */
  vqvae?: string;
  /** For .pth.tar files: official preset to start from. */
  preset?: string;
  /** For .pth.tar files: JSON config of hyperparameters (original names). */
  config?: string;
  /**
   * 'auto' (default): CUDA when a GPU can run the model path, else the CPU; 'cuda' fails with
   * ERR_BACKEND_UNAVAILABLE saying why when it cannot run; 'cpu' is the CPU engine. Or a choice
   * already made (loadJukebox passes its own).
   */
  backend?: Backend | BackendChoice;
  /** CUDA: samples per window the device model is first made for (default 1; grown when needed). */
  samples?: number;
  /** CUDA: fp16 KV caches (less memory and bandwidth; no longer token-equal to the CPU engine). */
  kvF16?: boolean;
}

/** The int32 inputs a window is conditioned on; the engine computes the conditioning natively. */
export interface WindowConditioning {
  /** n rows of [total_length, offset, sample_length, artist, genre x max_bow_genre_size]. */
  labels: Int32Array;
  /** Upsamplers: n rows of the level above's codes under the window (n_ctx / cond_downsample each). */
  upper?: Int32Array;
  /** Lyric encoder models (5b_lyrics): n rows of n_tokens lyric tokens. Combined models carry them in `tokens`. */
  lyrics?: Int32Array;
}

export type WindowSampleInput = Omit<SampleInput, 'yCond' | 'xCond' | 'encoderKv'> & WindowConditioning;
export type WindowForwardInput = { tokens: Int32Array; n: number; signal?: AbortSignal } & WindowConditioning;

export interface ForwardInput {
  /** n x len tokens (for the combined lyric model: lyric tokens, then music codes + n_vocab). */
  tokens: Int32Array;
  n: number;
  /** n x width start embeddings (artist + genres). */
  yCond: Float32Array;
  /** n x len x width (or n x 1 x width, broadcast): timing or upper-level conditioning. */
  xCond?: Float32Array;
  /** n x n_tokens x width: lyric encoder output (5b_lyrics). */
  encoderKv?: Float32Array;
  /** Also return the transformer input and every layer's output for batch item 0. */
  record?: boolean;
  signal?: AbortSignal;
}

export interface SampleInput {
  n: number;
  /** n x len tokens; positions before `prefix` are the known prefix (primed / continued). */
  tokens: Int32Array;
  /** Known tokens at the start of the window: prefilled in one block-sparse pass. */
  prefix?: number;
  /** Prefill in chunks of this many positions instead (bounded memory; same logits). */
  prefillChunk?: number;
  /** Sample positions [prefix, end) (default: to the end of the window). */
  end?: number;
  yCond: Float32Array;
  xCond?: Float32Array;
  encoderKv?: Float32Array;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Philox key; the random number of sample b at position t depends only on (seed, stream, b + sampleOffset, t). */
  seed?: number;
  stream?: number;
  sampleOffset?: number;
  /** Teacher forcing: take these tokens instead of drawing them (tests, scoring). */
  forced?: Int32Array;
  /** Return each step's logits (n x (end - prefix) x bins), before temperature. */
  recordLogits?: boolean;
  /** Return the prefill's logits (n x prefix x bins). */
  recordPrefixLogits?: boolean;
  signal?: AbortSignal;
  onProgress?: (token: number, tokens: number) => void;
}

export interface SampleOutput {
  tokens: Int32Array;
  logits?: Float32Array;
  prefixLogits?: Float32Array;
}

export interface ForwardOutput {
  /** n x len x bins, position t predicting token t. */
  logits: Float32Array;
  input?: Float32Array;
  layers?: Float32Array;
}

interface NativePrior {
  forward(
    tokens: Int32Array,
    n: number,
    yCond: Float32Array | null,
    xCond: Float32Array | null,
    xCondLen: number,
    encoderKv: Float32Array | null,
    record: boolean,
    onProgress?: (d: number, t: number) => void,
    abort?: NativeAbortFlag,
  ): Promise<ForwardOutput>;
  encodeLyrics(tokens: Int32Array, n: number, onProgress?: (d: number, t: number) => void, abort?: NativeAbortFlag): Promise<Float32Array>;
  labels(y: Int32Array, n: number): { yCond: Float32Array; xCond: Float32Array | null };
  attention(
    tokens: Int32Array, n: number, yCond: Float32Array, xCond: Float32Array | null, xCondLen: number,
    encoderKv: Float32Array | null, layer: number, head: number, abort?: NativeAbortFlag,
  ): Promise<Float32Array>;
  sample(opts: Record<string, unknown>, onProgress?: (d: number, t: number) => void, abort?: NativeAbortFlag): Promise<SampleOutput>;
  window(job: Record<string, unknown>, onProgress?: (d: number, t: number) => void, abort?: NativeAbortFlag): Promise<SampleOutput & { attention?: Float32Array }>;
  backend(): { backend: 'cpu' | 'cuda'; description: string; deviceBytes: number };
  condition(z: Int32Array, n: number, t: number, onProgress?: (d: number, t: number) => void, abort?: NativeAbortFlag): Promise<Float32Array>;
  dispose(): void;
}

function nativePriorClass(): new (plan: unknown) => NativePrior {
  return (native() as unknown as { Prior: new (plan: unknown) => NativePrior }).Prior;
}

/** The prior's and its VQ-VAE's hyperparameters. */
export function priorHparamsOf(file: ModelFile, opts: LoadPriorOptions): { raw: Hparams; vq: VQVAEHparams } {
  const kind = detectKind(file);
  if (kind !== 'prior') {
    throw new JukeboxError('ERR_MODEL_KIND', `${file.path} holds ${kind === 'vqvae' ? 'a VQ-VAE' : 'no recognisable Jukebox model'}, not a prior`);
  }
  if (file.format === 'safetensors') {
    const raw = storedHparams(file);
    const vqRaw = storedHparams(file, META.vqvaeHparams);
    if (!raw || !vqRaw) throw new JukeboxError('ERR_HPARAMS', `${file.path} lacks jukebox.hparams or jukebox.vqvae_hparams; convert it with "jukebox convert --vqvae"`);
    return { raw, vq: vqvaeHparams(vqRaw, `${file.path} (VQ-VAE metadata)`) };
  }
  if (!opts.vqvae) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${file.path} is an original checkpoint: pass the VQ-VAE it was built against (vqvae option)`);
  const raw = mergeHparams({ preset: opts.preset, checkpointHps: file.checkpointHps, configPath: opts.config }).hparams;
  return { raw, vq: vqvaeHparamsOf(openModelFile(opts.vqvae)).hparams };
}

export class Prior {
  readonly path: string;
  readonly structure: PriorStructure;
  readonly rawHparams: Hparams;
  /** Safetensors metadata of a converted file ({} for .pth.tar). */
  readonly metadata: Record<string, string>;
  /** The backend its windows run on, what was asked for, and why. */
  readonly backend: BackendChoice;
  #native: NativePrior | undefined;
  #inflight = new Set<NativeAbortFlag>();

  /** @internal use loadPrior */
  constructor(
    path: string, raw: Hparams, structure: PriorStructure, handle: NativePrior, metadata: Record<string, string> = {},
    backend: BackendChoice = { requested: 'cpu', used: 'cpu', reason: 'CPU' },
  ) {
    this.path = path;
    this.backend = backend;
    this.metadata = metadata;
    this.rawHparams = raw;
    this.structure = structure;
    this.#native = handle;
  }

  /** Teacher-forced forward over one full window: logits for every position. */
  async forward(x: ForwardInput): Promise<ForwardOutput> {
    const s = this.structure;
    const w = s.prior.width, L = s.prior.len;
    const xCondLen = x.xCond ? x.xCond.length / (x.n * w) : L;
    return this.#run(x.signal, (flag) =>
      this.#handle().forward(x.tokens, x.n, x.yCond, x.xCond ?? null, xCondLen, x.encoderKv ?? null, x.record === true, undefined, flag),
    );
  }

  /**
   * Samples one window with the KV-cached decoder: prefill the known prefix in one pass,
   * then one native call draws every remaining token (progress per token, abortable).
   */
  async sample(x: SampleInput): Promise<SampleOutput> {
    const w = this.structure.prior.width, L = this.structure.prior.len;
    const { signal, onProgress, xCond, ...rest } = x;
    const opts = { ...rest, xCond, xCondLen: xCond ? xCond.length / (x.n * w) : L };
    return this.#run(signal, (flag) => this.#handle().sample(opts, onProgress, flag));
  }

  /**
   * Samples one window conditioned natively: int32 label rows, the upper level's codes
   * (upsamplers) and lyric tokens (lyric encoder models) go in; the label/timing, upsampler
   * and lyric-encoder conditioning is computed by the engine, so no n x n_ctx x width floats
   * pass through JS. Same tokens as sample() with the conditioning computed by labels() /
   * condition() / encodeLyrics().
   */
  async sampleWindow(x: WindowSampleInput): Promise<SampleOutput> {
    const { signal, onProgress, ...rest } = x;
    return this.#run(signal, (flag) => this.#handle().window({ kind: 'sample', ...rest, ...this.#musicOffset() }, onProgress, flag));
  }

  /** A teacher-forced forward over one window, conditioned natively (see sampleWindow). */
  async forwardWindow(x: WindowForwardInput): Promise<Float32Array> {
    const { signal, ...rest } = x;
    const out = await this.#run(signal, (flag) => this.#handle().window({ kind: 'forward', ...rest, ...this.#musicOffset() }, undefined, flag));
    return (out as unknown as { logits: Float32Array }).logits;
  }

  /** One head's attention probabilities over one window, conditioned natively: n x len x keys. */
  async attentionWindow(x: WindowForwardInput & { layer: number; head: number }): Promise<Float32Array> {
    const { signal, ...rest } = x;
    const out = await this.#run(signal, (flag) => this.#handle().window({ kind: 'attention', ...rest, ...this.#musicOffset() }, undefined, flag));
    return out.attention!;
  }

  /** Combined lyric models: the music positions (and their conditioning) start after the lyric tokens. */
  #musicOffset(): { musicOffset: number } {
    return { musicOffset: this.structure.lyrics === 'combined' ? this.structure.nTokens : 0 };
  }

  /**
   * One head's attention probabilities in a full forward over a window (lyrics alignment):
   * n x len x keys, keys = n_tokens for encoder-decoder layers, else len.
   */
  async attention(x: Omit<ForwardInput, 'record'> & { layer: number; head: number }): Promise<Float32Array> {
    const w = this.structure.prior.width, L = this.structure.prior.len;
    const xCondLen = x.xCond ? x.xCond.length / (x.n * w) : L;
    return this.#run(x.signal, (flag) =>
      this.#handle().attention(x.tokens, x.n, x.yCond, x.xCond ?? null, xCondLen, x.encoderKv ?? null, x.layer, x.head, flag),
    );
  }

  /** 5b_lyrics: encoder_kv (n x n_tokens x width) of n rows of lyric tokens. */
  async encodeLyrics(tokens: Int32Array, n: number, signal?: AbortSignal): Promise<Float32Array> {
    if (this.structure.lyrics !== 'encoder') throw new JukeboxError('ERR_MODEL_KIND', `${this.path} has no separate lyric encoder`);
    return this.#run(signal, (flag) => this.#handle().encodeLyrics(tokens, n, undefined, flag));
  }

  /**
   * Label conditioning of n label rows [total_length, offset, length, artist, genre x
   * max_bow_genre_size] (the original's layout, lyric tokens excluded): the start
   * embeddings yCond (n x width) and, for the top level, the timing signal xCond
   * (n x n_ctx x width).
   */
  labels(y: Int32Array, n: number): { yCond: Float32Array; xCond: Float32Array | null } {
    try {
      return this.#handle().labels(y, n);
    } catch (e) {
      throw toJukeboxError(e, this.path);
    }
  }

  /** Upsampler: x_cond (n x n_ctx x width) from n rows of the upper level's codes. */
  async condition(upper: Int32Array, n: number, signal?: AbortSignal): Promise<Float32Array> {
    if (!this.structure.upsampler) throw new JukeboxError('ERR_MODEL_KIND', `${this.path} is a top-level prior, not an upsampler`);
    return this.#run(signal, (flag) => this.#handle().condition(upper, n, upper.length / n, undefined, flag));
  }

  /** Where this prior runs now: the backend, a description (the device), and the device memory it holds. */
  runtime(): { backend: 'cpu' | 'cuda'; description: string; deviceBytes: number } {
    return this.#handle().backend();
  }

  /**
   * Frees the model at once: jobs in flight are aborted (their promises reject with
   * ERR_ABORTED) and the device memory goes when the last of them has stopped, within a few
   * tokens.
   */
  dispose(): void {
    for (const f of this.#inflight) f.abort();
    this.#native?.dispose();
    this.#native = undefined;
  }

  #handle(): NativePrior {
    if (!this.#native) throw new JukeboxError('ERR_DISPOSED', `the prior from ${this.path} has been disposed`);
    return this.#native;
  }

  #run<T>(signal: AbortSignal | undefined, call: (flag: NativeAbortFlag) => Promise<T>): Promise<T> {
    return runAbortable(signal, this.#inflight, this.path, call);
  }

}

export async function loadPrior(path: string, opts: LoadPriorOptions = {}): Promise<Prior> {
  const file = openModelFile(path);
  const { raw, vq } = priorHparamsOf(file, opts);
  const structure = priorStructure(raw, vq, path);
  checkTensors(file, priorKeys(structure), 'prior');
  const choice = typeof opts.backend === 'object' ? opts.backend : engineBackend(opts.backend ?? 'auto');
  if (opts.samples !== undefined && !(Number.isInteger(opts.samples) && opts.samples >= 1 && opts.samples <= 4096)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `samples must be an integer in [1, 4096], got ${opts.samples}`);
  }
  // Vectors (biases, LayerNorms, start tokens) are always read as fp32 by the engine.
  const plan = {
    file: path,
    backend: choice.used,
    samples: opts.samples ?? 1,
    kvF16: opts.kvF16 === true,
    ...priorPlan(structure, (key): NativeWeight => nativeWeight(file, key)),
  };
  let handle: NativePrior;
  try {
    handle = new (nativePriorClass())(plan);
  } catch (e) {
    throw toJukeboxError(e, path);
  }
  return new Prior(path, raw, structure, handle, file.metadata, choice);
}
