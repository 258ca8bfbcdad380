/**
 * Reading a GFL detector (NanoDet family) in one run: the tensors the detection loss and the
 * distillation methods need, all NHWC, one per level in stride order — neck outputs (the heads'
 * inputs), head features, class logits and box-distribution logits.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainableGraph } from '../graph/executor';
import type { ModelManifest } from '../models/manifest';

export interface DetectorTaps {
  neck: tf.Tensor4D[];
  head: tf.Tensor4D[];
  /** [N,H,W,K] class logits per level. */
  cls: tf.Tensor4D[];
  /** [N,H,W,4·(regMax+1)] box logits per level. */
  box: tf.Tensor4D[];
  /** The raw head outputs per level [N,H,W,K+4·(regMax+1)] (what the GFL loss reads). */
  raw: tf.Tensor4D[];
}

/** Node names read for the taps; features are skipped when the manifest names none. */
export function tapNames(manifest: ModelManifest): string[] {
  return [...(manifest.taps?.neck ?? []), ...(manifest.taps?.headFeatures ?? []), ...manifest.head.outputs];
}

/**
 * Runs the graph once and splits its outputs into taps. `classChannels`, when given, picks and
 * orders class channels (a teacher read in a student's label space). The caller owns the tensors.
 */
export function readDetector(graph: TrainableGraph, manifest: ModelManifest, input: tf.Tensor4D, classChannels?: readonly number[]): DetectorTaps {
  const neckNames = manifest.taps?.neck ?? [];
  const headNames = manifest.taps?.headFeatures ?? [];
  const outs = graph.execute(input, tapNames(manifest));
  return tf.tidy(() => {
    const toNhwc = (t: tf.Tensor, layout: 'NCHW' | 'NHWC' | undefined) => (layout === 'NHWC' ? t : t.transpose([0, 2, 3, 1])) as tf.Tensor4D;
    const layout = manifest.taps?.layout ?? 'NCHW';
    const neck = outs.slice(0, neckNames.length).map((t) => toNhwc(t, layout));
    const head = outs.slice(neckNames.length, neckNames.length + headNames.length).map((t) => toNhwc(t, layout));
    const raw = outs.slice(neckNames.length + headNames.length).map((t) => toNhwc(t, manifest.head.outputLayout));
    const k = manifest.classes.length;
    const cls = raw.map((r) => {
      const all = r.slice([0, 0, 0, 0], [-1, -1, -1, k]) as tf.Tensor4D;
      return classChannels ? (tf.gather(all, classChannels as number[], 3) as tf.Tensor4D) : all;
    });
    const box = raw.map((r) => r.slice([0, 0, 0, k], [-1, -1, -1, -1]) as tf.Tensor4D);
    const rawOut = classChannels
      ? raw.map((r, l) => tf.concat([cls[l]!, box[l]!], 3) as tf.Tensor4D)
      : raw;
    tf.dispose(outs.filter((t) => !neck.includes(t as tf.Tensor4D) && !head.includes(t as tf.Tensor4D) && !rawOut.includes(t as tf.Tensor4D)));
    return { neck, head, cls, box, raw: rawOut };
  });
}

export function disposeTaps(taps: DetectorTaps): void {
  tf.dispose([...taps.neck, ...taps.head, ...taps.cls, ...taps.box, ...taps.raw]);
}
