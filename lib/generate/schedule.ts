/**
 * Where each level's sampling windows go (jukebox/sample.py sample_level and
 * utils/sample_utils.py get_starts; reference §d.2): windows of n_ctx tokens every
 * hop tokens, the last one moved back so it is a full window; a level shorter than one
 * window is a single partial window.
 */
export interface Window {
  /** First token of the window. */
  start: number;
  /** Tokens of the window the sampler fills (n_ctx, or fewer for a partial window). */
  length: number;
}

export function windowStarts(total: number, nCtx: number, hop: number): number[] {
  const starts: number[] = [];
  for (let start = 0; start < total - nCtx + hop; start += hop) {
    starts.push(start + nCtx >= total ? total - nCtx : start);
  }
  return starts;
}

/** The windows of a level of `total` tokens. */
export function levelWindows(total: number, nCtx: number, hopFraction: number): Window[] {
  if (total < nCtx) return [{ start: 0, length: total }];
  const hop = Math.max(1, Math.trunc(hopFraction * nCtx));
  return windowStarts(total, nCtx, hop).map((start) => ({ start, length: nCtx }));
}

/** The original's hop fractions for levels 0, 1 and the top (README and sample.py). */
export const DEFAULT_HOP_FRACTIONS = [0.5, 0.5, 0.125];
