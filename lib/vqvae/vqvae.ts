/**
 * loadVQVAE: the VQ-VAE of a converted .safetensors file (or an original .pth.tar) ready
 * to encode audio into codes and decode codes into audio, in native code off the JS thread.
 */
import { engineBackend, type Backend, type BackendChoice } from '../backend.js';
import { JukeboxError } from '../errors.js';
import { mergeHparams } from '../hparams/merge.js';
import type { Hparams } from '../hparams/presets.js';
import { detectKind, nativeWeight, openModelFile, storedHparams, type ModelFile } from '../model-file.js';
import {
  native,
  runAbortable,
  toJukeboxError,
  type NativeAbortFlag,
  type NativeConvSpec,
  type NativeStack,
  type NativeVQVAE,
} from '../native.js';
import { vqvaeHparams, type VQVAEHparams } from './hparams.js';
import { vqvaeLayout, type ConvDesc, type StackDesc, type VQVAELayout } from './layout.js';
import { checkTensors } from './validate.js';

export interface Progress {
  /** Work done and total, in floating-point operations. */
  done: number;
  total: number;
  fraction: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface EncodeOptions extends RunOptions {
  /** Levels to encode (default: all). The result lists them in this order. */
  levels?: number[];
}

export interface LoadVQVAEOptions {
  /** For .pth.tar files: official preset to start from (default 'vqvae'). */
  preset?: string;
  /** For .pth.tar files: JSON config of hyperparameters (original names). */
  config?: string;
  /**
   * Where decode runs: 'auto' (default: CUDA when a GPU can run the model path), 'cuda', 'cpu',
   * or a choice already made (loadJukebox passes its own). Encode runs on the CPU engine.
   */
  backend?: Backend | BackendChoice;
}

/** Codes of one level for a batch: `data` holds n rows of t codes. */
export interface BatchCodes {
  n: number;
  t: number;
  data: Int32Array;
}

function resnetContainer(file: ModelFile): 'model' | 'blocks' {
  for (const k of file.tensors.keys()) if (/^(en|de)coders\.\d+\..*\.blocks\.\d+\.model\./.test(k)) return 'blocks';
  return 'model';
}

/** Hyperparameters of a VQ-VAE file: its metadata (converted) or preset < hps < config (torch). */
export function vqvaeHparamsOf(file: ModelFile, opts: LoadVQVAEOptions = {}): { raw: Hparams; hparams: VQVAEHparams } {
  const kind = detectKind(file);
  if (kind !== 'vqvae') {
    throw new JukeboxError(
      'ERR_MODEL_KIND',
      `${file.path} holds ${kind === 'prior' ? 'a prior' : 'no recognisable Jukebox model'}, not a VQ-VAE` +
        (kind === 'prior' ? ' (load it as a prior, or pass the VQ-VAE file)' : ''),
    );
  }
  let raw: Hparams;
  if (file.format === 'safetensors') {
    const stored = storedHparams(file);
    if (!stored) {
      throw new JukeboxError('ERR_HPARAMS', `${file.path} has no jukebox.hparams metadata; convert the original checkpoint with "jukebox convert"`);
    }
    raw = stored;
  } else {
    raw = mergeHparams({ preset: opts.preset ?? 'vqvae', checkpointHps: file.checkpointHps, configPath: opts.config }).hparams;
  }
  return { raw, hparams: vqvaeHparams(raw, file.path) };
}

/** Checks every key and shape; returns the layout. */
export function validateVQVAEFile(file: ModelFile, h: VQVAEHparams): VQVAELayout {
  const layout = vqvaeLayout(h, resnetContainer(file));
  checkTensors(file, layout.keys, 'VQ-VAE');
  return layout;
}


function nativeStack(file: ModelFile, s: StackDesc): NativeStack {
  const conv = (c: ConvDesc): NativeConvSpec => ({ ...c, weight: nativeWeight(file, `${c.name}.weight`), bias: nativeWeight(file, `${c.name}.bias`) });
  return {
    inChannels: s.inChannels,
    outChannels: s.outChannels,
    layers: s.layers.map((l) => (l.kind === 'conv' ? { kind: 'conv', conv: conv(l.conv) } : { kind: 'res', a: conv(l.a), b: conv(l.b), scale: l.scale })),
  };
}

export class VQVAE {
  readonly path: string;
  readonly hparams: VQVAEHparams;
  /** The hyperparameters under the original's names, as stored or merged. */
  readonly rawHparams: Hparams;
  readonly levels: number;
  /** Samples per code at each level. */
  readonly hopLengths: number[];
  readonly sampleRate: number;
  readonly codebookSize: number;
  /** Where decode runs, what was asked for, and why (encode runs on the CPU engine). */
  readonly backend: BackendChoice;
  #native: NativeVQVAE | undefined;
  #inflight = new Set<NativeAbortFlag>();

