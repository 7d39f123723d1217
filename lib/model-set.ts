/**
 * A model set: one folder holding a VQ-VAE and its priors, described by `model.json`:
 *
 *   { "format": "jukebox-model-set/1", "name": "...", "vqvae": "vqvae.safetensors",
 *     "priors": { "2": "prior_level_2.safetensors", "1": "...", "0": "..." },
 *     "card": "MODEL_CARD.md", "defaults": { "temperature": 0.99, ... } }
 *
 * The package ships one (models/default, trained by train/ on free music); generate() and
 * `jukebox generate` use it when no model is named. Paths in model.json are relative to the
 * folder and may not leave it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JukeboxError } from './errors.js';

export const MODEL_SET_FORMAT = 'jukebox-model-set/1';
export const MODEL_SET_FILE = 'model.json';

/** Sampling settings a model set recommends; explicit options win. */
export interface ModelSetDefaults {
  temperature?: number;
  topK?: number;
  topP?: number;
}

export interface ModelSet {
  dir: string;
  name: string;
  /** Absolute paths. */
  vqvae: string;
  /** One per level, bottom (level 0) first; undefined where the set has no prior. */
  priors: (string | undefined)[];
  card?: string;
  defaults: ModelSetDefaults;
}

/** models/default of this package (dist/model-set.js and lib/model-set.ts both sit one level below the root). */
export function defaultModelDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'default');
}

function bad(dir: string, what: string): never {
  throw new JukeboxError('ERR_MODEL_SET', `${join(dir, MODEL_SET_FILE)}: ${what}`);
}

/** A file named by model.json: relative, inside the folder, present. */
function member(dir: string, value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') bad(dir, `${what} must be a file name`);
  if (isAbsolute(value)) bad(dir, `${what} "${value}" must be relative to the model folder`);
  const path = resolve(dir, normalize(value));
  const rel = relative(dir, path);
  if (rel.startsWith('..') || rel.includes(`..${sep}`) || isAbsolute(rel)) bad(dir, `${what} "${value}" points outside the model folder`);
  if (!existsSync(path)) bad(dir, `${what} "${value}" does not exist`);
  return path;
}

function numberOr(dir: string, v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(dir, `defaults.${what} must be a number`);
  return v;
}

/** Reads and checks a model set folder (or the model.json in it). */
export function readModelSet(path: string): ModelSet {
  const dir = resolve(path.endsWith('.json') ? dirname(path) : path);
  const file = join(dir, MODEL_SET_FILE);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new JukeboxError('ERR_MODEL_SET', `model folder ${dir} does not exist`);
  }
  if (!existsSync(file)) {
    throw new JukeboxError('ERR_MODEL_SET', `${dir} has no ${MODEL_SET_FILE}: a model folder holds model.json naming its VQ-VAE and priors`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new JukeboxError('ERR_MODEL_SET', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) bad(dir, 'must hold a JSON object');
  if (json.format !== MODEL_SET_FORMAT) bad(dir, `format must be "${MODEL_SET_FORMAT}", got ${JSON.stringify(json.format)}`);
  const vqvae = member(dir, json.vqvae, 'vqvae');
  const priorsIn = json.priors;
  if (priorsIn === null || typeof priorsIn !== 'object' || Array.isArray(priorsIn)) bad(dir, 'priors must map levels ("0", "1", ...) to files');
  const priors: (string | undefined)[] = [];
  for (const [level, name] of Object.entries(priorsIn as Record<string, unknown>)) {
    const l = Number(level);
    if (!Number.isInteger(l) || l < 0 || l > 15 || String(l) !== level) bad(dir, `priors: "${level}" is not a level`);
    priors[l] = member(dir, name, `priors.${level}`);
  }
  const d = (json.defaults ?? {}) as Record<string, unknown>;
  if (typeof d !== 'object' || Array.isArray(d)) bad(dir, 'defaults must be an object');
  return {
    dir,
    name: typeof json.name === 'string' ? json.name : dir,
    vqvae,
    priors: Array.from({ length: priors.length }, (_, i) => priors[i]),
    card: json.card === undefined ? undefined : member(dir, json.card, 'card'),
    defaults: {
      temperature: numberOr(dir, d.temperature, 'temperature'),
      topK: numberOr(dir, d.topK, 'topK'),
      topP: numberOr(dir, d.topP, 'topP'),
    },
  };
}

/** The package's default model set, with an error that says what to do when it is missing. */
export function defaultModelSet(): ModelSet {
  const dir = defaultModelDir();
  if (!existsSync(join(dir, MODEL_SET_FILE))) {
    throw new JukeboxError(
      'ERR_MODEL_SET',
      `the default model is missing from this installation (${dir}); reinstall the package, or pass --model DIR / --vqvae and the priors`,
    );
  }
  return readModelSet(dir);
}
