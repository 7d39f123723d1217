/**
 * loadJukebox + generate(): top-down hierarchical sampling (jukebox/sample.py; reference
 * §d): the top prior samples its level in windows, each upsampler samples the level below
 * conditioned on the level above, and the VQ-VAE decodes each sampled level to audio.
 * Codes of every finished window are saved to the output folder, and `resume` continues
 * from them with the same result as an uninterrupted run with the same seed.
 */
import { mkdirSync } from 'node:fs';
import { JukeboxError } from '../errors.js';
import { loadPrior, type Prior } from '../prior/prior.js';
import { loadVQVAE, type VQVAE } from '../vqvae/vqvae.js';
import { DEFAULT_HOP_FRACTIONS } from './schedule.js';
import { sampleLevel, type WindowLabels } from './sample-level.js';
import { labelerFor } from './labeler.js';
import { hasAlignment, lyricsAlignment, type Alignment } from './alignment.js';
import { encodeNpz, type NpzWritableArray } from '../npz.js';
import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { textise } from '../labels/lyrics.js';
import { defaultModelSet, readModelSet, type ModelSetDefaults } from '../model-set.js';
import { engineBackend, type Backend, type BackendChoice } from '../backend.js';
import { readRunState, writeLevelCodes, writeRunState, type RunModel, type RunState } from './run-files.js';

export interface LoadJukeboxOptions {
  /**
   * A model folder (model.json naming a VQ-VAE and its priors; lib/model-set.ts). Without it
   * and without `vqvae`, the package's default model (models/default) is loaded.
   */
  model?: string;
  /** The VQ-VAE (.safetensors from "jukebox convert"); with it, `model` is not used. */
  vqvae?: string;
  /** With `vqvae`: one prior per level, bottom (level 0) first; undefined for levels you will not sample. */
  priors?: (string | undefined)[];
  /**
   * 'auto' (default): CUDA when the backend library and a device are present, else the CPU;
   * 'cuda' fails with ERR_BACKEND_UNAVAILABLE (saying why) when it cannot run; 'cpu'. The
   * choice and its reason are in `jukebox.backend`.
   */
  backend?: Backend;
  /** CUDA: samples per window the device models are first made for (the batch you will generate; default 1). */
  samples?: number;
}

export interface GenerateProgress {
  phase: 'sample' | 'decode';
  level: number;
  window: number;
  windows: number;
  token: number;
  tokens: number;
  /** Estimated seconds left for the current level. */
  etaSeconds: number;
}

export interface GenerateOptions {
  artist?: string | number;
  genre?: string | number | (string | number)[];
  lyrics?: string;
  /** Length to generate. */
  seconds: number;
  /** Length of the whole song the timing labels describe (default: seconds, at least the top prior's min_duration). */
  totalSeconds?: number;
  samples?: number;
  /** One value, or one per level (bottom first). Default 0.99 like the original. */
  temperature?: number | number[];
  topK?: number;
  topP?: number;
  seed?: number;
  /** Mono audio at the model's rate to continue from (primed mode); encoded at every level. */
  prompt?: Float32Array;
  /**
   * Codes to continue from, per level (codes[level][sample], or one sample for all):
   * "continue" a previous run at every level, or "upsample" top-level codes with levels
   * [1, 0]. Windows already filled are not resampled.
   */
  codes?: (Int32Array[] | undefined)[];
  /** Levels to sample, e.g. [2] for the top only (default: every level with a prior). */
  levels?: number[];
  /** Window hop as a fraction of n_ctx, per level (default 0.5, 0.5, 0.125). */
  hopFractions?: number[];
  /** Unknown artists/genres map to 0 (as the original) instead of failing. */
  allowUnknownLabels?: boolean;
  /** Folder for codes (after every window), audio and run settings. */
  outputDir?: string;
  /** Continue from the codes in outputDir. */
  resume?: boolean;
  /**
   * Index of the first sample in the random streams (default 0): with `samples: 1` and
   * `sampleOffset: i` the codes equal sample i of a run with more samples and the same seed,
   * which is how a job queue (lib/queue) spreads one run's samples over machines. Recorded
   * in run.json when not 0 (and checked by `resume`).
   */
  sampleOffset?: number;
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  /**
   * Called once per window sampled in this call, after its codes are saved to outputDir
   * (windows a resumed run or given codes already hold are not sampled, so not reported).
   */
  onWindow?: (w: { level: number; window: number; windows: number }) => void;
}

