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
  const featureNames = [...backboneNames, ...neckNames, ...headNames];
  // Everything is read NHWC: an NCHW node is asked for transposed, which costs nothing where
  // the executor holds it in NHWC already (see graph/layout.ts).
  const toNhwc = [0, 2, 3, 1];
  const transposed = [
    ...featureNames.map(() => ((manifest.taps?.layout ?? 'NCHW') === 'NHWC' ? undefined : toNhwc)),
    ...manifest.head.outputs.map(() => (manifest.head.outputLayout === 'NHWC' ? undefined : toNhwc)),
  ];
  const outs = graph.execute(input, tapNames(manifest, options), { transposed });
  return tf.tidy(() => {
    const feature = (t: tf.Tensor, name: string) => {
      const keep = options.featureChannels?.[name];
      return (keep ? pickChannels(t as tf.Tensor4D, keep) : t) as tf.Tensor4D;
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
    const raw = outs.slice(at) as tf.Tensor4D[];
    const k = manifest.classes.length;
    const classChannels = options.classChannels;
    const cls = raw.map((r) => {
      const all = r.slice([0, 0, 0, 0], [-1, -1, -1, k]) as tf.Tensor4D;
      return classChannels ? pickChannels(all, classChannels) : all;
    });
    const box = raw.map((r) => r.slice([0, 0, 0, k], [-1, -1, -1, -1]) as tf.Tensor4D);
    const rawOut = classChannels ? raw.map((r, l) => tf.concat([cls[l]!, box[l]!], 3) as tf.Tensor4D) : raw;
    const kept = new Set<tf.Tensor>([...backbone, ...neck, ...head, ...rawOut]);
    tf.dispose(outs.filter((t) => !kept.has(t)));
    return { backbone, neck, head, cls, box, raw: rawOut };
  });
}

/**
 * Channels `channels` of an NHWC tensor, in that order: a product with a constant 0/1 selection
 * matrix, [N·H·W, C] · [C, K]. Exact for finite values (each output is one input times 1 plus
 * zeros), and several times faster on wasm than tf.gather along the innermost axis.
 */
export function pickChannels(t: tf.Tensor4D, channels: readonly number[]): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  const select = new Float32Array(c * channels.length);
  channels.forEach((channel, k) => {
    if (!Number.isInteger(channel) || channel < 0 || channel >= c) throw new Error(`Channel ${channel} is outside the tensor's ${c} channels.`);
    select[channel * channels.length + k] = 1;
  });
  return tf.tidy(() => tf.matMul(t.reshape([n * h * w, c]), tf.tensor2d(select, [c, channels.length])).reshape([n, h, w, channels.length]) as tf.Tensor4D);
}

export function disposeTaps(taps: DetectorTaps): void {
  tf.dispose([...taps.backbone, ...taps.neck, ...taps.head, ...taps.cls, ...taps.box, ...taps.raw]);
}