  /** @internal use loadVQVAE */
  constructor(
    path: string, raw: Hparams, h: VQVAEHparams, layout: VQVAELayout, handle: NativeVQVAE,
    backend: BackendChoice = { requested: 'cpu', used: 'cpu', reason: 'CPU' },
  ) {
    this.path = path;
    this.backend = backend;
    this.rawHparams = raw;
    this.hparams = h;
    this.levels = h.levels;
    this.hopLengths = layout.hopLengths;
    this.sampleRate = h.sr;
    this.codebookSize = h.l_bins;
    this.#native = handle;
  }

  /**
   * Encodes clips of mono audio at `sampleRate` into codes. Returns, for each requested
   * level (default all, in order), one Int32Array of codes per clip. Clips of equal length
   * run as one batch.
   */
  async encode(audio: Float32Array | Float32Array[], opts: EncodeOptions = {}): Promise<Int32Array[][]> {
    const clips = Array.isArray(audio) ? audio : [audio];
    if (clips.length === 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'encode: no audio given');
    const levels = opts.levels ?? Array.from({ length: this.levels }, (_, i) => i);
    for (const l of levels) this.#checkLevel(l);
    const minLen = this.hopLengths[this.levels - 1];
    clips.forEach((c, i) => {
      if (!(c instanceof Float32Array)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `encode: clip ${i} is not a Float32Array`);
      if (c.length < minLen) {
        throw new JukeboxError('ERR_INVALID_ARGUMENT', `encode: clip ${i} has ${c.length} samples; at least ${minLen} (one top-level code) are needed`);
      }
    });
    const start = Math.min(...levels), end = Math.max(...levels) + 1;
    const out: Int32Array[][] = levels.map(() => new Array<Int32Array>(clips.length));
    // Group clips by length: each group is one native batch.
    const groups = new Map<number, number[]>();
    clips.forEach((c, i) => groups.set(c.length, [...(groups.get(c.length) ?? []), i]));
    const totalFlops = [...groups].reduce((s, [t, idx]) => s + this.#handle().encodeFlops(idx.length, t, start, end), 0);
    let doneBefore = 0;
    for (const [t, idx] of groups) {
      const batch = new Float32Array(idx.length * t);
      idx.forEach((ci, j) => batch.set(clips[ci], j * t));
      const flops = this.#handle().encodeFlops(idx.length, t, start, end);
      const codes = await this.#run(opts, doneBefore, totalFlops, (onProgress, flag) =>
        this.#handle().encode(batch, idx.length, t, start, end, onProgress, flag),
      );
      doneBefore += flops;
      levels.forEach((l, li) => {
        const all = codes[l - start];
        const tl = all.length / idx.length;
        idx.forEach((ci, j) => {
          out[li][ci] = all.subarray(j * tl, (j + 1) * tl);
        });
      });
    }
    return out;
  }

