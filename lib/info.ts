/**
 * `jukebox info`: what a checkpoint holds, read without running anything from it.
 */
import { INT8_SCALE_SUFFIX } from './checkpoint/dtype-convert.js';
import { shortJson } from './errors.js';
import { ORIGINAL_HPARAMS } from './hparams/original.js';
import { KNOWN_HPARAMS, splitByKind, type Hparams } from './hparams/presets.js';
import { detectKind, META, openModelFile, storedHparams, type ModelFile } from './model-file.js';
import { priorStructure } from './prior/structure.js';
import { vqvaeHparams } from './vqvae/hparams.js';

export interface ModelInfo {
  path: string;
  format: ModelFile['format'];
  kind?: 'vqvae' | 'prior';
  tensors: number;
  parameters: number;
  bytes: number;
  dtypes: Record<string, number>;
  /** Torch files: the top-level entries, step, and ignored non-weight globals. */
  topLevelKeys?: string[];
  step?: number;
  placeholders?: string[];
  /** Hyperparameters stored in a converted file, or found in a checkpoint's hps. */
  hparams?: Record<string, unknown>;
  /** The original's names that do not shape the model (training, sampling, data settings). */
  otherHparams?: Record<string, unknown>;
  /** Names the original never had (a checkpoint's hps may hold some): kept, never used. */
  unrecognisedHparams?: Record<string, unknown>;
  vqvaeHparams?: Record<string, unknown>;
  preset?: string;
  /** `convert --dtype`: what was asked and the rule applied. */
  dtype?: { requested: string; rule: string };
  source?: unknown;
  /** A prior's artist and genre names (ids 0 = unknown left out), when it stores a vocabulary. */
  vocab?: { artists: string[]; genres: string[] };
  /** `convert --dtype int8`: the int8 matrices and their F32 scale tensors ("<key>.__scale"). */
  int8?: { matrices: number; scales: number };
  /** Per tensor; an int8 one names its scale tensor. */
  keys: { name: string; dtype: string; shape: number[]; scales?: string }[];
}

export function modelInfo(path: string): ModelInfo {
  const f = openModelFile(path);
  const dtypes: Record<string, number> = {};
  let parameters = 0, bytes = 0;
  const keys: ModelInfo['keys'] = [];
  for (const [name, t] of f.tensors) {
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    parameters += t.shape.reduce((a, b) => a * b, 1);
    bytes += t.nbytes;
    const scaleKey = name + INT8_SCALE_SUFFIX;
    keys.push({ name, dtype: t.dtype, shape: t.shape, ...(t.dtype === 'I8' && f.tensors.has(scaleKey) ? { scales: scaleKey } : {}) });
  }
  const info: ModelInfo = { path, format: f.format, kind: detectKind(f), tensors: f.tensors.size, parameters, bytes, dtypes, keys };
  const int8 = keys.filter((k) => k.scales).length;
  if (int8 > 0) info.int8 = { matrices: int8, scales: int8 };
  if (f.torch) {
    info.topLevelKeys = f.torch.topLevelKeys;
    info.step = f.torch.step;
    info.placeholders = f.torch.placeholders;
    info.hparams = f.checkpointHps;
    if (f.checkpointHps) {
      // What the checkpoint's hps holds, sorted the way convert stores it.
      const other: Record<string, unknown> = {}, unknown: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(f.checkpointHps)) {
        if (KNOWN_HPARAMS.has(k)) continue;
        (ORIGINAL_HPARAMS.has(k) ? other : unknown)[k] = v;
      }
      if (Object.keys(other).length > 0) info.otherHparams = other;
      if (Object.keys(unknown).length > 0) info.unrecognisedHparams = unknown;
    }
  } else {
    info.hparams = storedHparams(f);
    info.otherHparams = storedHparams(f, META.otherHparams);
    info.unrecognisedHparams = storedHparams(f, META.unrecognisedHparams);
    info.vqvaeHparams = storedHparams(f, META.vqvaeHparams);
    // A file whose structure could never load says so here too, with the same error the
    // commands that run it give (and before anything is sized from it).
    if (info.hparams && info.kind === 'vqvae') vqvaeHparams(info.hparams as Hparams, path);
    if (info.hparams && info.vqvaeHparams && info.kind === 'prior') {
      priorStructure(info.hparams as Hparams, vqvaeHparams(info.vqvaeHparams as Hparams, `${path} (VQ-VAE metadata)`), path);
    }
    info.preset = f.metadata[META.preset];
    if (f.metadata[META.dtype]) {
      try {
        info.dtype = JSON.parse(f.metadata[META.dtype]) as ModelInfo['dtype'];
      } catch {
        // only a description: an unreadable note is left out
      }
    }
    if (f.metadata[META.vocab]) {
      try {
        const v = JSON.parse(f.metadata[META.vocab]) as { artists?: Record<string, number>; genres?: Record<string, number> };
        const names = (r: Record<string, number> = {}) => Object.entries(r).filter(([, id]) => id > 0).sort((a, b) => a[1] - b[1]).map(([n]) => n);
        info.vocab = { artists: names(v.artists), genres: names(v.genres) };
      } catch {
        // an unreadable vocabulary is reported when the prior is loaded; info only describes
      }
    }
    if (f.metadata[META.source]) {
      try {
        info.source = JSON.parse(f.metadata[META.source]);
      } catch {
        info.source = f.metadata[META.source];
      }
    }
  }
  return info;
}

