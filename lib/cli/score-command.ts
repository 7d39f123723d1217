/**
 * `jukebox score`: a prior's bits per token on given codes, and optionally every position's
 * logits. Two forms share the command:
 *
 *   score CODES --prior P --vqvae V [--labels y.npy] [--upper U.npy] [--mode forward|cached|chunked]
 *         [--prefix N] [--chunk C] [--dump-logits OUT.npy]
 *   score PRIOR --inputs X.npz [--vqvae V] [--mode forward|sample|primed] [--prefix N] ...   (the older form)
 *
 * The first takes the music codes as scripts have them (from `jukebox encode`, or the
 * original's zs) and builds the transformer's sequence itself; the second takes the
 * transformer's own tokens and is kept for the scripts written against it. Every file is
 * checked against the prior before anything runs, and errors name the file and the shape
 * or range it should have.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { engineBackend, type Backend } from '../backend.js';
import { JukeboxError, type JukeboxErrorCode } from '../errors.js';
import { openModelFile } from '../model-file.js';
import { encodeNpy, parseNpy, parseNpz, readNpz, writeNpz, type NpyArray, type NpzWritableArray } from '../npz.js';
import { loadPrior, type Prior } from '../prior/prior.js';
import { defaultLabels, labelLength, scoreMode, scorePrior, type ScoreInput, type ScoreModeName } from '../score.js';
import { hopLengths } from '../vqvae/hparams.js';
import { vqvaeHparamsOf } from '../vqvae/vqvae.js';
import type { Log } from './commands.js';

export interface ScoreArgs {
  /** auto (default) | cuda | cpu: checked and reported; the models run on the CPU until the CUDA model path lands. */
  backend?: Backend;
  /** The positional argument: CODES when `prior` is given, else (the older form, with `inputs`) the prior. */
  input: string;
  prior?: string;
  /** For an original .pth.tar prior, the VQ-VAE it was built against; for a converted one, checked against it. */
  vqvae?: string;
  /** (batch, label_len) or (label_len,) integer .npy: the original's label rows y. */
  labels?: string;
  /** Upsamplers: (batch, n_ctx / cond_downsample) codes of the level above (.npy, or .npz with level_{L+1}). */
  upper?: string;
  /** The older form: an .npz with y (n, label_len) and tokens (n, n_ctx) or combined (n, len), plus upper. */
  inputs?: string;
  mode?: ScoreModeName;
  /** chunked mode: codes known before decoding (the older form: transformer positions). */
  prefix?: number;
  chunk?: number;
  /** float32 (batch, len, bins) logits: .npy, or an .npz holding them as "logits". */
  dumpLogits?: string;
}

const USAGE = 'jukebox score CODES --prior P.safetensors --vqvae V.safetensors [--labels y.npy] [--upper U.npy] [--mode forward|cached|chunked] [--prefix N] [--chunk C] [--dump-logits OUT.npy]';

const INTEGER_DTYPES = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

function shapeText(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** A .npy (one array) or an .npz (named arrays), told apart by content so a renamed file still reads. */
interface NpFile {
  path: string;
  npy?: NpyArray;
  npz?: Record<string, NpyArray>;
}

function readNp(path: string, what: string): NpFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  const zip = bytes.length >= 4 && bytes.readUInt32LE(0) === 0x04034b50; // "PK\x03\x04"
  return zip ? { path, npz: parseNpz(bytes, path) } : { path, npy: parseNpy(bytes, path) };
}

/** The .npy's array, or the .npz's array `key` (undefined when absent and `optional`). */
function pick(f: NpFile, key: string, what: string, code: JukeboxErrorCode, optional = false): NpyArray | undefined {
  if (f.npy) return f.npy;
  const arr = f.npz![key];
  if (arr || optional) return arr;
  throw new JukeboxError(code, `${f.path} has no array "${key}" (it has ${Object.keys(f.npz!).join(', ') || 'nothing'}); ${what} must be a .npy, or an .npz with "${key}"`);
}

/**
 * An integer (rows, cols) matrix as int32, or (cols,) as one row. `cols` is what the prior
 * needs; `expect` describes the whole expected shape for the messages.
 */
