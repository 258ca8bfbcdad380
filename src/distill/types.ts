/**
 * Shapes shared by every distillation method.
 *
 * A method is a pure function of named inputs (feature maps [N,H,W,C] per level, class logits
 * [N,H,W,K] per level, the per-image label assignment) that returns its weighted loss, its named
 * unweighted terms and, only when asked (`withMaps: true`), the maps a panel draws.
 *
 * Gradients: teacher inputs are wrapped in `stopGradient` by every method (cheap: a clone whose
 * gradient is zero), so even a caller that computes the teacher inside the gradient closure
 * gets zero gradient on the teacher; weights computed from student outputs (PFI's P) are wrapped
 * the same way. Connectors (adapters, FGD's GcBlocks) are the only trainable state a method owns.
 *
 * Inside `tf.variableGrads(f)`, `f` runs in a tidy that keeps only the returned loss: call
 * `keepTerms` on a result there if the terms are needed afterwards, and dispose them later.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Plain data for one panel, ready to post to the UI (no tensors).
 * - `heatmap`: shape [N,H,W], row-major, one map per image of one level.
 * - `bars`: shape [N,C], one bar per channel per image (FGD's channel attention).
 */
export interface GridPanelMap {
  kind: 'heatmap' | 'bars';
  name: string;
  /** Index of the FPN level (stride order) the map belongs to. */
  level?: number;
  shape: number[];
  data: Float32Array;
}

/**
 * Teacher vs student distributions over the same positions of one object, for a bar chart
 * (RM's rank distributions over a GT's positive anchors, LD's edge distributions over bins).
 * `shape` is [2, B] and `data` holds the teacher's row, then the student's; each row sums to 1.
 */
export interface DistributionPanelMap {
  kind: 'distribution';
  name: string;
  /** The level of `anchor` when the positions lie on one level (LD); absent otherwise. */
  level?: number;
  shape: number[];
  data: Float32Array;
  /** What bar b stands for: an anchor index in grid order (RM), or a bin index (LD). */
  positionKind: 'anchor' | 'bin';
  positions: Int32Array;
  /** Bar index (0..B-1) of each row's largest value: the teacher's and the student's pick. */
  argmax: { teacher: number; student: number };
  /** The object: image of the batch and GT index in that image's assignment. */
  image: number;
  gt: number;
  /** The anchor the distributions were read at (LD); absent when the bars are anchors. */
  anchor?: number;
}

/** Any panel map; every kind carries `name`, `shape` and `data`. */
export type PanelMap = GridPanelMap | DistributionPanelMap;

export interface MethodResult {
  /** The method's loss with its own weights applied (lambda, alpha..., weight). */
  loss: tf.Scalar;
  /** Named parts of the loss before weighting, for logging. */
  terms: Record<string, tf.Scalar>;
  /** Present only when the caller passed `withMaps: true`. */
  maps?: PanelMap[];
}

/**
 * A trainable adapter that trains with the student and is not exported with it.
 * `apply` maps [N,H,W,Cin] to [N,H,W,Cout] with the same N, H, W.
 */
export interface Connector {
  name: string;
  variables: tf.Variable[];
  apply(x: tf.Tensor4D): tf.Tensor4D;
  /**
   * The output of `apply` at a few locations only, one row [P, Cout] per location, where a
   * location is the flat index n·H·W + i·W + j. Exact (same values, same gradients there):
   * a loss that reads a connector at few places needs nothing else (FGFI's mask).
   */
  applyAt?(x: tf.Tensor4D, locations: Int32Array): tf.Tensor2D;
  dispose(): void;
}

/** Identity forward, zero gradient (one implementation, shared with the detection loss). */
export { detached, stopGradient } from '../detect/stop-gradient';

/** Keeps the terms of a result alive past the enclosing tidy (e.g. inside tf.variableGrads). */
export function keepTerms(result: MethodResult): MethodResult {
  for (const t of Object.values(result.terms)) tf.keep(t);
  return result;
}

/** Disposes the loss and every term of a result (each tensor once, even when shared). */
export function disposeResult(result: MethodResult): void {
  const seen = new Set<tf.Tensor>([result.loss, ...Object.values(result.terms)]);
  for (const t of seen) t.dispose();
}
