/**
 * `jukebox convert`: an original .pth.tar checkpoint to the engine's .safetensors, with the
 * hyperparameters (original names) in the header metadata. Nothing from the checkpoint is
 * executed (lib/checkpoint), and the weights are checked against the hyperparameters
 * before anything is written.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { streamTensorData, type SafetensorsWriteTensor, writeSafetensors } from './checkpoint/index.js';
import {
  convertElements, convertStream, INT8_SCALE_SUFFIX, int8Axis, int8Quantize, int8Scales, int8ScaleShape, isWeightDtype, targetDtype, WEIGHT_DTYPES,
  type WeightDtype,
} from './checkpoint/dtype-convert.js';
import { DTYPE_SIZES } from './checkpoint/safetensors.js';
import { JukeboxError, shortJson } from './errors.js';
import { mergeHparams } from './hparams/merge.js';
import { isPresetName, presetKind, PRESET_NAMES, splitByKind, type Hparams } from './hparams/presets.js';
import { META, FORMAT_TAG, detectKind, openModelFile, storedHparams, type ModelFile, type ModelKind } from './model-file.js';
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
  /**
   * Weight dtype of the output (default: as stored): tensors of 2+ dimensions take it,
   * vectors keep theirs ('f32' widens everything); 'int8' quantises a prior's transformer
   * matrices and x_out only (per-output-channel scales beside them) and leaves a VQ-VAE as
   * stored; see lib/checkpoint/dtype-convert.ts. With a converted .safetensors as input,
   * only the dtype changes.
   */
  dtype?: WeightDtype;
  /** Bytes read so far, and the total. */
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
  /** Tensors written per dtype. */
  dtypes: Record<string, number>;
}

