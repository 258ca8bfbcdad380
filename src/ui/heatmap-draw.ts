/**
 * Heatmaps as pixels: one map of H×W values becomes an H×W RGBA image (one pixel per cell), drawn
 * on a <canvas> and scaled up by CSS without smoothing, so a 52×52 map is one draw, not 2,704 SVG
 * rects, and there are no seams between cells. Colours come from a 256-entry table of the
 * sequential scale.
 */
import { sequential } from './colors';

export const TABLE_SIZE = 256;

let table: Uint8ClampedArray | undefined;

/** The sequential scale as 256 RGB triples (index 0 = low, 255 = high). */
export function colourTable(): Uint8ClampedArray {
  if (table) return table;
  table = new Uint8ClampedArray(TABLE_SIZE * 3);
  for (let i = 0; i < TABLE_SIZE; i++) {
    const [r, g, b] = sequential(i / (TABLE_SIZE - 1)).match(/\d+/g)!.map(Number) as [number, number, number];
    table.set([r, g, b], i * 3);
  }
  return table;
}

/** The table index of a value on [lo, hi] (clamped); -1 for a value that is not finite. */
export function colourIndex(v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v)) return -1;
  const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  return Math.min(TABLE_SIZE - 1, Math.max(0, Math.round(t * (TABLE_SIZE - 1))));
}

/**
 * Row-major values → RGBA pixels for ImageData: each cell coloured on [lo, hi], with `alpha`
 * (0–255) so the photo shows through; cells that are not finite are transparent.
 */
export function mapToRgba(values: ArrayLike<number>, lo: number, hi: number, alpha = 255): Uint8ClampedArray<ArrayBuffer> {
  const colours = colourTable();
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const k = colourIndex(values[i]!, lo, hi);
    if (k < 0) continue;
    out[i * 4] = colours[k * 3]!;
    out[i * 4 + 1] = colours[k * 3 + 1]!;
    out[i * 4 + 2] = colours[k * 3 + 2]!;
    out[i * 4 + 3] = alpha;
  }
  return out;
}

/** The cell under a point at (px, py) of a box `boxW` × `boxH` showing a `width` × `height` map, or null outside. */
export function cellAt(px: number, py: number, boxW: number, boxH: number, width: number, height: number): { x: number; y: number } | null {
  const x = Math.floor((px / boxW) * width);
  const y = Math.floor((py / boxH) * height);
  return x >= 0 && x < width && y >= 0 && y < height ? { x, y } : null;
}

/** One colour range for several maps (a teacher/student pair): min and max over all their finite values. */
export function sharedExtent(maps: readonly ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const values of maps) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo === Infinity) return [0, 1];
  return hi > lo ? [lo, hi] : [lo, lo + 1];
}
