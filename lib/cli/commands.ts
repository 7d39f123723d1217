/**
 * The CLI's commands. Each is an async function of parsed options so tests can call them
 * directly; lib/cli/main.ts wires them to argv.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { loadAudio, writeAudio } from '../audio/decode.js';
import { convertCheckpoint } from '../convert.js';
import { JukeboxError } from '../errors.js';
import { readNpz, writeNpz, type NpzWritableArray } from '../npz.js';
import { loadVQVAE, vqvaeHparamsOf } from '../vqvae/vqvae.js';
import type { WeightDtype } from '../checkpoint/dtype-convert.js';
import { openModelFile } from '../model-file.js';
import { engineBackend, type Backend } from '../backend.js';
import { loadJukebox, type GenerateProgress } from '../generate/generate.js';
import { progressBar } from './progress.js';
import { writeRunAudio } from '../generate/run-files.js';

export type Log = (line: string) => void;

function withBar<T>(label: string, run: (onProgress: (p: { fraction: number }) => void) => Promise<T>): Promise<T> {
  const bar = progressBar(label);
  return run((p) => bar.update(p.fraction)).finally(() => bar.stop());
}

export interface EncodeArgs {
  /** auto (default) | cuda | cpu: checked and reported; the models run on the CPU until the CUDA model path lands. */
  backend?: Backend;
  inputs: string[];
  vqvae: string;
  output: string;
  levels?: number[];
}

export async function encodeCommand(a: EncodeArgs, log: Log): Promise<void> {
  // Encoding runs on the CPU engine with every backend (once per prompt, not per window).
  log(`backend: ${engineBackend(a.backend).reason}${a.backend === 'cuda' ? ' (encode itself runs on the CPU engine)' : ''}`);
  // The audio is read first, at the rate the VQ-VAE's metadata names: a bad file fails
  // before any weights are mapped (and without needing the native engine at all).
  const { hparams } = vqvaeHparamsOf(openModelFile(a.vqvae));
  const clips: Float32Array[] = [];
  for (const input of a.inputs) clips.push((await loadAudio(input, { sampleRate: hparams.sr })).samples);
  const vq = await loadVQVAE(a.vqvae, { backend: 'cpu' });
  try {
    const hop = vq.hopLengths[vq.levels - 1];
    // Codes line up across levels only for whole top-level frames, as in the original
    // (sample lengths are multiples of the top hop): trim to the shortest such length.
    const len = Math.floor(Math.min(...clips.map((c) => c.length)) / hop) * hop;
    if (len === 0) {
      throw new JukeboxError('ERR_AUDIO_FORMAT', `${a.inputs.join(', ')}: shorter than one top-level frame (${hop} samples at ${vq.sampleRate} Hz)`);
    }
    if (Math.max(...clips.map((c) => c.length)) > len) {
      log(`note: trimmed to ${len} samples (${(len / vq.sampleRate).toFixed(3)} s), a multiple of the top hop length ${hop}`);
    }
    const batch = clips.map((c) => c.subarray(0, len));
    const levels = a.levels ?? Array.from({ length: vq.levels }, (_, i) => i);
    const codes = await withBar('encode', (onProgress) => vq.encode(batch, { levels, onProgress }));
    const arrays: Record<string, NpzWritableArray> = {};
    levels.forEach((l, i) => {
      const t = codes[i][0].length;
      const data = new Int32Array(batch.length * t);
      codes[i].forEach((c, b) => data.set(c, b * t));
      arrays[`level_${l}`] = { dtype: 'int32', shape: [batch.length, t], data };
    });
    writeNpz(a.output, arrays);
    log(`wrote ${a.output}: ${levels.map((l) => `level_${l} (${arrays[`level_${l}`].shape.join(', ')})`).join(', ')}`);
  } finally {
    vq.dispose();
  }
}

export interface DecodeArgs {
  /** auto (default) | cuda | cpu: checked and reported; the models run on the CPU until the CUDA model path lands. */
  backend?: Backend;
  codes: string;
  vqvae: string;
  level: number;
  output: string;
  format: 's16' | 'f32';
}