export async function convertCheckpoint(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if ((opts.artistIds || opts.genreIds) && opts.vqvae === undefined) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', 'artist/genre id files belong to a prior: convert the prior with --vqvae');
  }
  if (opts.preset !== undefined && !isPresetName(opts.preset)) {
    throw new JukeboxError('ERR_HPARAMS', `unknown preset "${opts.preset}"; expected one of ${PRESET_NAMES.join(', ')}`);
  }
  if (opts.dtype !== undefined && !isWeightDtype(opts.dtype)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `--dtype must be one of ${WEIGHT_DTYPES.join(', ')}; got ${shortJson(opts.dtype)}`);
  }
  const file = openModelFile(input);
  if (file.format === 'safetensors') {
    if (opts.dtype === undefined) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${input} is already a .safetensors file; convert takes an original .pth.tar checkpoint (or a converted file with --dtype to change its weights' dtype)`);
    }
    if (opts.preset || opts.config || opts.vqvae || opts.artistIds || opts.genreIds) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${input} is a converted file: it keeps its hyperparameters and vocabulary, and only --dtype applies`);
    }
    return redtypeSafetensors(file, output, opts.dtype, opts.onProgress);
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

  if (opts.dtype) metadata[META.dtype] = JSON.stringify(dtypeNote(opts.dtype));
  const { tensors, total } = outputTensors(file, opts.dtype, (name) => streamTensorData(input, file.torch!.stateDict.get(name)!), opts.onProgress);
  await writeSafetensors(output, tensors, metadata);
  return {
    kind, tensors: tensors.length, bytes: total, hparams: structureHparams, preset, placeholders: file.torch?.placeholders ?? [],
    unrecognised: Object.keys(unrecognised), dtypes: countDtypes(tensors),
  };
}

/** What --dtype did, for the metadata (and `jukebox info`). */
function dtypeNote(dtype: WeightDtype): { requested: WeightDtype; rule: string } {
  if (dtype === 'int8') {
    return { requested: dtype, rule: `transformer matrices and x_out int8 with per-output-channel F32 scales in <key>${INT8_SCALE_SUFFIX}; embeddings, vectors and convolutions as stored` };
  }
  return { requested: dtype, rule: dtype === 'f32' ? 'every tensor f32' : `tensors of 2+ dimensions ${dtype}, vectors as stored` };
}

function countDtypes(tensors: readonly SafetensorsWriteTensor[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tensors) out[t.dtype] = (out[t.dtype] ?? 0) + 1;
  return out;
}

/** The axis of an int8 weight's channels, judged from its scale tensor's shape ([1, out] or [rows, 1]). */
function scaleAxis(shape: readonly number[], scaleShape: readonly number[]): 0 | 1 {
  return scaleShape.length === 2 && scaleShape[0] === 1 && scaleShape[1] === shape[1] ? 1 : 0;
}

/**
 * The tensors to write, each streamed from `read(name)` and re-encoded when --dtype says so.
 * int8 (lib/checkpoint/dtype-convert.ts): a quantised weight is read twice, once for its
 * channels' scales and once to quantise, so no tensor is ever held whole in memory; its
 * scales go beside it as `<key>.__scale`. An int8 input (a file converted before) is copied
 * as it is for int8, or dequantised (q * scale) for a float dtype.
 */
function outputTensors(
  file: ModelFile,
  dtype: WeightDtype | undefined,
  read: (name: string) => AsyncIterable<Uint8Array>,
  onProgress?: (done: number, total: number) => void,
): { tensors: SafetensorsWriteTensor[]; total: number } {
  let total = 0, done = 0;
  const counted = async function* (name: string) {
    for await (const chunk of read(name)) {
      done += chunk.length;
      onProgress?.(done, total);
      yield chunk;
    }
  };
  const tensors: SafetensorsWriteTensor[] = [];
  for (const [name, t] of file.tensors) {
    const label = `${file.path}: tensor ${name}`;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (name.endsWith(INT8_SCALE_SUFFIX) && file.tensors.get(name.slice(0, -INT8_SCALE_SUFFIX.length))?.dtype === 'I8') continue; // with its weight
    const scaleInfo = t.dtype === 'I8' ? file.tensors.get(name + INT8_SCALE_SUFFIX) : undefined;
    if (t.dtype === 'I8' && scaleInfo && t.shape.length === 2) {
      const axis = scaleAxis(t.shape, scaleInfo.shape);
      total += t.nbytes + scaleInfo.nbytes;
      if (dtype === 'int8' || dtype === undefined) {
        tensors.push({ name: name + INT8_SCALE_SUFFIX, dtype: scaleInfo.dtype, shape: scaleInfo.shape, nbytes: scaleInfo.nbytes, source: () => counted(name + INT8_SCALE_SUFFIX) });
        tensors.push({ name, dtype: 'I8', shape: t.shape, nbytes: t.nbytes, source: () => counted(name) });
        continue;
      }
      const to = targetDtype('F32', t.shape, dtype, name);
      tensors.push({
        name, dtype: to, shape: t.shape, nbytes: numel * DTYPE_SIZES[to],
        source: async function* () {
          const sb = scaleInfo.read();
          const scales = new Float32Array(new Uint8Array(sb).buffer);
          done += sb.length;
          const cols = t.shape[1]!;
          let i = 0;
          for await (const chunk of counted(name)) {
            const q = new Int8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            const f = new Float32Array(q.length);
            for (let e = 0; e < q.length; e++, i++) f[e] = q[e]! * scales[axis === 1 ? i % cols : Math.floor(i / cols)]!;
            yield convertElements(new Uint8Array(f.buffer), 'F32', to, label);
          }
        },
      });
      continue;
    }
    const to = targetDtype(t.dtype, t.shape, dtype, name);
    if (to === 'I8') {
      const axis = int8Axis(name)!;
      const scaleShape = int8ScaleShape(t.shape, axis);
      total += 2 * t.nbytes; // read twice
      let scales: Promise<Float32Array> | undefined;
      const getScales = () => (scales ??= int8Scales(counted(name), t.dtype, t.shape, axis, label));
      tensors.push({
        name: name + INT8_SCALE_SUFFIX, dtype: 'F32', shape: scaleShape, nbytes: 4 * scaleShape[0]! * scaleShape[1]!,
        source: async function* () {
          const sc = await getScales();
          yield Buffer.from(sc.buffer, sc.byteOffset, sc.byteLength);
        },
      });
      tensors.push({
        name, dtype: 'I8', shape: t.shape, nbytes: numel,
        source: async function* () {
          yield* int8Quantize(counted(name), t.dtype, t.shape, axis, await getScales(), label);
        },
      });
      continue;
    }
    total += t.nbytes;
    tensors.push({
      name,
      dtype: to,
      shape: t.shape,
      nbytes: numel * DTYPE_SIZES[to],
      source: () => convertStream(counted(name), t.dtype, to, label),
    });
  }
  return { tensors, total };
}

/** A converted file with its weights in another dtype; metadata kept, the dtype recorded. */
async function redtypeSafetensors(file: ModelFile, output: string, dtype: WeightDtype, onProgress?: (done: number, total: number) => void): Promise<ConvertResult> {
  const kind = detectKind(file);
  if (!kind) throw new JukeboxError('ERR_MODEL_KIND', `${file.path} holds no Jukebox model (no jukebox.kind metadata)`);
  const header = file.safetensors!;
  const metadata = { ...file.metadata, [META.dtype]: JSON.stringify(dtypeNote(dtype)) };
  const { tensors, total } = outputTensors(file, dtype, (name) => streamFileRange(file.path, header.dataOffset + header.tensors.get(name)!.begin, file.tensors.get(name)!.nbytes), onProgress);
  await writeSafetensors(output, tensors, metadata);
  return { kind, tensors: tensors.length, bytes: total, hparams: storedHparams(file) ?? {}, placeholders: [], unrecognised: [], dtypes: countDtypes(tensors) };
}

/** Bytes [offset, offset + nbytes) of a file in chunks (a weight of a converted file). */
async function* streamFileRange(path: string, offset: number, nbytes: number, chunkBytes = 64 << 20): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r').catch((cause: Error) => {
    throw new JukeboxError('ERR_IO', `${path}: cannot open: ${cause.message}`, { cause });
  });
  try {
    for (let done = 0; done < nbytes; ) {
      const buf = Buffer.allocUnsafe(Math.min(chunkBytes, nbytes - done));
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset + done);
      if (bytesRead !== buf.length) throw new JukeboxError('ERR_CHECKPOINT_TRUNCATED', `${path}: ends inside a tensor's data (at byte ${offset + done + bytesRead})`);
      done += bytesRead;
      yield buf;
    }
  } finally {
    await fh.close();
  }
}