export interface GenerateResult {
  /** codes[level][sample] for every level that has codes. */
  codes: (Int32Array[] | undefined)[];
  /** Audio of the lowest sampled level, one Float32Array per sample. */
  audio: Float32Array[];
  /** Audio decoded from each sampled level (index = level). */
  levelAudio: (Float32Array[] | undefined)[];
  sampleRate: number;
  /** Samples of audio generated (a multiple of the top level's hop length). */
  sampleLength: number;
  levels: number[];
  seed: number;
  /** Lyric models: for each sample, the weight of each lyric token at each top-level token. */
  alignment?: Alignment[];
}

export class Jukebox {
  readonly vqvae: VQVAE;
  readonly priors: (Prior | undefined)[];

  /** Sampling settings recommended by the model folder it came from (explicit options win). */
  readonly defaults: ModelSetDefaults;
  /** The backend that runs this model, and why it was chosen. */
  readonly backend: BackendChoice;
  /** The files this model was loaded from (written to run.json so a run can be continued later). */
  readonly source: RunModel | undefined;

  /** @internal use loadJukebox */
  constructor(
    vqvae: VQVAE,
    priors: (Prior | undefined)[],
    defaults: ModelSetDefaults = {},
    backend: BackendChoice = { requested: 'cpu', used: 'cpu', reason: 'CPU' },
    source?: RunModel,
  ) {
    this.vqvae = vqvae;
    this.priors = priors;
    this.defaults = defaults;
    this.backend = backend;
    this.source = source;
  }

  get sampleRate(): number {
    return this.vqvae.sampleRate;
  }

  dispose(): void {
    this.vqvae.dispose();
    for (const p of this.priors) p?.dispose();
  }

