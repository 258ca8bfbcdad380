import type { AnchorGrid } from './anchors';
import type { Box } from './types';

/** A ground-truth object in model-input pixels (after letterbox), in the model's label space. */
export interface GtObject {
  box: Box;
  classIndex: number;
}

/**
 * The label assignment of one image, shared by the student's detection loss and every
 * distillation method that needs positives (RM, LD, head mimicking): computed once from GT and
 * anchors only, so teacher and student see the same positives.
 */
export interface Assignment {
  grid: AnchorGrid;
  gts: GtObject[];
  /** [grid.count]: index into `gts` of the GT each anchor is assigned to, or -1 (background). */
  assignedGt: Int32Array;
  /** [gts.length * grid.count]: IoU of every anchor box with every GT, row per GT. */
  ious: Float32Array;
  /** [gts.length]: each GT's ATSS threshold, mean + std of its candidates' IoUs. */
  thresholds: Float32Array;
  /** Per GT: the candidate anchors (the k closest centres per level), in level order. */
  candidates: Int32Array[];
  /** Per GT: its positive anchors in ascending anchor order (the same order for T and S). */
  positives: Int32Array[];
}
