/**
 * The explorer's colour map for intensities in [0, 1]: dark purple through red and orange
 * to pale yellow (magma-like), perceptually ordered, so quiet is dark and loud is bright on
 * the page's dark background. Anchors linearly interpolated into a 256-entry table.
 */
const ANCHORS: [number, number, number][] = [
  [0, 0, 4],
  [28, 16, 68],
  [79, 18, 123],
  [129, 37, 129],
  [181, 54, 122],
  [229, 80, 100],
  [251, 135, 97],
  [254, 194, 135],
  [252, 253, 191],
];

export const COLORMAP: Uint8Array = (() => {
  const t = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (ANCHORS.length - 1);
    const a = Math.min(ANCHORS.length - 2, Math.floor(x));
    const f = x - a;
    for (let c = 0; c < 3; c++) t[i * 3 + c] = Math.round(ANCHORS[a][c] * (1 - f) + ANCHORS[a + 1][c] * f);
  }
  return t;
})();

/** Writes the colour of v (clamped to [0, 1]) at rgb[offset..offset+2]. */
export function paint(rgb: Uint8Array, offset: number, v: number): void {
  const i = v > 0 ? (v < 1 ? Math.round(v * 255) : 255) : 0;
  rgb[offset] = COLORMAP[i * 3];
  rgb[offset + 1] = COLORMAP[i * 3 + 1];
  rgb[offset + 2] = COLORMAP[i * 3 + 2];
}