  /**
   * Decodes codes of one level to audio. `codes` is one clip (Int32Array), several clips of
   * equal length, or a BatchCodes. Returns one Float32Array per clip (views of one buffer).
   */
  async decode(codes: Int32Array | Int32Array[] | BatchCodes, level: number, opts: RunOptions = {}): Promise<Float32Array[]> {
    this.#checkLevel(level);
    let batch: BatchCodes;
    if (codes instanceof Int32Array) batch = { n: 1, t: codes.length, data: codes };
    else if (Array.isArray(codes)) {
      if (codes.length === 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'decode: no codes given');
      const t = codes[0].length;
      if (codes.some((c) => !(c instanceof Int32Array) || c.length !== t)) {
        throw new JukeboxError('ERR_INVALID_ARGUMENT', 'decode: every clip must be an Int32Array of the same length');
      }
      const data = new Int32Array(codes.length * t);
      codes.forEach((c, i) => data.set(c, i * t));
      batch = { n: codes.length, t, data };
    } else batch = codes;
    if (batch.n < 1 || batch.t < 1 || batch.data.length !== batch.n * batch.t) {
      throw new JukeboxError('ERR_CODES', `decode: expected ${batch.n} x ${batch.t} codes, got ${batch.data.length}`);
    }
    const total = this.#handle().decodeFlops(batch.n, batch.t, level);
    const audio = await this.#run(opts, 0, total, (onProgress, flag) =>
      this.#handle().decode(batch.data, batch.n, batch.t, level, onProgress, flag),
    );
    const len = audio.length / batch.n;
    return Array.from({ length: batch.n }, (_, i) => audio.subarray(i * len, (i + 1) * len));
  }

  /** Frees the native weights now. In-flight calls are aborted. Idempotent. */
  dispose(): void {
    for (const f of this.#inflight) f.abort();
    this.#native?.dispose();
    this.#native = undefined;
  }

  get disposed(): boolean {
    return this.#native === undefined;
  }

  #handle(): NativeVQVAE {
    if (!this.#native) throw new JukeboxError('ERR_DISPOSED', `the VQ-VAE from ${this.path} has been disposed`);
    return this.#native;
  }

  #checkLevel(level: number): void {
    if (!Number.isInteger(level) || level < 0 || level >= this.levels) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `level must be an integer in [0, ${this.levels - 1}], got ${level}`);
    }
  }

  #run<T>(
    opts: RunOptions,
    doneBefore: number,
    total: number,
    call: (onProgress: ((d: number, t: number) => void) | undefined, flag: NativeAbortFlag) => Promise<T>,
  ): Promise<T> {
    const { onProgress } = opts;
    const report = onProgress
      ? (d: number) => {
          const done = doneBefore + d;
          onProgress({ done, total, fraction: total > 0 ? Math.min(1, done / total) : 1 });
        }
      : undefined;
    return runAbortable(opts.signal, this.#inflight, this.path, (flag) => call(report, flag));
  }

}

/** Loads a VQ-VAE from a converted .safetensors file or an original .pth.tar checkpoint. */
export async function loadVQVAE(path: string, opts: LoadVQVAEOptions = {}): Promise<VQVAE> {
  const file = openModelFile(path);
  const { raw, hparams } = vqvaeHparamsOf(file, opts);
  const layout = validateVQVAEFile(file, hparams);
  const choice = typeof opts.backend === 'object' ? opts.backend : engineBackend(opts.backend ?? 'auto');
  const plan = {
    file: path,
    hopLengths: layout.hopLengths,
    encoders: layout.encoders.map((s) => nativeStack(file, s)),
    decoders: layout.decoders.map((s) => nativeStack(file, s)),
    codebooks: layout.codebooks.map((c) => ({ bins: c.bins, width: c.width, weight: nativeWeight(file, c.name) })),
    backend: choice.used,
  };
  let handle: NativeVQVAE;
  try {
    handle = new (native().VQVAE)(plan);
  } catch (e) {
    throw toJukeboxError(e, path);
  }
  return new VQVAE(path, raw, hparams, layout, handle, choice);
}