const INTEGER_DTYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** Reads level_L from an .npz as int32 (batch, T); accepts shape (T,) and any integer dtype. */
export function readLevelCodes(path: string, level: number): { n: number; t: number; data: Int32Array } {
  const arrays = readNpz(path);
  const arr = arrays[`level_${level}`];
  if (!arr) {
    const have = Object.keys(arrays).join(', ') || 'nothing';
    throw new JukeboxError('ERR_CODES', `${path} has no array "level_${level}" (it has ${have})`);
  }
  if (!INTEGER_DTYPES.has(arr.dtype)) {
    throw new JukeboxError('ERR_CODES', `${path}: level_${level} has dtype ${arr.dtype}; codes must be integers`);
  }
  if ((arr.shape.length !== 1 && arr.shape.length !== 2) || arr.shape.includes(0)) {
    throw new JukeboxError('ERR_CODES', `${path}: level_${level} must have shape (batch, T) or (T,) with no empty axis, got (${arr.shape.join(', ')})`);
  }
  const [n, t] = arr.shape.length === 2 ? arr.shape : [1, arr.shape[0]];
  const data = new Int32Array(n * t);
  for (let i = 0; i < n * t; i++) {
    const v = Number(arr.data[i]);
    if (v < -0x80000000 || v > 0x7fffffff) {
      throw new JukeboxError('ERR_CODES', `${path}: level_${level}[${i}] = ${String(arr.data[i])} is not a valid code`);
    }
    data[i] = v;
  }
  return { n, t, data };
}

/** out.wav for one clip; out_0.wav ... out_{N-1}.wav for a batch. */
export function batchOutputPaths(output: string, n: number): string[] {
  if (n === 1) return [output];
  const ext = extname(output) || '.wav';
  const stem = join(dirname(output), basename(output, extname(output)));
  return Array.from({ length: n }, (_, i) => `${stem}_${i}${ext}`);
}

export async function decodeCommand(a: DecodeArgs, log: Log): Promise<void> {
  const backend = engineBackend(a.backend);
  log(`backend: ${backend.reason}`);
  const codes = readLevelCodes(a.codes, a.level);
  const vq = await loadVQVAE(a.vqvae, { backend });
  try {
    if (a.level >= vq.levels) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `--level ${a.level}: ${a.vqvae} has levels 0..${vq.levels - 1}`);
    }
    const audio = await withBar('decode', (onProgress) => vq.decode(codes, a.level, { onProgress }));
    const paths = batchOutputPaths(a.output, audio.length);
    for (let i = 0; i < audio.length; i++) await writeAudio(paths[i], audio[i], vq.sampleRate, a.format);
    log(`wrote ${paths.join(', ')} (${(audio[0].length / vq.sampleRate).toFixed(3)} s at ${vq.sampleRate} Hz, ${a.format})`);
  } finally {
    vq.dispose();
  }
}

export interface ConvertArgs {
  input: string;
  output: string;
  preset?: string;
  config?: string;
  vqvae?: string;
  artistIds?: string;
  genreIds?: string;
  dtype?: WeightDtype;
}

export async function convertCommand(a: ConvertArgs, log: Log): Promise<void> {
  const bar = progressBar('convert');
  try {
    const r = await convertCheckpoint(a.input, a.output, { ...a, onProgress: (d, t) => bar.update(t ? d / t : 1) });
    bar.stop();
    if (r.placeholders.length) log(`note: ignored non-weight objects in the checkpoint: ${r.placeholders.join(', ')}`);
    if (r.unrecognised.length) log(`note: kept as metadata only, not names the original defines: ${r.unrecognised.join(', ')}`);
    const dtypes = Object.entries(r.dtypes).map(([d, n]) => `${n} ${d}`).join(', ');
    log(`wrote ${a.output}: ${r.kind}, ${r.tensors} tensors (${dtypes}), ${(r.bytes / 1e6).toFixed(1)} MB read${r.preset ? `, preset ${r.preset}` : ''}`);
  } finally {
    bar.stop();
  }
}

export interface GenerateArgs {
  /** A model folder; without it and without vqvae, the package's default model. */
  model?: string;
  vqvae?: string;
  priors: (string | undefined)[];
  output: string;
  seconds: number;
  totalSeconds?: number;
  samples: number;
  artist?: string;
  genre?: string;
  lyrics?: string;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  levels?: number[];
  prompt?: string;
  promptSeconds?: number;
  /** An .npz of level_L code arrays (from encode or a previous run) to continue / upsample. */
  codes?: string;
  resume: boolean;
  allowUnknown: boolean;
  format: 's16' | 'f32';
  backend?: Backend;
}

/** What `generate` and `submit` share: the sampling settings and where the output goes. */
export type SamplingArgs = Pick<
  GenerateArgs,
  'output' | 'seconds' | 'totalSeconds' | 'samples' | 'artist' | 'genre' | 'lyrics' | 'temperature' | 'topK' | 'topP' | 'seed' |
  'levels' | 'prompt' | 'promptSeconds' | 'codes' | 'allowUnknown' | 'format'
