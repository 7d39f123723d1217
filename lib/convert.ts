/**
 * `jukebox convert`: an original .pth.tar checkpoint to the engine's .safetensors, with the
 * hyperparameters (original names) in the header metadata. Nothing from the checkpoint is
 * executed (lib/checkpoint), and the weights are checked against the hyperparameters
 * before anything is written.
 */
import { basename } from 'node:path';
import { streamTensorData, type SafetensorsWriteTensor, writeSafetensors } from './checkpoint/index.js';
import { JukeboxError } from './errors.js';
import { mergeHparams } from './hparams/merge.js';
import { isPresetName, presetKind, PRESET_NAMES, splitByKind, type Hparams } from './hparams/presets.js';
import { META, FORMAT_TAG, detectKind, openModelFile, storedHparams, type ModelKind } from './model-file.js';
import { vqvaeHparams } from './vqvae/hparams.js';
import { validateVQVAEFile } from './vqvae/vqvae.js';
import { checkTensors } from './vqvae/validate.js';
import { priorKeys } from './prior/layout.js';
import { priorStructure, type PriorStructure } from './prior/structure.js';
import { vocabularyFromFiles, type Vocabulary } from './labels/vocab.js';

/** Every id of the vocabulary must have an embedding row. */
function checkVocabulary(v: Vocabulary, s: PriorStructure, source: string): void {
  const max = (r: Record<string, number>) => Math.max(...Object.values(r));
  if (max(v.artists) >= s.labels.artistBins || max(v.genres) >= s.labels.genreBins) {
    throw new JukeboxError(
      'ERR_HPARAMS',
      `${source}: the id files name artist ids up to ${max(v.artists)} and genre ids up to ${max(v.genres)}, ` +
        `but the prior has ${s.labels.artistBins} artist and ${s.labels.genreBins} genre embeddings (wrong id files for this model?)`,
    );
  }
}

export interface ConvertOptions {
  /** Official hyperparameter set to start from. */
  preset?: string;
  /** JSON file of hyperparameters (original names); may name its own "preset". */
  config?: string;
  /** The converted VQ-VAE a prior is built against (required for priors). */
  vqvae?: string;
  /** Priors: the original's artist and genre id files (ids/v2_artist_ids.txt, ...), stored in the metadata. */
  artistIds?: string;
  genreIds?: string;
  /** Bytes written so far, and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertResult {
  kind: ModelKind;
  tensors: number;
  bytes: number;
  /** The structure stored (this kind's names only). */
  hparams: Hparams;
  preset?: string;
  placeholders: string[];
  /** Names in the checkpoint's hps that the original never had: stored apart, not used. */
  unrecognised: string[];
}