const SUMMARY_HPARAMS = [
  'levels', 'downs_t', 'strides_t', 'emb_width', 'l_bins', 'width', 'depth', 'hvqvae_multipliers', 'sr',
  'level', 'n_ctx', 'prior_width', 'prior_depth', 'heads', 'attn_order', 'blocks', 'y_bins', 'use_tokens', 'n_tokens',
];

/** A value in one short line (long lists and strings cut). */
function short(v: unknown): string {
  return shortJson(v, 40);
}

export function formatInfo(i: ModelInfo, allKeys = false): string {
  const lines: string[] = [];
  lines.push(`${i.path}`);
  lines.push(`  format:      ${i.format}`);
  lines.push(`  holds:       ${i.kind === 'vqvae' ? 'a Jukebox VQ-VAE' : i.kind === 'prior' ? 'a Jukebox prior' : 'unrecognised weights'}`);
  lines.push(`  tensors:     ${i.tensors} (${Object.entries(i.dtypes).map(([d, n]) => `${n} ${d}`).join(', ')})`);
  lines.push(`  parameters:  ${i.parameters.toLocaleString('en-US')} (${(i.bytes / 1e6).toFixed(1)} MB of weights)`);
  if (i.topLevelKeys) lines.push(`  entries:     ${i.topLevelKeys.join(', ')}`);
  if (i.step !== undefined) lines.push(`  step:        ${i.step}`);
  if (i.placeholders?.length) lines.push(`  ignored:     ${i.placeholders.join(', ')} (non-weight objects, not executed)`);
  if (i.preset) lines.push(`  preset:      ${i.preset}`);
  if (i.dtype) lines.push(`  dtype:       ${i.dtype.requested} at convert time (${i.dtype.rule})`);
  if (i.int8) lines.push(`  int8:        ${i.int8.matrices} matrices, each with its per-output-channel F32 scales (<key>${INT8_SCALE_SUFFIX}, counted among the tensors)`);
  if (i.source) lines.push(`  source:      ${shortJson(i.source)}`);
  if (i.hparams) {
    // A prior's own structure only: files exported before the split also carry the base
    // VQ-VAE defaults, which that prior never used (its VQ-VAE is the vqvae line below).
    const own = i.kind ? splitByKind(i.hparams as Hparams, i.kind).own : i.hparams;
    const shown = SUMMARY_HPARAMS.filter((k) => k in own).map((k) => `${k}=${shortJson(own[k])}`);
    lines.push(`  hparams:     ${shown.join(' ') || '(none of the structural ones)'}`);
  } else {
    lines.push('  hparams:     none stored (convert with --preset or --config)');
  }
  if (i.otherHparams) {
    const entries = Object.entries(i.otherHparams);
    const shown = entries.slice(0, 12).map(([k, v]) => `${k}=${short(v)}`);
    lines.push(`  other:       ${shown.join(' ')}${entries.length > 12 ? ` ... (${entries.length} in all; --json lists them)` : ''} (training/sampling settings of the original, kept as metadata)`);
  }
  if (i.unrecognisedHparams) {
    const names = Object.keys(i.unrecognisedHparams);
    lines.push(`  unknown:     ${names.slice(0, 12).join(', ')}${names.length > 12 ? `, ... (${names.length})` : ''} (not names the original defines; kept, not used)`);
  }
  if (i.vqvaeHparams) {
    const v = i.vqvaeHparams;
    lines.push(`  vqvae:       levels=${shortJson(v.levels)} downs_t=${shortJson(v.downs_t)} strides_t=${shortJson(v.strides_t)} l_bins=${shortJson(v.l_bins)}`);
  }
  if (i.vocab) {
    const list = (a: string[]) => (a.length > 40 ? `${a.slice(0, 40).join(', ')}, ... (${a.length})` : a.join(', '));
    lines.push(`  genres:      ${list(i.vocab.genres)}`);
    lines.push(`  artists:     ${list(i.vocab.artists)}`);
  }
  const shownKeys = allKeys ? i.keys : i.keys.slice(0, 8);
  lines.push(`  keys${allKeys ? '' : ' (first 8; --keys for all)'}:`);
  for (const k of shownKeys) lines.push(`    ${k.name}  ${k.dtype} [${k.shape.join(', ')}]${k.scales ? ` (int8, scales in ${k.scales})` : ''}`);
  return lines.join('\n');
}
