/**
 * Soft-label KD: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", NIPS
 * Deep Learning Workshop 2014 (arXiv:1503.02531). The baseline every detection KD method is
 * compared with, applied at every location of every level.
 *
 * Per location (i,j) of image n, with temperature T:
 * - mode 'bce' (sigmoid classifiers such as GFL's, the default): Sum_c BCE(sigmoid(z_T/T),
 *   sigmoid(z_S/T)) = Sum_c softplus(z_S/T) − sigmoid(z_T/T) · z_S/T. Its minimum over the
 *   student is the teacher's entropy, not 0, but its gradient vanishes when z_S = z_T.
 * - mode 'kl' (softmax classifiers): KL(softmax(z_T/T) || softmax(z_S/T)) over the classes.
 * Both are multiplied by T² (Hinton: keeps the gradient scale independent of T; `scaleByT2`).
 * Reduction 'mean' (default): the sum over classes, averaged over every location of every
 * level and image (each location is one "example" in Hinton's sense); 'sum': summed over all.
 * Loss = weight · that.
 *
 * Confidence weighting (`confidencePower` γ > 0, an option of this project, 0 by default): each
 * location is weighted by w = (max_c p_T)^γ, the teacher's top class probability, and 'mean'
 * becomes Σ w·ℓ / Σ w. On a detector almost every location is background, where teacher and
 * student agree closely; measured on NanoDet-g at 320, the 1% of locations where the teacher
 * scores an object above 0.3 carry a divergence 19x the background's, yet only a sixth of the
 * plain mean. The weighting points the loss at the objects.
 *
 * Inputs: clsT, clsS [N,H,W,K] class logits per level (for NanoDet the first 80 channels of
 * the raw head output). Defaults: T 1 (sigmoid detectors are usually distilled at T = 1; LD's
 * class KD uses 2 with softmax), mode 'bce', reduction 'mean', T² scaling on, weight 1.
 *
 * Maps (per level): 'kd', the per-location loss [N,H,W] (after T², before reduction and
 * weight). Terms: 'kd' (before weight).
 */
import * as tf from '@tensorflow/tfjs';
import { bceWithLogits } from '../detect/bce-with-logits';
import { checkLevelPairs, heatmap } from './levels';
import { stopGradient, type MethodResult, type PanelMap } from './types';

export interface SoftLabelKdParams {
  temperature: number;
  mode: 'bce' | 'kl';
  reduction: 'mean' | 'sum';
  scaleByT2: boolean;
  weight: number;
  confidencePower: number;
}

export const SOFT_LABEL_KD_DEFAULTS: Readonly<SoftLabelKdParams> = {
  temperature: 1,
  mode: 'bce',
  reduction: 'mean',
  scaleByT2: true,
  weight: 1,
  confidencePower: 0,
};

export interface SoftLabelKdInputs {
  clsT: tf.Tensor4D[];
  clsS: tf.Tensor4D[];
}

/** Per-location loss [N,H,W,1] of one level, before T² scaling. */
function locationLoss(zT: tf.Tensor4D, zS: tf.Tensor4D, p: SoftLabelKdParams): tf.Tensor4D {
  return tf.tidy(() => {
    const xT = tf.div(zT, p.temperature);
    const xS = tf.div(zS, p.temperature);
    if (p.mode === 'bce') {
      // softplus(x_S) − σ(x_T)·x_S per class, in one fused pass on wasm (bce-with-logits.ts).
      return tf.sum(bceWithLogits(xS, tf.sigmoid(xT)), 3, true) as tf.Tensor4D;
    }
    const logPT = tf.logSoftmax(xT);
    return tf.sum(tf.mul(tf.exp(logPT), tf.sub(logPT, tf.logSoftmax(xS))), 3, true) as tf.Tensor4D;
  });
}

export function softLabelKd(
  inputs: SoftLabelKdInputs,
  params: Partial<SoftLabelKdParams> = {},
  options: { withMaps?: boolean } = {},
): MethodResult {
  const p = { ...SOFT_LABEL_KD_DEFAULTS, ...params };
  const { clsT, clsS } = inputs;
  checkLevelPairs('Soft-label KD', 'class-logit', clsT, clsS);
  clsT.forEach((t, l) => {
    if (t.shape[3] !== (clsS[l] as tf.Tensor4D).shape[3]) {
      throw new Error(
        `Soft-label KD: level ${l} teacher has ${t.shape[3]} classes and the student ${(clsS[l] as tf.Tensor4D).shape[3]}; slice both to the same classes.`,
      );
    }
  });
  if (!(p.temperature > 0)) throw new Error(`Soft-label KD: temperature must be positive, got ${p.temperature}.`);
  if (!(p.confidencePower >= 0)) throw new Error(`Soft-label KD: confidencePower must be >= 0, got ${p.confidencePower}.`);
  const scale = p.scaleByT2 ? p.temperature * p.temperature : 1;
  const locations = clsT.reduce((sum, t) => sum + t.shape[0] * t.shape[1] * t.shape[2], 0);
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    // Per-location weights [N,H,W,1]: 1, or the teacher's top class probability to the power γ.
    const weights = clsT.map((t) => {
      if (!(p.confidencePower > 0)) return null;
      const probs = p.mode === 'bce' ? tf.sigmoid(tf.div(t, p.temperature)) : tf.softmax(tf.div(t, p.temperature));
      return tf.pow(tf.max(probs, 3, true), p.confidencePower) as tf.Tensor4D;
    });
    const weighted = (x: tf.Tensor, l: number) => (weights[l] ? tf.mul(x, weights[l]!) : x);
    const sums = clsT.map((t, l) => {
      const perLocation = tf.mul(locationLoss(stopGradient(t), clsS[l] as tf.Tensor4D, p), scale);
      if (options.withMaps) maps.push(heatmap('kd', l, perLocation));
      return tf.sum(weighted(perLocation, l));
    });
    const total = tf.addN(sums);
    const weightSum = p.confidencePower > 0 ? tf.addN(weights.map((w) => tf.sum(w!))) : tf.scalar(locations);
    const reduce = (x: tf.Tensor) => (p.reduction === 'mean' ? tf.div(x, tf.add(weightSum, 1e-12)) : x) as tf.Scalar;
    const kd = reduce(total);
    // The BCE form bottoms out at the teacher's entropy, which hides progress in a log: report
    // the part above it too (a divergence, 0 when the student matches the teacher).
    const floor = p.mode === 'bce' ? reduce(tf.mul(tf.addN(clsT.map((t, l) => tf.sum(weighted(locationLoss(t, t, p), l)))), scale)) : tf.scalar(0);
    const divergence = tf.sub(kd, floor) as tf.Scalar;
    return { loss: tf.mul(kd, p.weight) as tf.Scalar, terms: { kd, divergence } };
  });
  return options.withMaps ? { ...out, maps } : out;
}