function intMatrix(arr: NpyArray, path: string, what: string, cols: number, expect: string, code: JukeboxErrorCode): { rows: number; oneD: boolean; data: Int32Array } {
  if (!INTEGER_DTYPES.has(arr.dtype)) {
    throw new JukeboxError(code, `${path}: ${what} have dtype ${arr.dtype}; expected an integer array (int32) of shape ${expect}`);
  }
  const { shape } = arr;
  if ((shape.length !== 1 && shape.length !== 2) || shape[shape.length - 1] !== cols || shape[0] === 0) {
    throw new JukeboxError(code, `${path}: ${what} have shape ${shapeText(shape)}; expected ${expect}`);
  }
  const rows = shape.length === 2 ? shape[0] : 1;
  const data = new Int32Array(rows * cols);
  for (let i = 0; i < data.length; i++) {
    const v = Number(arr.data[i]);
    // int64 / uint64 values beyond int32 are out of every range the prior checks; say so here.
    if (v < -0x80000000 || v > 0x7fffffff) {
      throw new JukeboxError(code, `${path}: ${what}[${Math.floor(i / cols)}, ${i % cols}] = ${String(arr.data[i])} does not fit in int32`);
    }
    data[i] = v;
  }
  return { rows, oneD: shape.length === 1, data };
}

/**
 * A converted prior records the VQ-VAE structure it was converted against; scoring it with
 * codes of another VQ-VAE would run but mean nothing, so the two must agree on what the
 * codes are: levels, codebook size and the hop of this level (and of the level above for an
 * upsampler). An original .pth.tar prior's structure comes from --vqvae itself.
 */
function checkVqvae(prior: Prior, vqvaePath: string, priorPath: string): void {
  const vq = vqvaeHparamsOf(openModelFile(vqvaePath)).hparams;
  const s = prior.structure;
  const hops = hopLengths(vq);
  const have = `levels ${vq.levels}, l_bins ${vq.l_bins}, hops ${hops.join('/')}`;
  const problems: string[] = [];
  if (vq.levels !== s.levels) problems.push(`${s.levels} levels`);
  if (vq.l_bins !== s.lBins) problems.push(`l_bins ${s.lBins}`);
  if (s.level < vq.levels && hops[s.level] !== s.rawToTokens) problems.push(`level ${s.level} hop ${s.rawToTokens}`);
  if (s.upsampler && s.level + 1 < vq.levels && vq.strides_t[s.level + 1] ** vq.downs_t[s.level + 1] !== s.condDownsample) {
    problems.push(`${s.condDownsample} level-${s.level} codes per level-${s.level + 1} code`);
  }
  if (problems.length) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `${priorPath} was built for a VQ-VAE with ${problems.join(', ')}, but ${vqvaePath} has ${have}: pass the VQ-VAE the prior was converted with`);
  }
}

