/**
 * Reading a GFL detector (NanoDet family) in one run: the tensors the detection loss and the
 * distillation methods need, all NHWC, one per level in stride order — neck outputs (the heads'
 * inputs), head features, class logits and box-distribution logits.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainableGraph } from '../graph/executor';
import type { ModelManifest } from '../models/manifest';

export interface DetectorTaps {
  /** Backbone stage outputs (read only when asked: `ReadOptions.backbone`). */
  backbone: tf.Tensor4D[];
  neck: tf.Tensor4D[];
  head: tf.Tensor4D[];
  /** [N,H,W,K] class logits per level. */
  cls: tf.Tensor4D[];
  /** [N,H,W,4·(regMax+1)] box logits per level. */
  box: tf.Tensor4D[];
  /** The raw head outputs per level [N,H,W,K+4·(regMax+1)] (what the GFL loss reads). */
  raw: tf.Tensor4D[];
}

export interface ReadOptions {
  /** Picks and orders class channels (a teacher read in a student's label space). */
  classChannels?: readonly number[];
  /** Also read the backbone stage outputs. */
  backbone?: boolean;
  /**
   * Per tapped node, the channels to keep (a teacher read at the channels a derived student kept,
   * `derivedFrom.tapChannels`); nodes not named stay whole.
   */
  featureChannels?: Readonly<Record<string, readonly number[]>>;
}

/** Node names read for the taps; features are skipped when the manifest names none. */
export function tapNames(manifest: ModelManifest, options: { backbone?: boolean } = {}): string[] {
  const t = manifest.taps;
  return [...(options.backbone ? (t?.backbone ?? []) : []), ...(t?.neck ?? []), ...(t?.headFeatures ?? []), ...manifest.head.outputs];
}

/**
 * Runs the graph once and splits its outputs into taps. The caller owns the tensors.
 */
export function readDetector(graph: TrainableGraph, manifest: ModelManifest, input: tf.Tensor4D, options: ReadOptions = {}): DetectorTaps {
  const backboneNames = options.backbone ? (manifest.taps?.backbone ?? []) : [];
  const neckNames = manifest.taps?.neck ?? [];
  const headNames = manifest.taps?.headFeatures ?? [];
  const outs = graph.execute(input, tapNames(manifest, options));
  return tf.tidy(() => {
    const layout = manifest.taps?.layout ?? 'NCHW';
    const feature = (t: tf.Tensor, name: string) => {
      const keep = options.featureChannels?.[name];
      const picked = keep ? tf.gather(t, keep as number[], layout === 'NHWC' ? 3 : 1) : t;
      return (layout === 'NHWC' ? picked : picked.transpose([0, 2, 3, 1])) as tf.Tensor4D;
    };
    let at = 0;
    const take = (names: string[]) => {
      const taken = names.map((n, i) => feature(outs[at + i]!, n));
      at += names.length;
      return taken;
    };
    const backbone = take(backboneNames);
    const neck = take(neckNames);
    const head = take(headNames);
    const raw = outs.slice(at).map((t) => (manifest.head.outputLayout === 'NHWC' ? t : t.transpose([0, 2, 3, 1])) as tf.Tensor4D);
    const k = manifest.classes.length;
    const classChannels = options.classChannels;
    const cls = raw.map((r) => {
      const all = r.slice([0, 0, 0, 0], [-1, -1, -1, k]) as tf.Tensor4D;
      return classChannels ? (tf.gather(all, classChannels as number[], 3) as tf.Tensor4D) : all;
    });
    const box = raw.map((r) => r.slice([0, 0, 0, k], [-1, -1, -1, -1]) as tf.Tensor4D);
    const rawOut = classChannels ? raw.map((r, l) => tf.concat([cls[l]!, box[l]!], 3) as tf.Tensor4D) : raw;
    const kept = new Set<tf.Tensor>([...backbone, ...neck, ...head, ...rawOut]);
    tf.dispose(outs.filter((t) => !kept.has(t)));
    return { backbone, neck, head, cls, box, raw: rawOut };
  });
}

export function disposeTaps(taps: DetectorTaps): void {
  tf.dispose([...taps.backbone, ...taps.neck, ...taps.head, ...taps.cls, ...taps.box, ...taps.raw]);
}