  async generate(o: GenerateOptions): Promise<GenerateResult> {
    const vq = this.vqvae;
    const L = vq.levels;
    const n = o.samples ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new JukeboxError('ERR_INVALID_ARGUMENT', `samples must be a positive integer, got ${o.samples}`);
    if (!(o.seconds > 0)) throw new JukeboxError('ERR_INVALID_ARGUMENT', `seconds must be > 0, got ${o.seconds}`);
    const levels = [...(o.levels ?? this.priors.map((p, l) => (p ? l : -1)).filter((l) => l >= 0))].sort((a, b) => b - a);
    if (levels.length === 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'no levels to sample: load at least one prior');
    for (const l of levels) {
      if (!this.priors[l]) throw new JukeboxError('ERR_INVALID_ARGUMENT', `level ${l} has no prior loaded`);
    }
    const seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
    const sampleOffset = o.sampleOffset ?? 0;
    if (!Number.isInteger(sampleOffset) || sampleOffset < 0 || sampleOffset + n > 2 ** 32) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `sampleOffset must be a non-negative integer, got ${o.sampleOffset}`);
    }
    const topHop = vq.hopLengths[L - 1];
    const sampleLength = Math.floor((o.seconds * vq.sampleRate) / topHop) * topHop;
    if (sampleLength <= 0) throw new JukeboxError('ERR_INVALID_ARGUMENT', `seconds ${o.seconds} is shorter than one top-level code`);
    // Without totalSeconds the song is as long as what is generated, but never shorter than
    // the shortest song the top prior's timing labels know (min_duration: 60 s for the 5b
    // models, 10 s for the default model), so short excerpts work out of the box.
    const minSong = this.priors[L - 1]?.structure.labels.minDuration ?? 0;
    const totalLength = Math.round((o.totalSeconds ?? Math.max(o.seconds, minSong)) * vq.sampleRate);
    if (totalLength < sampleLength) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'totalSeconds must be at least seconds');

    const state: RunState = {
      version: 1,
      seed,
      samples: n,
      sampleLength,
      totalLength,
      artist: o.artist ?? null,
      genre: o.genre ?? null,
      lyrics: o.lyrics ?? null,
      temperature: o.temperature ?? this.defaults.temperature ?? 0.99,
      topK: o.topK ?? this.defaults.topK ?? 0,
      topP: o.topP ?? this.defaults.topP ?? 0,
      levels,
      hopFractions: o.hopFractions ?? DEFAULT_HOP_FRACTIONS.slice(0, L),
      primed: o.prompt ? o.prompt.length : 0,
      ...(sampleOffset ? { sampleOffset } : {}),
      ...(this.source ? { model: this.source } : {}),
      backend: this.backend.used,
    };

    // Codes per level: from a resumed run, the encoded prompt, or empty.
    let codes: (Int32Array[] | undefined)[] = Array.from({ length: L }, () => undefined);
    if (o.outputDir) mkdirSync(o.outputDir, { recursive: true });
    if (o.resume) {
      if (!o.outputDir) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'resume needs outputDir');
      codes = readRunState(o.outputDir, state, L);
    } else if (o.codes) {
      if (o.prompt) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'give either a prompt or codes to continue from, not both');
      for (let l = 0; l < L; l++) {
        const given = o.codes[l];
        if (!given || given.length === 0) continue;
        if (given.length !== 1 && given.length !== n) {
          throw new JukeboxError('ERR_CODES', `codes for level ${l} hold ${given.length} samples; expected 1 or ${n}`);
        }
        const limit = sampleLength / vq.hopLengths[l];
        codes[l] = Array.from({ length: n }, (_, b) => (given.length === 1 ? given[0] : given[b]).slice(0, limit));
        if (new Set(codes[l]!.map((c) => c.length)).size !== 1) throw new JukeboxError('ERR_CODES', `level ${l}: the samples' codes differ in length`);
      }
    } else if (o.prompt) {
      const promptLength = Math.floor(o.prompt.length / topHop) * topHop;
      if (promptLength === 0) throw new JukeboxError('ERR_AUDIO_FORMAT', 'the prompt is shorter than one top-level code');
      if (promptLength >= sampleLength) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'the prompt must be shorter than the requested length');
      const enc = await vq.encode(o.prompt.subarray(0, promptLength), { signal: o.signal });
      codes = enc.map((perClip) => Array.from({ length: n }, () => perClip[0].slice()));
    }
    if (o.outputDir) {
      writeRunState(o.outputDir, state);
      // Codes given or encoded from the prompt are saved too, so the folder holds every level
      // (an upsampling run resumed with --resume finds the level above it).
      if (!o.resume) codes.forEach((c, l) => c && c[0].length > 0 && writeLevelCodes(o.outputDir!, l, c));
    }

    for (const level of levels) {
      const prior = this.priors[level]!;
      const s = prior.structure;
      if (s.level !== level) throw new JukeboxError('ERR_MODEL_KIND', `${prior.path} is a level-${s.level} prior, loaded as level ${level}`);
      if (s.upsampler && !codes[level + 1]) {
        throw new JukeboxError('ERR_CODES', `level ${level} needs the codes of level ${level + 1}: sample that level too, or give its codes`);
      }
      const total = sampleLength / s.rawToTokens;
      const labeler = labelerFor(prior, { allowUnknown: o.allowUnknownLabels === true });
      const base = labeler.base({ artist: o.artist, genre: o.genre, lyrics: o.lyrics, totalLength });
      const started = Date.now();
      let doneTokens = 0;
      const levelTokens = total * n;
      const existing = codes[level] ?? Array.from({ length: n }, () => new Int32Array(0));
      const already = existing[0].length;
      codes[level] = await sampleLevel(
        {
          prior,
          n,
          total,
          hopFraction: state.hopFractions[level] ?? 0.5,
          labelsFor: (start): WindowLabels => labeler.windowLabels(base, n, start),
          upper: s.upsampler ? codes[level + 1] : undefined,
          temperature: Array.isArray(state.temperature) ? state.temperature[level] : state.temperature,
          topK: state.topK,
          topP: state.topP,
          seed,
          level,
          sampleOffset,
          signal: o.signal,
          onProgress: (p) => {
            const tokensNow = doneTokens + p.token * n;
            const rate = tokensNow / Math.max(1e-3, (Date.now() - started) / 1000);
            o.onProgress?.({
              phase: 'sample', level, window: p.window, windows: p.windows, token: p.token, tokens: p.tokens,
              etaSeconds: rate > 0 ? Math.max(0, levelTokens - already * n - tokensNow) / rate : NaN,
            });
            if (p.token === p.tokens) doneTokens += p.tokens * n;
          },
          onWindow: (c, window, windows) => {
            if (o.outputDir) writeLevelCodes(o.outputDir, level, c);
            o.onWindow?.({ level, window, windows });
          },
        },
        existing,
      );
    }

    // Lyrics alignment from the top prior's attention, as the original computes it.
    let alignment: Alignment[] | undefined;
    const top = this.priors[L - 1];
    // (a model whose alignment_layer is missing or does not attend to the lyrics has none)
    if (top && o.lyrics && codes[L - 1] && hasAlignment(top)) {
      const base = labelerFor(top, { allowUnknown: o.allowUnknownLabels === true }).base({ artist: o.artist, genre: o.genre, lyrics: o.lyrics, totalLength });
      alignment = [];
      for (const c of codes[L - 1]!) {
        alignment.push(await lyricsAlignment({ prior: top, codes: c, base, hopFraction: state.hopFractions[L - 1] ?? 0.125, signal: o.signal }));
      }
      if (o.outputDir) {
        // The cleaned lyrics are ASCII, one character per lyric token: stored as bytes so
        // the alignment's columns can be shown as text without knowing the vocabulary.
        const text = Buffer.from(textise(base.fullTokens, top.structure.labels.v3 ? 'v3' : 'v2'), 'latin1');
        const arrays: Record<string, NpzWritableArray> = {
          lyric_tokens: { dtype: 'int32', shape: [base.fullTokens.length], data: Int32Array.from(base.fullTokens) },
          lyric_text: { dtype: 'uint8', shape: [text.length], data: new Uint8Array(text) },
        };
        alignment.forEach((a, i) => (arrays[`sample_${i}`] = { dtype: 'float32', shape: [a.tokens, a.lyricTokens], data: a.weights }));
        writeFileSync(join(o.outputDir, 'alignment.npz'), encodeNpz(arrays));
      }
    }

    // Decode every sampled level, as the original does.
    const levelAudio: (Float32Array[] | undefined)[] = Array.from({ length: L }, () => undefined);
    for (const level of levels) {
      o.onProgress?.({ phase: 'decode', level, window: 0, windows: 1, token: 0, tokens: 1, etaSeconds: NaN });
      levelAudio[level] = await vq.decode(codes[level]!, level, { signal: o.signal });
    }
    const lowest = levels[levels.length - 1];
    return { codes, audio: levelAudio[lowest]!, levelAudio, sampleRate: vq.sampleRate, sampleLength, levels, seed, alignment };
  }
}

