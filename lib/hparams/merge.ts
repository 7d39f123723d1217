/**
 * Hyperparameters for a converted model come from, later winning: a preset, the
 * checkpoint's own `hps` entry, and a JSON config file (which may name its own preset).
 */
import { readFileSync } from 'node:fs';
import { JukeboxError, shortJson } from '../errors.js';
import {
  KNOWN_HPARAMS,
  PRESET_NAMES,
  defaults,
  isPresetName,
  preset,
  type HparamValue,
  type Hparams,
  type PresetName,
} from './presets.js';
import { closestHparam, ORIGINAL_HPARAMS } from './original.js';

function isHparamValue(v: unknown): v is HparamValue {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return true;
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

/**
 * Hyperparameters sorted by what they do here: `values` shape the model (KNOWN_HPARAMS),
 * `other` are the original's names that do not (training, sampling, data, run-time entries
 * such as argv), kept as metadata; `unrecognised` are names the original never had.
 */
export interface SortedHparams {
  values: Hparams;
  other: Record<string, unknown>;
  unrecognised: Record<string, unknown>;
}

/** "unknown hyperparameter ...", with the closest original name when there is one. */
export function unknownHparamMessage(name: string): string {
  const near = closestHparam(name);
  return `unknown hyperparameter "${name}"${near ? ` (did you mean "${near}"?)` : ''}: not a name the original Jukebox defines (jukebox/hparams.py)`;
}

const MAX_VALUE_DEPTH = 32;

/** Whether a JSON value nests deeper than MAX_VALUE_DEPTH (walked without recursion). */
function tooDeep(v: unknown): boolean {
  const todo: [unknown, number][] = [[v, 0]];
  while (todo.length > 0) {
    const [x, d] = todo.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d >= MAX_VALUE_DEPTH) return true;
    for (const c of Object.values(x as object)) todo.push([c, d + 1]);
  }
  return false;
}

function sortHparams(entries: [string, unknown][], source: string): SortedHparams {
  const out: SortedHparams = { values: {}, other: {}, unrecognised: {} };
  for (const [k, v] of entries) {
    if (KNOWN_HPARAMS.has(k)) {
      if (!isHparamValue(v)) throw new JukeboxError('ERR_HPARAMS', `${source}: hyperparameter "${k}" has an unsupported value ${shortJson(v)}`);
      out.values[k] = Array.isArray(v) ? [...v] : v;
    } else {
      // Kept as metadata, so written back as JSON: a value nested deeper than any setting
      // (a hostile file's [[[[...]]]]) would overflow JSON.stringify's stack.
      if (tooDeep(v)) throw new JukeboxError('ERR_HPARAMS', `${source}: hyperparameter "${k}" is nested deeper than ${MAX_VALUE_DEPTH} levels`);
      (ORIGINAL_HPARAMS.has(k) ? out.other : out.unrecognised)[k] = v;
    }
  }
  return out;
}

/**
 * A checkpoint's `hps`. Names the original never had are not refused here: the official
 * files were written by training code that is not public (reference §e.1), so their `hps`
 * may hold names this list lacks, and a user cannot edit the file. They are kept apart as
 * `unrecognised` (stored and shown by `jukebox info`), and never shape the model.
 */
export function hparamsFromCheckpoint(hps: Record<string, unknown> | undefined, source = 'checkpoint hps'): SortedHparams {
  if (!hps) return { values: {}, other: {}, unrecognised: {} };
  return sortHparams(Object.entries(hps), source);
}

/**
 * Reads a config file: a JSON object of the original's hyperparameter names (any of them:
 * structure, training, sampling, data), optionally "preset". A name the original never had
 * is refused with the closest known name suggested.
 */
export function readConfigFile(path: string): { preset?: PresetName } & SortedHparams {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new JukeboxError('ERR_HPARAMS', `${path}: not a readable JSON file (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new JukeboxError('ERR_HPARAMS', `${path}: expected a JSON object of hyperparameters`);
  }
  let presetName: PresetName | undefined;
  const entries: [string, unknown][] = [];
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'preset') {
      if (typeof v !== 'string' || !isPresetName(v)) {
        throw new JukeboxError(
          'ERR_HPARAMS',
          `${path}: "preset" must be one of ${PRESET_NAMES.join(', ')}; got ${shortJson(v)}`,
        );
      }
      presetName = v;
      continue;
    }
    entries.push([k, v]);
  }
  const sorted = sortHparams(entries, path);
  const unknown = Object.keys(sorted.unrecognised);
  if (unknown.length > 0) throw new JukeboxError('ERR_HPARAMS', `${path}: ${unknownHparamMessage(unknown[0]!)}${unknown.length > 1 ? ` (and ${unknown.length - 1} more: ${unknown.slice(1, 6).join(', ')})` : ''}`);
  return { preset: presetName, ...sorted };
}

export interface HparamSources {
  preset?: string;
  checkpointHps?: Record<string, unknown>;
  configPath?: string;
  /** Names the errors use for the checkpoint (its path). */
  checkpointLabel?: string;
}

export interface MergedHparams {
  hparams: Hparams;
  preset?: PresetName;
  /** The original's non-structural names (checkpoint hps < config file). */
  other: Record<string, unknown>;
  /** Names in the checkpoint's hps that the original never had. */
  unrecognised: Record<string, unknown>;
  /** Structural names the checkpoint's hps or the config gave (the rest are preset values). */
  given: string[];
}

/** preset < checkpoint hps < config file. The config's own "preset" replaces the base preset. */
export function mergeHparams(src: HparamSources): MergedHparams {
  const config = src.configPath ? readConfigFile(src.configPath) : undefined;
  const name = config?.preset ?? src.preset;
  if (name !== undefined && !isPresetName(name)) {
    throw new JukeboxError('ERR_HPARAMS', `unknown preset "${name}"; expected one of ${PRESET_NAMES.join(', ')}`);
  }
  const base = name ? preset(name) : defaults();
  const ckpt = hparamsFromCheckpoint(src.checkpointHps, src.checkpointLabel ? `${src.checkpointLabel} (hps)` : undefined);
  return {
    hparams: { ...base, ...ckpt.values, ...(config?.values ?? {}) },
    preset: name,
    other: { ...ckpt.other, ...(config?.other ?? {}) },
    unrecognised: ckpt.unrecognised,
    given: [...new Set([...Object.keys(ckpt.values), ...Object.keys(config?.values ?? {})])],
  };
}
