/**
 * Pseudo ground truth for photos without annotations: the teacher's own detections, in the
 * student's label space, above a score threshold and after per-class NMS. Methods that need
 * boxes (the detection loss, FGFI, FGD, RM, LD's regions) then work on plain photos too; the
 * teacher is the only source of truth there, and the logs count these boxes apart.
 */
import type * as tf from '@tensorflow/tfjs';
import type { GtObject } from '../detect/assignment';
import { decodeGflLevel } from '../detect/gfl-decode';
import { classwiseNms } from '../detect/nms';
import type { Detection } from '../detect/types';

export interface PseudoLabelOptions {
  strides: readonly number[];
  regMax: number;
  inputSize: number;
  /** Teacher detections scoring below this are not used as boxes. */
  scoreThreshold: number;
  /** Per-class NMS IoU. Default 0.6. */
  iouThreshold?: number;
  /** At most this many boxes per photo. Default 100. */
  maxBoxes?: number;
}

/** Default score above which a teacher detection becomes a pseudo box. */
export const DEFAULT_PSEUDO_THRESHOLD = 0.4;

/**
 * `raw`: the teacher's raw head outputs per level, NHWC [N,H,W,K+4·(regMax+1)], class channels
 * already in the student's label space. Returns, for each image `i` with `wanted[i]`, its pseudo
 * boxes in model-input pixels (others get undefined).
 */
export async function pseudoGroundTruth(raw: readonly tf.Tensor4D[], wanted: readonly boolean[], options: PseudoLabelOptions): Promise<(GtObject[] | undefined)[]> {
  const { strides, regMax, inputSize, scoreThreshold, iouThreshold = 0.6, maxBoxes = 100 } = options;
  if (raw.length !== strides.length) throw new Error(`Pseudo labels need one head output per stride: ${raw.length} outputs, ${strides.length} strides.`);
  const levels = await Promise.all(raw.map((t) => t.data()));
  const numClasses = raw[0]!.shape[3] - 4 * (regMax + 1);
  return wanted.map((want, i) => {
    if (!want) return undefined;
    const candidates: Detection[] = [];
    raw.forEach((t, l) => {
      const [, h, w, c] = t.shape;
      const data = (levels[l] as Float32Array).subarray(i * h * w * c, (i + 1) * h * w * c);
      candidates.push(...decodeGflLevel({ data, height: h, width: w, stride: strides[l]! }, { numClasses, regMax, inputSize, scoreThreshold }));
    });
    return classwiseNms(candidates, { iouThreshold, maxDetections: maxBoxes })
      .filter((d) => d.box[2] - d.box[0] >= 1 && d.box[3] - d.box[1] >= 1)
      .map((d) => ({ box: d.box, classIndex: d.classIndex }));
  });
}