export async function convertCheckpoint(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if ((opts.artistIds || opts.genreIds) && opts.vqvae === undefined) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'artist/genre id files belong to a prior: convert the prior with --vqvae');
  }
  if (opts.preset !== undefined && !isPresetName(opts.preset)) {
    throw new JukeboxError('ERR_HPARAMS', `unknown preset "${opts.preset}"; expected one of ${PRESET_NAMES.join(', ')}`);
  }
  const file = openModelFile(input);
  if (file.format === 'safetensors') {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${input} is already a .safetensors file; convert takes an original .pth.tar checkpoint`);
  }
  const kind = detectKind(file);
  if (!kind) {
    throw new JukeboxError('ERR_MODEL_KIND', `${input}: the state dict holds neither a Jukebox VQ-VAE (encoders.*) nor a prior (prior.*, y_emb.*)`);
  }
  const { hparams, preset, other, unrecognised, given } = mergeHparams({
    preset: opts.preset ?? (kind === 'vqvae' ? 'vqvae' : undefined),
    checkpointHps: file.checkpointHps,
    configPath: opts.config,
    checkpointLabel: input,
  });
  if (preset && presetKind(preset) !== kind) {
    throw new JukeboxError('ERR_MODEL_KIND', `${input} holds a ${kind === 'vqvae' ? 'VQ-VAE' : 'prior'}, but preset "${preset}" describes a ${presetKind(preset) === 'vqvae' ? 'VQ-VAE' : 'prior'}`);
  }

  // The structure this kind of model is built from; the original's other names (the VQ-VAE
  // structure a prior's hps repeats, training and sampling settings) are kept beside it.
  const { own: structureHparams, rest } = splitByKind(hparams, kind);
  for (const [k, v] of Object.entries(structureHparams)) {
    // JSON has no inf/nan: written, such a value would come back as null and the file not load.
    const bad = typeof v === 'number' ? !Number.isFinite(v) : Array.isArray(v) && v.some((x) => !Number.isFinite(x));
    if (bad) throw new JukeboxError('ERR_HPARAMS', `${input}: hyperparameter ${k} = ${Array.isArray(v) ? `[${v.join(', ')}]` : v} is not a finite number`);
  }
  const givenNames = new Set(given);
  const kept: Record<string, unknown> = { ...Object.fromEntries(Object.entries(rest).filter(([k]) => givenNames.has(k))), ...other };
  const metadata: Record<string, string> = {
    [META.format]: FORMAT_TAG,
    [META.kind]: kind,
    [META.hparams]: JSON.stringify(structureHparams),
    [META.source]: JSON.stringify({ file: basename(input), format: file.format, step: file.torch?.step ?? null }),
  };
  if (preset) metadata[META.preset] = preset;
  if (Object.keys(kept).length > 0) metadata[META.otherHparams] = JSON.stringify(kept);
  if (Object.keys(unrecognised).length > 0) metadata[META.unrecognisedHparams] = JSON.stringify(unrecognised);

  if (kind === 'vqvae') {
    validateVQVAEFile(file, vqvaeHparams(hparams, input));
  } else {
    // A prior is built against its VQ-VAE (its hop lengths set tokens per sample and the
    // upsamplers' conditioning ratio), so the VQ-VAE's structure travels with it.
    if (!preset && !file.checkpointHps && !opts.config) {
      throw new JukeboxError('ERR_HPARAMS', `${input} is a prior with no hyperparameters inside; pass --preset (${PRESET_NAMES.filter((p) => p !== 'vqvae').join(', ')}) or --config`);
    }
    if (!opts.vqvae) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${input} is a prior: pass --vqvae with the converted VQ-VAE it was trained with`);
    }
    const vq = openModelFile(opts.vqvae);
    if (vq.format !== 'safetensors' || detectKind(vq) !== 'vqvae') {
      throw new JukeboxError('ERR_MODEL_KIND', `--vqvae ${opts.vqvae} must be a VQ-VAE converted with "jukebox convert"`);
    }
    const vqh = storedHparams(vq);
    if (!vqh) throw new JukeboxError('ERR_HPARAMS', `${opts.vqvae} has no jukebox.hparams metadata`);
    const structure = priorStructure(hparams, vqvaeHparams(vqh, opts.vqvae), input);
    checkTensors(file, priorKeys(structure), 'prior');
    metadata[META.vqvaeHparams] = JSON.stringify(vqh);
    if (opts.artistIds || opts.genreIds) {
      if (!opts.artistIds || !opts.genreIds) throw new JukeboxError('ERR_INVALID_ARGUMENT', 'give both --artist-ids and --genre-ids');
      const vocab = await vocabularyFromFiles(opts.artistIds, opts.genreIds, structure.labels.v3 ? 'v3' : 'v2');
      checkVocabulary(vocab, structure, input);
      metadata[META.vocab] = JSON.stringify(vocab);
    }
  }

  const total = [...file.tensors.values()].reduce((s, t) => s + t.nbytes, 0);
  let done = 0;
  const counted = (name: string) =>
    async function* () {
      const ref = file.torch!.stateDict.get(name)!;
      for await (const chunk of streamTensorData(input, ref)) {
        done += chunk.length;
        opts.onProgress?.(done, total);
        yield chunk;
      }
    };
  const tensors: SafetensorsWriteTensor[] = [...file.tensors].map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    nbytes: t.nbytes,
    source: counted(name),
  }));
  await writeSafetensors(output, tensors, metadata);
  return { kind, tensors: tensors.length, bytes: total, hparams: structureHparams, preset, placeholders: file.torch?.placeholders ?? [], unrecognised: Object.keys(unrecognised) };
}
