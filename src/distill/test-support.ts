/**
 * Test helpers: hand-built anchor grids and assignments, so the distillation tests do not depend
 * on the ATSS implementation. Only what the methods read is filled in (levels, count, IoUs,
 * assigned GTs, positives); anchor centres and boxes are zeros.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { AnchorGrid } from '../detect/anchors';
import type { Assignment, GtObject } from '../detect/assignment';

export interface HandLevel {
  stride: number;
  height: number;
  width: number;
}

export function handGrid(levels: HandLevel[], inputSize = 16): AnchorGrid {
  let count = 0;
  const withOffsets = levels.map((l) => {
    const level = { ...l, offset: count };
    count += l.height * l.width;
    return level;
  });
  return { inputSize, levels: withOffsets, count, centres: new Float32Array(count * 2), boxes: new Float32Array(count * 4) };
}

/**
 * An assignment with the given IoU rows (one per GT, one value per anchor in grid order), the
 * given assigned GT per anchor (-1 background; default all background) and ATSS thresholds
 * (default 0).
 */
export function handAssignment(options: {
  grid: AnchorGrid;
  ious?: number[][];
  assignedGt?: number[];
  gts?: GtObject[];
  thresholds?: number[];
}): Assignment {
  const { grid } = options;
  const ious = options.ious ?? [];
  const gts = options.gts ?? ious.map((): GtObject => ({ box: [0, 0, 1, 1], classIndex: 0 }));
  const assignedGt = Int32Array.from(options.assignedGt ?? new Array<number>(grid.count).fill(-1));
  if (assignedGt.length !== grid.count) throw new Error(`handAssignment: ${assignedGt.length} assigned values for ${grid.count} anchors.`);
  const flat = new Float32Array(gts.length * grid.count);
  ious.forEach((row, k) => {
    if (row.length !== grid.count) throw new Error(`handAssignment: IoU row ${k} has ${row.length} values for ${grid.count} anchors.`);
    flat.set(row, k * grid.count);
  });
  const positives = gts.map((_, k) => Int32Array.from([...assignedGt.keys()].filter((i) => assignedGt[i] === k)));
  return {
    grid,
    gts,
    assignedGt,
    ious: flat,
    thresholds: options.thresholds ? Float32Array.from(options.thresholds) : new Float32Array(gts.length),
    candidates: gts.map(() => new Int32Array(0)),
    positives,
  };
}

/** Element-wise closeness with a readable failure (index, got, want). */
export function closeArrays(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-6): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, want ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? NaN;
    const e = expected[i] ?? NaN;
    if (!(Math.abs(a - e) <= tolerance)) return `index ${i}: got ${a}, want ${e}`;
  }
  return null;
}

/** max |t| as a number, without leaving tensors behind. */
export function maxAbs(t: tf.Tensor): number {
  return tf.tidy(() => t.abs().max().dataSync()[0] ?? NaN);
}

/**
 * FGD's paths compared: loss, terms (each positive in the reference) and every gradient of `a`
 * equal those of `b` (relative 1e-5; gradients within 1e-4 of each one's largest value). A GcBlock
 * mask bias's gradient is zero in exact arithmetic (a softmax ignores a shift): within 1e-6.
 */
export function expectSameLossTermsAndGradients(
  a: { loss: number; terms: Record<string, number>; grads: Record<string, ArrayLike<number>> },
  b: { loss: number; terms: Record<string, number>; grads: Record<string, ArrayLike<number>> },
  termNames = ['fg', 'bg', 'attention', 'global'],
): void {
  expect(b.loss).toBeGreaterThan(0);
  expect(Math.abs(a.loss - b.loss) / b.loss).toBeLessThan(1e-5);
  for (const k of termNames) {
    expect(b.terms[k], k).toBeGreaterThan(0);
    expect(Math.abs((a.terms[k] ?? NaN) - (b.terms[k] ?? NaN)) / (b.terms[k] ?? 1), k).toBeLessThan(1e-5);
  }
  expect(Object.keys(a.grads).sort()).toEqual(Object.keys(b.grads).sort());
  for (const [k, g] of Object.entries(b.grads)) {
    const scale = Math.max(...Array.from(g, Math.abs));
    const maskBias = k.includes('mask_bias');
    if (!maskBias) expect(scale, k).toBeGreaterThan(0);
    expect(closeArrays(a.grads[k] ?? [], g, maskBias ? 1e-6 : 1e-4 * scale), k).toBeNull();
  }
}
