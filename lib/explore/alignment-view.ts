/**
 * What the page shows of a lyrics alignment (tokens x lyric characters, the attention of
 * each top-level music token over the lyrics; lib/generate/alignment.ts): the character in
 * focus at each token, for highlighting words while playing, and a heatmap image.
 */
import { paint } from './colormap.js';
import { encodePng } from './png.js';

function check(weights: Float32Array, tokens: number, lyricTokens: number): void {
  if (!Number.isInteger(tokens) || !Number.isInteger(lyricTokens) || tokens < 1 || lyricTokens < 1 || weights.length !== tokens * lyricTokens) {
    throw new Error(`alignment weights must hold tokens x lyricTokens = ${tokens} x ${lyricTokens} values, got ${weights.length}`);
  }
}

/**
 * Per token the most-attended character after smoothing each character's weight over a
 * centred window of smoothTokens tokens (attention flickers token to token; a reader's eye
 * should not), or -1 where nothing is attended.
 */
export function alignmentFocus(weights: Float32Array, tokens: number, lyricTokens: number, smoothTokens: number): number[] {
  check(weights, tokens, lyricTokens);
  // At least 1 (NaN too); past 2 * tokens + 1 every window already covers the whole clip.
  const win = Math.min(2 * tokens + 1, Math.max(1, Math.floor(smoothTokens) || 1));
  const half = Math.floor(win / 2);
  // Running column sums over the window: O(tokens * lyricTokens).
  const sum = new Float64Array(lyricTokens);
  const add = (t: number, s: number) => {
    if (t < 0 || t >= tokens) return;
    const row = t * lyricTokens;
    for (let j = 0; j < lyricTokens; j++) sum[j] += s * weights[row + j];
  };
  for (let t = -half; t < win - half; t++) add(t, 1);
  const out: number[] = [];
  for (let t = 0; t < tokens; t++) {
    let best = -1;
    let bestV = 1e-6;
    for (let j = 0; j < lyricTokens; j++) {
      if (sum[j] > bestV) {
        bestV = sum[j];
        best = j;
      }
    }
    out.push(best);
    add(t - half, -1);
    add(t - half + win, 1);
  }
  return out;
}

/** Heatmap: x = time, y = characters (first at the top); resampled by max so no peak is lost. */
export function alignmentHeatmapPng(
  weights: Float32Array,
  tokens: number,
  lyricTokens: number,
  opts: { width?: number; maxHeight?: number } = {},
): { png: Buffer; width: number; height: number } {
  check(weights, tokens, lyricTokens);
  const width = Math.max(1, Math.floor(opts.width ?? Math.min(tokens, 2000)));
  const height = Math.max(1, Math.min(lyricTokens, Math.floor(opts.maxHeight ?? 600)));
  let top = 0;
  for (let i = 0; i < weights.length; i++) if (weights[i] > top) top = weights[i];
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const j0 = Math.floor((y * lyricTokens) / height);
    const j1 = Math.max(j0 + 1, Math.floor(((y + 1) * lyricTokens) / height));
    for (let x = 0; x < width; x++) {
      const t0 = Math.floor((x * tokens) / width);
      const t1 = Math.max(t0 + 1, Math.floor(((x + 1) * tokens) / width));
      let m = 0;
      for (let t = t0; t < t1; t++) for (let j = j0; j < j1; j++) if (weights[t * lyricTokens + j] > m) m = weights[t * lyricTokens + j];
      paint(rgb, (y * width + x) * 3, top > 0 ? m / top : 0);
    }
  }
  return { png: encodePng(width, height, rgb), width, height };
}