>;

/** Those settings from a command's parsed options (the lyrics read from --lyrics-file when given). */
export function samplingArgs(o: Record<string, unknown>): SamplingArgs {
  return {
    output: o.output as string,
    seconds: o.seconds as number,
    totalSeconds: o.totalSeconds as number | undefined,
    samples: o.samples as number,
    artist: o.artist as string | undefined,
    genre: o.genre as string | undefined,
    lyrics: o.lyricsFile ? readFileSync(o.lyricsFile as string, 'utf8') : (o.lyrics as string | undefined),
    temperature: o.temperature as number | undefined,
    topK: o.topK as number | undefined,
    topP: o.topP as number | undefined,
    seed: o.seed as number | undefined,
    levels: o.levels as number[] | undefined,
    prompt: o.prompt as string | undefined,
    promptSeconds: o.promptSeconds as number | undefined,
    codes: o.codes as string | undefined,
    allowUnknown: o.allowUnknown === true,
    format: o.format as 's16' | 'f32',
  };
}

export async function generateCommand(a: GenerateArgs, log: Log, signal?: AbortSignal): Promise<void> {
  const explicit = a.vqvae !== undefined || a.priors.some((p) => p);
  if (explicit && a.model !== undefined) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'give either --model or --vqvae with the priors, not both');
  }
  if (explicit && (!a.vqvae || a.priors.every((p) => !p))) {
    throw new JukeboxError(
      'ERR_INVALID_ARGUMENT',
      'pass --vqvae and at least one prior (--top, --upsampler-1, --upsampler-0), converted with "jukebox convert" (or --model DIR)',
    );
  }
  const jb = explicit
    ? await loadJukebox({ vqvae: a.vqvae, priors: a.priors, backend: a.backend, samples: a.samples })
    : await loadJukebox({ model: a.model, backend: a.backend, samples: a.samples });
  if (!explicit) log(`model: ${a.model ?? 'the default model (models/default)'}`);
  log(`backend: ${jb.backend.reason}`);
  try {
    let prompt: Float32Array | undefined;
    if (a.prompt) {
      const audio = await loadAudio(a.prompt, { sampleRate: jb.sampleRate });
      prompt = a.promptSeconds ? audio.samples.subarray(0, Math.round(a.promptSeconds * jb.sampleRate)) : audio.samples;
    }
    let codes: (Int32Array[] | undefined)[] | undefined;
    if (a.codes) {
      codes = [];
      for (let l = 0; l < jb.vqvae.levels; l++) {
        let c: { n: number; t: number; data: Int32Array } | undefined;
        try {
          c = readLevelCodes(a.codes, l);
        } catch (e) {
          if (!(e instanceof JukeboxError && /has no array/.test(e.message))) throw e;
        }
        codes.push(c ? Array.from({ length: c.n }, (_, b) => c!.data.slice(b * c!.t, (b + 1) * c!.t)) : undefined);
      }
    }
    const bar = progressBar('generate');
    let last: GenerateProgress | undefined;
    const result = await jb
      .generate({
        artist: a.artist,
        genre: a.genre,
        lyrics: a.lyrics,
        seconds: a.seconds,
        totalSeconds: a.totalSeconds,
        samples: a.samples,
        temperature: a.temperature,
        topK: a.topK,
        topP: a.topP,
        seed: a.seed,
        levels: a.levels,
        prompt,
        codes,
        allowUnknownLabels: a.allowUnknown,
        outputDir: a.output,
        resume: a.resume,
        signal,
        onProgress: (p) => {
          if (!last || last.level !== p.level || last.phase !== p.phase) {
            bar.stop();
            log(p.phase === 'sample' ? `level ${p.level}: sampling ${p.windows} window(s)` : `level ${p.level}: decoding`);
          }
          last = p;
          bar.update((p.window + p.token / Math.max(1, p.tokens)) / Math.max(1, p.windows));
        },
      })
      .finally(() => bar.stop());
    const paths = await writeRunAudio(a.output, result, a.format);
    log(`wrote ${paths.length} WAV file(s) and the codes of every level to ${a.output} (seed ${result.seed})`);
  } finally {
    jb.dispose();
  }
}

// `jukebox score` lives in its own file; re-exported so main.ts and callers keep one import.
export { scoreCommand, type ScoreArgs } from './score-command.js';
