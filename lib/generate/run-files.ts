/**
 * A generation's output folder: run.json (the settings), codes_level_L.npz written after
 * every window (atomically), and the decoded WAVs. Resuming reads the codes back and
 * refuses when the settings differ, since the result would then not equal an
 * uninterrupted run.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JukeboxError } from '../errors.js';
import { encodeNpz, readNpz } from '../npz.js';
import { writeAudio } from '../audio/decode.js';
import type { WavEncoding } from '../audio/wav.js';

export interface RunState {
  version: 1;
  seed: number;
  samples: number;
  sampleLength: number;
  totalLength: number;
  artist: string | number | null;
  genre: string | number | (string | number)[] | null;
  lyrics: string | null;
  temperature: number | number[];
  topK: number;
  topP: number;
  levels: number[];
  hopFractions: number[];
  primed: number;
  /** generate()'s sampleOffset: this run's sample 0 is sample `sampleOffset` of the seed's streams (absent when 0). */
  sampleOffset?: number;
  /** The backend that ran it ('cpu' or 'cuda'; absent in folders from older versions). */
  backend?: string;
  /** The model that made the run (absent in folders from older versions). */
  model?: RunModel;
  /** Set by the sample explorer on runs it made from another run's sample. */
  parent?: { run: string; sample: number; action: 'continue' | 'upsample'; fromSeconds: number };
}

/** Where a run's model came from: a model folder, or a VQ-VAE and priors given one by one. */
export interface RunModel {
  name: string;
  /** The model folder (model.json), when the model came from one. */
  dir?: string;
  vqvae: string;
  /** Bottom level first; null where no prior was loaded. */
  priors: (string | null)[];
}

export function codesPath(dir: string, level: number): string {
  return join(dir, `codes_level_${level}.npz`);
}

export function writeLevelCodes(dir: string, level: number, codes: Int32Array[]): void {
  const t = codes[0].length;
  const data = new Int32Array(codes.length * t);
  codes.forEach((c, b) => data.set(c, b * t));
  const path = codesPath(dir, level);
  writeFileSync(`${path}.tmp`, encodeNpz({ [`level_${level}`]: { dtype: 'int32', shape: [codes.length, t], data } }));
  renameSync(`${path}.tmp`, path); // a crash mid-write never leaves half a file
}

export function writeRunState(dir: string, s: RunState): void {
  writeFileSync(join(dir, 'run.json'), JSON.stringify(s, null, 2) + '\n');
}

/** Checks the folder's run.json against this run and loads each level's saved codes. */
export function readRunState(dir: string, s: RunState, levels: number): (Int32Array[] | undefined)[] {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) throw new JukeboxError('ERR_IO', `${dir} has no run.json to resume from`);
  let saved: RunState;
  try {
    saved = JSON.parse(readFileSync(path, 'utf8')) as RunState;
  } catch (e) {
    throw new JukeboxError('ERR_IO', `${path} is not valid JSON (${(e as Error).message})`);
  }
  for (const k of ['seed', 'samples', 'sampleLength', 'totalLength', 'artist', 'genre', 'lyrics', 'temperature', 'topK', 'topP', 'hopFractions', 'primed'] as const) {
    if (JSON.stringify(saved[k]) !== JSON.stringify(s[k])) {
      throw new JukeboxError(
        'ERR_INVALID_ARGUMENT',
        `cannot resume ${dir}: ${k} was ${JSON.stringify(saved[k])}, now ${JSON.stringify(s[k])} (resume with the same settings)`,
      );
    }
  }
  if ((saved.sampleOffset ?? 0) !== (s.sampleOffset ?? 0)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `cannot resume ${dir}: sampleOffset was ${saved.sampleOffset ?? 0}, now ${s.sampleOffset ?? 0} (resume with the same settings)`);
  }
  return readSavedCodes(dir, levels, s.samples);
}

/**
 * Every level's codes saved in an output folder (codes[level][sample]; undefined where a
 * level has no file), checked to hold int32 (samples, T); `samples` undefined accepts any count.
 */
export function readSavedCodes(dir: string, levels: number, samples?: number): (Int32Array[] | undefined)[] {
  const out: (Int32Array[] | undefined)[] = [];
  for (let l = 0; l < levels; l++) {
    const p = codesPath(dir, l);
    if (!existsSync(p)) {
      out.push(undefined);
      continue;
    }
    const arr = readNpz(p)[`level_${l}`];
    if (!arr || arr.dtype !== 'int32' || arr.shape.length !== 2 || (samples !== undefined && arr.shape[0] !== samples)) {
      throw new JukeboxError('ERR_CODES', `${p} does not hold int32 codes of shape (${samples ?? 'samples'}, T)`);
    }
    const [n, t] = arr.shape;
    const data = arr.data as Int32Array;
    out.push(Array.from({ length: n }, (_, b) => data.slice(b * t, (b + 1) * t)));
  }
  return out;
}

/** The WAV of one sample at one level: sample_i.wav for the lowest level sampled, level_L_sample_i.wav above it. */
export function sampleWavName(level: number, sample: number, lowest: number): string {
  return level === lowest ? `sample_${sample}.wav` : `level_${level}_sample_${sample}.wav`;
}

/** Writes the decoded audio of every sampled level; returns the paths. */
export async function writeRunAudio(
  dir: string,
  r: { levels: number[]; levelAudio: (Float32Array[] | undefined)[]; sampleRate: number },
  format: WavEncoding,
): Promise<string[]> {
  const lowest = r.levels[r.levels.length - 1];
  const paths: string[] = [];
  for (const level of r.levels) {
    const audio = r.levelAudio[level]!;
    for (let i = 0; i < audio.length; i++) {
      const path = join(dir, sampleWavName(level, i, lowest));
      await writeAudio(path, audio[i], r.sampleRate, format);
      paths.push(path);
    }
  }
  return paths;
}
