import { describe, expect, it } from 'vitest';
import { cellAt, colourIndex, colourTable, mapToRgba, sharedExtent } from './heatmap-draw';

describe('heatmap pixels', () => {
  it('holds the sequential scale from its first stop to its last', () => {
    const t = colourTable();
    expect(Array.from(t.slice(0, 3))).toEqual([68, 1, 84]);
    expect(Array.from(t.slice(255 * 3, 256 * 3))).toEqual([253, 231, 37]);
  });

  it('colours FGD-like attention values on a range shared by teacher and student', () => {
    // Spatial attention of a teacher (0.95–1.18) and a student (0.97–1.05) on one shared range:
    // the student's strongest cell is not drawn as strong as the teacher's.
    const teacher = Float32Array.from([0.95, 1.18, 1.0, 1.05]);
    const student = Float32Array.from([0.97, 1.05, 1.0, 1.01]);
    const [lo, hi] = sharedExtent([teacher, student]);
    expect(lo).toBeCloseTo(0.95, 6);
    expect(hi).toBeCloseTo(1.18, 6);
    expect(colourIndex(1.18, lo, hi)).toBe(255);
    expect(colourIndex(0.95, lo, hi)).toBe(0);
    // (1.05 − 0.95) / 0.23 · 255 = 110.9 → 111
    expect(colourIndex(student[1]!, lo, hi)).toBe(111);
    // On its own range the student's 1.05 would be the top of the scale.
    expect(colourIndex(student[1]!, 0.97, 1.05)).toBe(255);
  });

  it('writes one RGBA pixel per cell, transparent where the value is not finite', () => {
    const px = mapToRgba([0, 0.5, 1, NaN], 0, 1, 158);
    expect(px).toHaveLength(16);
    expect(Array.from(px.slice(0, 4))).toEqual([68, 1, 84, 158]);
    // 0.5 → index round(127.5) = 128, just past the middle stop (33, 145, 140).
    expect(Array.from(px.slice(4, 8))).toEqual(Array.from(colourTable().slice(128 * 3, 129 * 3)).concat(158));
    expect(Array.from(px.slice(8, 12))).toEqual([253, 231, 37, 158]);
    expect(Array.from(px.slice(12, 16))).toEqual([0, 0, 0, 0]);
  });

  it('clamps values outside the range (a fixed [0, 1] mask domain)', () => {
    expect(colourIndex(-3, 0, 1)).toBe(0);
    expect(colourIndex(7, 0, 1)).toBe(255);
    expect(colourIndex(0.25, 0.25, 0.25)).toBe(128);
  });

  it('finds the cell under the pointer of a 52×52 map drawn at 168 px', () => {
    expect(cellAt(0, 0, 168, 168, 52, 52)).toEqual({ x: 0, y: 0 });
    expect(cellAt(167.9, 84, 168, 168, 52, 52)).toEqual({ x: 51, y: 26 });
    expect(cellAt(168, 10, 168, 168, 52, 52)).toBeNull();
    expect(cellAt(-1, 10, 168, 168, 52, 52)).toBeNull();
  });

  it('gives a flat or empty set of maps a unit range', () => {
    expect(sharedExtent([[2, 2], [2]])).toEqual([2, 3]);
    expect(sharedExtent([[NaN]])).toEqual([0, 1]);
  });
});