export async function loadJukebox(o: LoadJukeboxOptions = {}): Promise<Jukebox> {
  const backend = engineBackend(o.backend ?? 'auto');
  let files: { vqvae: string; priors: (string | undefined)[]; defaults: ModelSetDefaults };
  let source: RunModel;
  if (o.vqvae !== undefined) {
    files = { vqvae: o.vqvae, priors: o.priors ?? [], defaults: {} };
    const top = [...files.priors].reverse().find((p) => p);
    source = { name: top ? basename(top) : basename(o.vqvae), vqvae: resolve(o.vqvae), priors: files.priors.map((p) => (p ? resolve(p) : null)) };
  } else {
    if (o.priors?.some((p) => p)) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'priors were given without their VQ-VAE (vqvae)');
    const set = o.model !== undefined ? readModelSet(o.model) : defaultModelSet();
    files = set;
    source = { name: set.name, dir: set.dir, vqvae: set.vqvae, priors: set.priors.map((p) => p ?? null) };
  }
  const vqvae = await loadVQVAE(files.vqvae, { backend });
  const priors: (Prior | undefined)[] = [];
  try {
    for (let l = 0; l < vqvae.levels; l++) {
      const path = files.priors[l];
      const prior = path ? await loadPrior(path, { vqvae: files.vqvae, backend, samples: o.samples }) : undefined;
      if (prior) checkSameVQVAE(prior, vqvae);
      priors.push(prior);
    }
  } catch (e) {
    vqvae.dispose();
    for (const p of priors) p?.dispose();
    throw e;
  }
  return new Jukebox(vqvae, priors, files.defaults, backend, source);
}


/** A prior only makes sense with the VQ-VAE it was trained against. */
function checkSameVQVAE(prior: Prior, vq: VQVAE): void {
  const s = prior.structure;
  if (s.levels !== vq.levels || s.lBins !== vq.codebookSize || s.rawToTokens !== vq.hopLengths[s.level]) {
    throw new JukeboxError(
      'ERR_MODEL_KIND',
      `${prior.path} was built against a VQ-VAE with ${s.levels} levels, ${s.lBins} codes and hop ${s.rawToTokens} at level ${s.level}; ` +
        `${vq.path} has ${vq.levels} levels, ${vq.codebookSize} codes and hops ${vq.hopLengths.join('/')}`,
    );
  }
}