function writeLogits(path: string, arr: NpzWritableArray): void {
  if (extname(path).toLowerCase() === '.npz') return writeNpz(path, { logits: arr });
  const bytes = encodeNpy(arr, path);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new JukeboxError('ERR_IO', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The promised form: ScoreInput from CODES, --labels and --upper, checked against the prior. */
function inputsFromFiles(prior: Prior, a: ScoreArgs, codesPath: string, log: Log): Omit<ScoreInput, 'mode'> {
  const s = prior.structure;
  const level = s.level;
  const codeRange = `integer codes in [0, ${s.lBins})`;
  // CODES: a window of exactly n_ctx music codes per row; the lyric tokens of a combined
  // model come from the labels, as in the original's prior_preprocess.
  const codesFile = readNp(codesPath, 'CODES');
  const codesArr = pick(codesFile, `level_${level}`, 'CODES', 'ERR_CODES')!;
  const codesExpect = `(batch, ${s.nCtx}): one window of n_ctx = ${s.nCtx} level-${level} codes per row, ${codeRange}`;
  const codes = intMatrix(codesArr, codesPath, 'codes', s.nCtx, codesExpect, 'ERR_CODES');
  const n = codes.rows;

  const rowLen = labelLength(s);
  const labelsExpect = `(${n}, ${rowLen}) or (${rowLen},): [total_length, offset, sample_length, artist, genre x ${s.labels.maxBowGenreSize}${s.nTokens ? `, lyric tokens x ${s.nTokens}` : ''}] per row`;
  let y: Int32Array;
  if (a.labels) {
    const arr = pick(readNp(a.labels, '--labels'), 'y', '--labels', 'ERR_INVALID_ARGUMENT')!;
    const m = intMatrix(arr, a.labels, 'labels', rowLen, labelsExpect, 'ERR_INVALID_ARGUMENT');
    if (m.oneD) {
      // One row for the whole batch: every row of CODES has the same labels.
      y = new Int32Array(n * rowLen);
      for (let b = 0; b < n; b++) y.set(m.data, b * rowLen);
    } else if (m.rows !== n) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${a.labels}: ${m.rows} label rows but ${codesPath} has ${n} rows of codes; expected ${labelsExpect}`);
    } else {
      y = m.data;
    }
    const artists = s.labels.artistBins, genres = s.labels.genreBins;
    for (let b = 0; b < n; b++) {
      const r = y.subarray(b * rowLen, (b + 1) * rowLen);
      if (r[3] < 0 || r[3] >= artists) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${a.labels}: artist id ${r[3]} at [${b}, 3] is outside [0, ${artists})`);
      for (let g = 4; g < 4 + s.labels.maxBowGenreSize; g++) {
        if (r[g] < -1 || r[g] >= genres) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${a.labels}: genre id ${r[g]} at [${b}, ${g}] is outside [-1, ${genres}) (-1 = empty slot)`);
      }
    }
  } else {
    y = defaultLabels(s, n);
    log(`note: no --labels: artist 0 and genre 0 ("unknown" in the original's id files), offset 0, total_length ${y[0]}, sample_length ${y[2]}${s.nTokens ? ', no lyrics' : ''} (pass --labels y.npy of shape ${labelsExpect.split(':')[0]})`);
  }

  let upper: Int32Array | undefined;
  if (s.upsampler) {
    const upLen = s.nCtx / s.condDownsample;
    const upperExpect = `(${n}, ${upLen}): the level-${level + 1} codes of the same window (n_ctx / ${s.condDownsample}), ${codeRange}`;
    let arr: NpyArray | undefined;
    let path = a.upper;
    if (path) {
      arr = pick(readNp(path, '--upper'), `level_${level + 1}`, '--upper', 'ERR_CODES');
    } else if (codesFile.npz) {
      // An .npz of every level (jukebox encode, generate) already holds the level above.
      arr = pick(codesFile, `level_${level + 1}`, 'CODES', 'ERR_CODES', true);
      path = codesPath;
    }
    if (!arr || !path) {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `${a.prior} is a level-${level} upsampler: pass --upper U.npy with shape ${upperExpect}`);
    }
    const m = intMatrix(arr, path, 'upper codes', upLen, upperExpect, 'ERR_CODES');
    if (m.rows !== n) throw new JukeboxError('ERR_CODES', `${path}: ${m.rows} rows of upper codes but ${codesPath} has ${n} rows of codes; expected ${upperExpect}`);
    upper = m.data;
  } else if (a.upper) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `--upper ${a.upper}: ${a.prior} is a top-level prior (level ${level}); only upsamplers take the codes of a level above`);
  }
  return { n, y, tokens: codes.data, upper, sources: { tokens: codesPath, y: a.labels ?? 'the default labels', upper: a.upper ?? codesPath } };
}

/** The older form: an .npz with y, tokens or combined, and upper, in the transformer's own token space. */
function inputsFromNpz(path: string): Omit<ScoreInput, 'mode'> {
  const arrays = readNpz(path);
  const int32 = (name: string, required: boolean): { data: Int32Array; shape: number[] } | undefined => {
    const arr = arrays[name];
    if (!arr) {
      if (required) throw new JukeboxError('ERR_INVALID_ARGUMENT', `${path} has no array "${name}"`);
      return undefined;
    }
    if (!INTEGER_DTYPES.has(arr.dtype)) throw new JukeboxError('ERR_CODES', `${path}: ${name} must hold integers`);
    return { data: Int32Array.from(arr.data as ArrayLike<number | bigint>, (v) => Number(v)), shape: arr.shape };
  };
  const y = int32('y', true)!;
  return {
    n: y.shape[0],
    y: y.data,
    tokens: int32('tokens', false)?.data,
    combined: int32('combined', false)?.data,
    upper: int32('upper', false)?.data,
    sources: { tokens: `${path}:${arrays.combined ? 'combined' : 'tokens'}`, y: `${path}:y`, upper: `${path}:upper` },
  };
}

