import * as tf from '@tensorflow/tfjs-core';
import type { RgbImage } from '../data/image';
import type { ModelManifest } from '../models/manifest';
import { decodeGflLevel } from './gfl-decode';
import { computeLetterbox, inputToSource } from './letterbox';
import { classwiseNms } from './nms';
import { preprocessImage } from './preprocess';
import type { GraphRunner } from './runner';
import type { Detection, LabeledDetection } from './types';

export interface DetectOptions {
  scoreThreshold: number;
  iouThreshold: number;
  maxDetections: number;
  /** Side of the square input to run at; defaults to the manifest's. */
  inputSize?: number;
  /**
   * Keep only these classes, before NMS and the maxDetections cap: a COCO teacher scored on VOC
   * must not fill its 100 boxes with classes the dataset does not have.
   */
  classIndices?: readonly number[];
}

export const DEFAULT_DETECT_OPTIONS: DetectOptions = { scoreThreshold: 0.35, iouThreshold: 0.6, maxDetections: 100 };

export interface DetectResult {
  detections: LabeledDetection[];
  inputSize: number;
  timings: { preprocessMs: number; inferenceMs: number; postprocessMs: number };
}

/**
 * Runs a GFL detector (NanoDet family) on one image: letterbox + normalise, read each level's
 * raw head output, decode, per-class NMS, map boxes back to the original image.
 */
export async function detectGfl(runner: GraphRunner, manifest: ModelManifest, image: RgbImage, options: DetectOptions): Promise<DetectResult> {
  const inputSize = options.inputSize ?? manifest.input.size;
  const { head } = manifest;
  const numClasses = manifest.classes.length;
  const lb = computeLetterbox(image.width, image.height, inputSize);

  const t0 = performance.now();
  const input = preprocessImage(image, lb, manifest);
  const t1 = performance.now();
  let levels: { data: Float32Array; height: number; width: number }[];
  try {
    const outputs = runner.run(input, head.outputs);
    try {
      levels = await Promise.all(outputs.map((t) => readLevelNhwc(t, head.outputLayout)));
    } finally {
      tf.dispose(outputs);
    }
  } finally {
    input.dispose();
  }
  const t2 = performance.now();

  const candidates: Detection[] = [];
  levels.forEach((level, i) => {
    const stride = head.strides[i]!;
    const expectedSide = Math.ceil(inputSize / stride);
    if (level.height !== expectedSide || level.width !== expectedSide) {
      throw new Error(
        `Head output ${head.outputs[i]} is ${level.height}x${level.width}, but stride ${stride} at input ${inputSize} needs ${expectedSide}x${expectedSide}: the manifest's strides or outputs do not match the model.`,
      );
    }
    candidates.push(...decodeGflLevel({ ...level, stride }, { numClasses, regMax: head.regMax, inputSize, scoreThreshold: options.scoreThreshold }));
  });
  const wanted = options.classIndices && new Set(options.classIndices);
  const kept = classwiseNms(wanted ? candidates.filter((d) => wanted.has(d.classIndex)) : candidates, options);
  const detections = kept.map((d) => ({
    ...d,
    box: inputToSource(lb, d.box),
    className: manifest.classes[d.classIndex] ?? `class ${d.classIndex}`,
  }));
  const t3 = performance.now();
  return { detections, inputSize, timings: { preprocessMs: t1 - t0, inferenceMs: t2 - t1, postprocessMs: t3 - t2 } };
}

async function readLevelNhwc(t: tf.Tensor, layout: 'NHWC' | 'NCHW') {
  if (t.rank !== 4 || t.shape[0] !== 1) throw new Error(`Expected a head output of shape [1,H,W,C], got [${t.shape.join(',')}].`);
  const nhwc = layout === 'NCHW' ? tf.transpose(t, [0, 2, 3, 1]) : t;
  try {
    return { data: (await nhwc.data()) as Float32Array, height: nhwc.shape[1]!, width: nhwc.shape[2]! };
  } finally {
    if (nhwc !== t) nhwc.dispose();
  }
}
