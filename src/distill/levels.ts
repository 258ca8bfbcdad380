/**
 * Input checks and small helpers shared by the methods: per-level feature lists [N,H,W,C],
 * their agreement with the anchor grid of the assignment, adapters, and panel read-out.
 */
import * as tf from '@tensorflow/tfjs';
import type { Assignment } from '../detect/assignment';
import { readValues } from './readback';
import type { Connector, PanelMap } from './types';

const shapeText = (t: tf.Tensor) => `[${t.shape.join(',')}]`;

/** Teacher and student lists: same number of levels, each level [N,H,W,*] with equal N, H, W. */
export function checkLevelPairs(method: string, what: string, levelsT: tf.Tensor4D[], levelsS: tf.Tensor4D[]): void {
  if (levelsT.length === 0) throw new Error(`${method}: no ${what} levels given; pass one [N,H,W,C] tensor per level.`);
  if (levelsT.length !== levelsS.length) {
    throw new Error(
      `${method}: the teacher has ${levelsT.length} ${what} levels and the student ${levelsS.length}; pass the same levels in the same (stride) order.`,
    );
  }
  levelsT.forEach((t, l) => {
    const s = levelsS[l] as tf.Tensor4D;
    if (t.rank !== 4 || s.rank !== 4) {
      throw new Error(`${method}: ${what} level ${l} must be rank 4 [N,H,W,C] (NHWC), got T ${shapeText(t)} and S ${shapeText(s)}.`);
    }
    if (t.shape[0] !== s.shape[0] || t.shape[1] !== s.shape[1] || t.shape[2] !== s.shape[2]) {
      throw new Error(
        `${method}: ${what} level ${l} has teacher ${shapeText(t)} and student ${shapeText(s)}; N, H and W must agree (NHWC).`,
      );
    }
  });
}

/** One assignment per image, and each level's H, W equal to the assignment grid's. */
export function checkAssignments(method: string, assignments: Assignment[], levels: tf.Tensor4D[]): void {
  const first = levels[0];
  if (!first) throw new Error(`${method}: no feature levels given.`);
  const n = first.shape[0];
  if (assignments.length !== n) {
    throw new Error(`${method}: the batch has ${n} images but ${assignments.length} assignments were given; pass one per image.`);
  }
  for (const a of assignments) {
    if (a.grid.levels.length !== levels.length) {
      throw new Error(
        `${method}: the anchor grid has ${a.grid.levels.length} levels but ${levels.length} feature levels were given.`,
      );
    }
    a.grid.levels.forEach((g, l) => {
      const t = levels[l] as tf.Tensor4D;
      if (t.shape[1] !== g.height || t.shape[2] !== g.width) {
        throw new Error(
          `${method}: level ${l} (stride ${g.stride}) is ${g.height}x${g.width} in the anchor grid but the feature is ${shapeText(t)}.`,
        );
      }
    });
  }
}

/**
 * Applies the level's adapter to a student feature; without one the channel counts must already
 * agree (identity).
 */
export function adapt(method: string, level: number, featS: tf.Tensor4D, channelsT: number, adapter?: Connector | null): tf.Tensor4D {
  const y = adapter ? adapter.apply(featS) : featS;
  if (y.shape[3] !== channelsT) {
    throw new Error(
      adapter
        ? `${method}: the level ${level} adapter '${adapter.name}' gives ${y.shape[3]} channels but the teacher has ${channelsT}.`
        : `${method}: level ${level} student has ${featS.shape[3]} channels and the teacher ${channelsT}; pass an adapter (connector) for that level.`,
    );
  }
  return y;
}

/**
 * Reads a [N,H,W] or [N,H,W,1] tensor into a heatmap panel: synchronously (maps are rare), or
 * later into the same buffer inside `deferMapReads`.
 */
export function heatmap(name: string, level: number, t: tf.Tensor): PanelMap {
  const [n = 1, h = 1, w = 1] = t.shape;
  const data = new Float32Array(t.size);
  readValues(t, (v) => data.set(v));
  return { kind: 'heatmap', name, level, shape: [n, h, w], data };
}

/** Reads a [N,C] tensor into a bar-chart panel (same reading rules as `heatmap`). */
export function bars(name: string, level: number, t: tf.Tensor): PanelMap {
  const [n = 1, c = 1] = t.shape;
  const data = new Float32Array(t.size);
  readValues(t, (v) => data.set(v));
  return { kind: 'bars', name, level, shape: [n, c], data };
}

/** Per-level 0/1 masks [N,H,W,1] from per-anchor flags of each image (anchor order of the grid). */
export function levelMasksFromAnchors(assignments: Assignment[], flags: Uint8Array[] | Float32Array[]): tf.Tensor4D[] {
  const grid = assignments[0]?.grid;
  if (!grid) throw new Error('levelMasksFromAnchors: no assignments.');
  return grid.levels.map((g) => {
    const hw = g.height * g.width;
    const data = new Float32Array(assignments.length * hw);
    flags.forEach((f, n) => {
      for (let i = 0; i < hw; i++) data[n * hw + i] = f[g.offset + i] ?? 0;
    });
    return tf.tensor4d(data, [assignments.length, g.height, g.width, 1]);
  });
}

/**
 * Whether a method computes its levels in one pass, where it has such a path (FGD), rather than
 * one by one. On a GPU a step is bound by kernel dispatches (on an H200, 57% of a step's time was
 * outside kernels), and the joined form dispatches fewer (FGD: 423 instead of 758 on WebGPU). On
 * wasm and cpu it runs the same arithmetic but pays for joining copies, and measured slower (FGD
 * at 320 and 416, batch 4: 0.78x and 0.94x the level-by-level path's speed): those keep that one.
 */
export function joinLevelsByDefault(): boolean {
  const backend = tf.getBackend();
  return backend === 'webgpu' || backend === 'webgl';
}
