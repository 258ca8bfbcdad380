/**
 * Anchor points of a multi-level dense detector, flattened level by level (stride order),
 * row-major inside a level: anchor index = level.offset + y * level.width + x. Every anchor
 * point also carries one square anchor box of side octaveBaseScale · stride (NanoDet/ATSS 5),
 * used by IoU-based rules (ATSS, FGFI).
 */
export interface AnchorLevel {
  stride: number;
  height: number;
  width: number;
  /** Index of this level's first anchor in the flattened list. */
  offset: number;
}

export interface AnchorGrid {
  inputSize: number;
  levels: AnchorLevel[];
  count: number;
  /** [count * 2]: centre x, y in input pixels, ((x + 0.5)·s, (y + 0.5)·s). */
  centres: Float32Array;
  /** [count * 4]: x1, y1, x2, y2 of each anchor's square box, in input pixels. */
  boxes: Float32Array;
}

export function makeAnchorGrid(inputSize: number, strides: readonly number[], octaveBaseScale: number): AnchorGrid {
  const levels: AnchorLevel[] = [];
  let count = 0;
  for (const stride of strides) {
    const side = Math.ceil(inputSize / stride);
    levels.push({ stride, height: side, width: side, offset: count });
    count += side * side;
  }
  const centres = new Float32Array(count * 2);
  const boxes = new Float32Array(count * 4);
  for (const level of levels) {
    const half = (octaveBaseScale * level.stride) / 2;
    for (let y = 0; y < level.height; y++) {
      for (let x = 0; x < level.width; x++) {
        const i = level.offset + y * level.width + x;
        const cx = (x + 0.5) * level.stride;
        const cy = (y + 0.5) * level.stride;
        centres[2 * i] = cx;
        centres[2 * i + 1] = cy;
        boxes[4 * i] = cx - half;
        boxes[4 * i + 1] = cy - half;
        boxes[4 * i + 2] = cx + half;
        boxes[4 * i + 3] = cy + half;
      }
    }
  }
  return { inputSize, levels, count, centres, boxes };
}
