/**
 * Lyrics-to-audio alignment from the attention (jukebox/align.py; reference §d.7): for
 * every top-level window (the sampling hops; a short level zero-padded to one window) and
 * each sample on its own, one full forward recording the alignment head of the alignment
 * layer, which attends from music tokens to lyric tokens. Each window's (n_ctx x n_tokens)
 * weights land at the lyric indices that window used; earlier windows win where windows
 * overlap.
 */
import { JukeboxError } from '../errors.js';
import type { LabelRow } from '../labels/labels.js';
import { windowLabels } from '../labels/labels.js';
import type { Prior } from '../prior/prior.js';
import { windowStarts } from './schedule.js';

export interface Alignment {
  /** (tokens x lyricTokens) row-major: weight of each lyric token for each top-level token. */
  weights: Float32Array;
  tokens: number;
  lyricTokens: number;
}

export interface AlignmentOptions {
  prior: Prior;
  /** The sample's top-level codes. */
  codes: Int32Array;
  /** The song's label row (lib/labels labelRow, offset 0). */
  base: LabelRow;
  hopFraction: number;
  signal?: AbortSignal;
}

/** Whether the prior's alignment_layer exists and attends to the lyrics (types 6 or 7). */
export function hasAlignment(prior: Prior): boolean {
  const layer = prior.rawHparams.alignment_layer, head = prior.rawHparams.alignment_head;
  const s = prior.structure;
  return (
    s.nTokens > 0 && typeof layer === 'number' && typeof head === 'number' && head >= 0 && head < s.prior.heads &&
    (s.prior.attnFuncs[layer] === 6 || s.prior.attnFuncs[layer] === 7)
  );
}

export async function lyricsAlignment(o: AlignmentOptions): Promise<Alignment> {
  const { prior } = o;
  const s = prior.structure;
  const layer = prior.rawHparams.alignment_layer, head = prior.rawHparams.alignment_head;
  if (s.nTokens === 0 || typeof layer !== 'number' || typeof head !== 'number') {
    throw new JukeboxError('ERR_MODEL_KIND', `${prior.path} has no lyrics or no alignment_layer/alignment_head`);
  }
  const func = s.prior.attnFuncs[layer];
  if (func !== 6 && func !== 7) {
    throw new JukeboxError('ERR_HPARAMS', `${prior.path}: alignment_layer ${layer} does not attend to the lyrics (attention type ${func})`);
  }
  const nCtx = s.nCtx, nTok = s.nTokens, L = s.prior.len;
  const windowSamples = nCtx * s.rawToTokens;
  const realLength = o.codes.length;
  const total = Math.max(realLength, nCtx);
  const z = new Int32Array(total);
  z.set(o.codes);
  const full = o.base.fullTokens.length;
  const out = new Float32Array(realLength * full);
  const starts = windowStarts(total, nCtx, Math.max(1, Math.trunc(o.hopFraction * nCtx)));
  const head4 = 4 + s.labels.maxBowGenreSize;
  // Later windows first, so earlier ones overwrite them where they overlap (as the original).
  for (const start of [...starts].reverse()) {
    const row = windowLabels(o.base, start, s.rawToTokens, windowSamples);
    const labels = row.y.slice(0, head4);
    const lyrics = row.y.slice(head4);
    const tokens = new Int32Array(L);
    if (s.lyrics === 'combined') {
      tokens.set(lyrics);
      for (let t = 0; t < nCtx; t++) tokens[nTok + t] = z[start + t] + s.nVocab;
    } else {
      tokens.set(z.subarray(start, start + nCtx));
    }
    // One native call: labels, timing and the lyric encoder are computed by the engine.
    const probs = await prior.attentionWindow({
      tokens, n: 1, labels, lyrics: s.lyrics === 'encoder' ? lyrics : undefined, layer, head, signal: o.signal,
    });
    const keys = probs.length / L;
    // Music queries x lyric keys: rows n_tokens.. of the combined sequence for prime attention.
    const q0 = s.lyrics === 'combined' ? nTok : 0;
    for (let t = 0; t < nCtx; t++) {
      const time = start + t;
      if (time >= realLength) continue; // padding
      for (let j = 0; j < nTok; j++) {
        const idx = row.lyricIndices[j];
        if (idx >= 0) out[time * full + idx] = probs[(q0 + t) * keys + j];
      }
    }
  }
  return { weights: out, tokens: realLength, lyricTokens: full };
}
