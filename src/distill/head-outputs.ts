/**
 * Helpers for the methods that read the detection head's per-anchor outputs (RM, LD): class
 * logits [N,H,W,K] and box-distribution logits [N,H,W,4·(regMax+1)] per level, flattened to
 * one row per anchor of every image (row r = n·A + i, A = grid.count, i in grid order), the
 * per-row anchor tables, class selection without tf.gather (its gradient needs
 * UnsortedSegmentSum, which the wasm backend lacks), and the teacher-vs-student distribution
 * panel.
 */
import * as tf from '@tensorflow/tfjs';
import type { AnchorGrid } from '../detect/anchors';
import { flattenHeadOutputs } from '../detect/gfl-loss';
import type { DistributionPanelMap } from './types';

/** Per-level [N,H,W,C] → [N·A, C], rows in grid order per image. */
export function flattenRows(levels: readonly tf.Tensor[], grid: AnchorGrid): tf.Tensor2D {
  return tf.tidy(() => {
    const flat = flattenHeadOutputs(levels, grid);
    const [n = 0, a = 0, c = 0] = flat.shape;
    return tf.reshape(flat, [n * a, c]) as tf.Tensor2D;
  });
}

/** Bins per edge (regMax + 1) of a box-logit level list; 4 edges, at least 2 bins each. */
export function binsOf(method: string, who: string, levels: readonly tf.Tensor4D[]): number {
  const c = levels[0]?.shape[3] ?? 0;
  const bins = c / 4;
  if (!(Number.isInteger(bins) && bins >= 2)) {
    throw new Error(`${method}: the ${who}'s box logits have ${c} channels; expected 4·(regMax+1) (NanoDet: 44, regMax 10).`);
  }
  return bins;
}

/** Anchor centres [R·2], strides [R] and anchor boxes [R·4] of the grid, repeated for n images. */
export function rowTables(grid: AnchorGrid, n: number): { centres: Float32Array; strides: Float32Array; boxes: Float32Array } {
  const a = grid.count;
  const centres = new Float32Array(n * a * 2);
  const strides = new Float32Array(n * a);
  const boxes = new Float32Array(n * a * 4);
  for (let k = 0; k < n; k++) {
    centres.set(grid.centres, k * a * 2);
    boxes.set(grid.boxes, k * a * 4);
    for (const level of grid.levels) strides.fill(level.stride, k * a + level.offset, k * a + level.offset + level.height * level.width);
  }
  return { centres, strides, boxes };
}

/**
 * The teacher channel of each student class: `teacherClassIndex[k]` (e.g. VOC student class →
 * COCO teacher channel), or k itself when the mapping is null and both have the same classes.
 */
export function teacherChannels(method: string, teacherClassIndex: readonly number[] | null, classesT: number, classesS: number): number[] {
  if (teacherClassIndex === null) {
    if (classesT !== classesS) {
      throw new Error(
        `${method}: the teacher has ${classesT} classes and the student ${classesS}; pass teacherClassIndex (student class k → teacher channel).`,
      );
    }
    return Array.from({ length: classesS }, (_, k) => k);
  }
  if (teacherClassIndex.length !== classesS) {
    throw new Error(`${method}: teacherClassIndex has ${teacherClassIndex.length} entries for ${classesS} student classes; give one per student class.`);
  }
  teacherClassIndex.forEach((c, k) => {
    if (!(Number.isInteger(c) && c >= 0 && c < classesT)) {
      throw new Error(`${method}: teacherClassIndex[${k}] = ${c} is not a channel of the teacher's ${classesT} classes.`);
    }
  });
  return [...teacherClassIndex];
}

/**
 * The teacher's class logits in the student's label space: [R, K_T] → [R, K_S], column k =
 * teacher channel channels[k]. A matMul with a constant selection matrix (no tf.gather).
 */
export function selectTeacherClasses(clsT: tf.Tensor2D, channels: readonly number[]): tf.Tensor2D {
  const kt = clsT.shape[1];
  const ks = channels.length;
  const identity = kt === ks && channels.every((c, k) => c === k);
  if (identity) return clsT.clone();
  const select = new Float32Array(kt * ks);
  channels.forEach((c, k) => {
    select[c * ks + k] = 1;
  });
  return tf.tidy(() => tf.matMul(clsT, tf.tensor2d(select, [kt, ks])));
}

/** Index of the first largest value. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] ?? -Infinity) > (values[best] ?? -Infinity)) best = i;
  return best;
}

/**
 * A teacher-vs-student distribution panel over `positions.length` bars, its buffer zero until
 * `setDistribution` fills it (maps may be read after the method returns: see readback.ts).
 */
export function distributionMap(fields: Omit<DistributionPanelMap, 'kind' | 'shape' | 'data' | 'argmax'>): DistributionPanelMap {
  const b = fields.positions.length;
  return { kind: 'distribution', ...fields, shape: [2, b], data: new Float32Array(2 * b), argmax: { teacher: 0, student: 0 } };
}

/** Writes both rows and their argmax into the map, in place (copies of the map see them). */
export function setDistribution(map: DistributionPanelMap, teacher: ArrayLike<number>, student: ArrayLike<number>): void {
  const b = map.positions.length;
  if (teacher.length !== b || student.length !== b) {
    throw new Error(`distribution map '${map.name}': ${b} bars but rows of ${teacher.length} and ${student.length} values.`);
  }
  map.data.set(Array.from(teacher), 0);
  map.data.set(Array.from(student), b);
  map.argmax.teacher = argmax(teacher);
  map.argmax.student = argmax(student);
}