export async function scoreCommand(a: ScoreArgs, log: Log): Promise<void> {
  // The backend first: a refused --backend says so before any file is read.
  const backend = engineBackend(a.backend);
  log(`backend: ${backend.reason}`);
  if (a.prior && a.inputs) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `give CODES with --prior (${USAGE}), or a prior with --inputs (the older form), not both`);
  }
  if (!a.prior && !a.inputs) throw new JukeboxError('ERR_INVALID_ARGUMENT', `missing --prior: ${USAGE} (or the older form: jukebox score PRIOR --inputs X.npz)`);
  const promised = a.prior !== undefined;
  const priorPath = a.prior ?? a.input;
  if (!promised && (a.labels || a.upper)) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', `--labels and --upper go with --prior; with --inputs, ${a.inputs} holds y and upper`);
  }
  const modeName: ScoreModeName = a.mode ?? 'forward';
  const mode = scoreMode(modeName);
  if (a.prefix !== undefined && mode !== 'chunked') throw new JukeboxError('ERR_INVALID_ARGUMENT', `--prefix is for --mode chunked (${modeName} does not prefill a prefix)`);
  if (a.chunk !== undefined && mode === 'forward') throw new JukeboxError('ERR_INVALID_ARGUMENT', '--chunk is for --mode cached or chunked (forward runs the window in one pass)');
  if (a.chunk !== undefined && a.chunk < 1) throw new JukeboxError('ERR_INVALID_ARGUMENT', '--chunk must be at least 1 (leave it out to prefill in one pass)');
  // Scripts of the promised form say how much is known; the older form defaults to 0.
  if (promised && mode === 'chunked' && a.prefix === undefined) {
    throw new JukeboxError('ERR_INVALID_ARGUMENT', '--mode chunked needs --prefix N: how many codes are prefilled before decoding');
  }

  const prior = await loadPrior(priorPath, { vqvae: a.vqvae, backend });
  try {
    const s = prior.structure;
    // (An original .pth.tar prior took its structure from --vqvae, so it passes trivially.)
    if (a.vqvae) checkVqvae(prior, a.vqvae, priorPath);
    if (a.chunk !== undefined && mode === 'cached' && s.lyrics !== 'combined') {
      throw new JukeboxError('ERR_INVALID_ARGUMENT', `--chunk: in cached mode ${priorPath} decodes from position 0 with nothing to prefill; use --mode chunked --prefix N`);
    }
    const x = promised ? inputsFromFiles(prior, a, a.input, log) : inputsFromNpz(a.inputs!);
    let prefix = a.prefix;
    if (promised && prefix !== undefined) {
      // --prefix counts codes of CODES; a combined model's lyric tokens always come first
      // and are prefilled with them, as the original's sampler primes with the lyrics.
      if (prefix > s.nCtx) throw new JukeboxError('ERR_INVALID_ARGUMENT', `--prefix ${prefix}: a window has ${s.nCtx} codes`);
      if (s.lyrics === 'combined') prefix += s.nTokens;
    }
    const r = await scorePrior(prior, { ...x, mode, prefix, chunk: a.chunk });
    const music = s.lyrics === 'combined' ? ` (music codes only: ${r.musicBitsPerToken.toFixed(6)})` : '';
    log(`${modeName}: ${r.bitsPerToken.toFixed(6)} bits per token over ${x.n} x ${r.len} tokens${music}`);
    if (a.dumpLogits) {
      writeLogits(a.dumpLogits, { dtype: 'float32', shape: [x.n, r.len, r.bins], data: r.logits });
      log(`wrote ${a.dumpLogits} (logits, float32, shape (${x.n}, ${r.len}, ${r.bins}))`);
    }
  } finally {
    prior.dispose();
  }
}
