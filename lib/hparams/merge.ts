/**
 * Hyperparameters for a converted model come from, later winning: a preset, the
 * checkpoint's own `hps` entry, and a JSON config file (which may name its own preset).
 */
import { readFileSync } from 'node:fs';
import { JukeboxError } from '../errors.js';
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

function isHparamValue(v: unknown): v is HparamValue {
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return true;
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

/** Keeps the model-structure entries of a checkpoint's `hps` (it also holds paths, seeds...). */
export function hparamsFromCheckpoint(hps: Record<string, unknown> | undefined): Hparams {
  const out: Hparams = {};
  if (!hps) return out;
  for (const [k, v] of Object.entries(hps)) {
    if (KNOWN_HPARAMS.has(k) && isHparamValue(v)) out[k] = Array.isArray(v) ? [...v] : v;
  }
  return out;
}

/** Reads a config file: a JSON object of original hyperparameter names, optionally "preset". */
export function readConfigFile(path: string): { preset?: PresetName; values: Hparams } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new JukeboxError('ERR_HPARAMS', `${path}: not a readable JSON file (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new JukeboxError('ERR_HPARAMS', `${path}: expected a JSON object of hyperparameters`);
  }
  const values: Hparams = {};
  let presetName: PresetName | undefined;
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k === 'preset') {
      if (typeof v !== 'string' || !isPresetName(v)) {
        throw new JukeboxError(
          'ERR_HPARAMS',
          `${path}: "preset" must be one of ${PRESET_NAMES.join(', ')}; got ${JSON.stringify(v)}`,
        );
      }
      presetName = v;
      continue;
    }
    if (!KNOWN_HPARAMS.has(k)) {
      throw new JukeboxError('ERR_HPARAMS', `${path}: unknown hyperparameter "${k}" (use the original Jukebox names)`);
    }
    if (!isHparamValue(v)) {
      throw new JukeboxError('ERR_HPARAMS', `${path}: hyperparameter "${k}" has an unsupported value ${JSON.stringify(v)}`);
    }
    values[k] = v;
  }
  return { preset: presetName, values };
}

export interface HparamSources {
  preset?: string;
  checkpointHps?: Record<string, unknown>;
  configPath?: string;
}

/** preset < checkpoint hps < config file. The config's own "preset" replaces the base preset. */
export function mergeHparams(src: HparamSources): { hparams: Hparams; preset?: PresetName } {
  const config = src.configPath ? readConfigFile(src.configPath) : undefined;
  const name = config?.preset ?? src.preset;
  if (name !== undefined && !isPresetName(name)) {
    throw new JukeboxError('ERR_HPARAMS', `unknown preset "${name}"; expected one of ${PRESET_NAMES.join(', ')}`);
  }
  const base = name ? preset(name) : defaults();
  return {
    hparams: { ...base, ...hparamsFromCheckpoint(src.checkpointHps), ...(config?.values ?? {}) },
    preset: name,
  };
}
