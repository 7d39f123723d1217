/**
 * Waveform outline for the page: per column the lowest and highest sample, so a click
 * drawn from them shows every transient however long the clip. Rounded for compact JSON.
 */
export function waveformPeaks(samples: Float32Array, columns: number): { min: number[]; max: number[] } {
  if (!Number.isInteger(columns) || columns < 1) throw new Error(`columns must be a positive integer, got ${columns}`);
  const n = samples.length;
  const min = new Array<number>(columns).fill(0);
  const max = new Array<number>(columns).fill(0);
  if (n === 0) return { min, max };
  const r = (v: number) => Math.round(Math.max(-1, Math.min(1, v)) * 1e4) / 1e4;
  for (let c = 0; c < columns; c++) {
    let a = Math.floor((c * n) / columns);
    let b = Math.floor(((c + 1) * n) / columns);
    if (b <= a) {
      // Fewer samples than columns: the nearest sample.
      a = Math.min(n - 1, Math.floor(((c + 0.5) * n) / columns));
      b = a + 1;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = a; i < b; i++) {
      const v = samples[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    min[c] = r(lo);
    max[c] = r(hi);
  }
  return { min, max };
}
