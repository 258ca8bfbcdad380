/**
 * PFI, prediction-guided feature imitation: Li, Wu, Su, Wang, Yuan, "Knowledge Distillation for
 * Object Detection via Rank Mimicking and Prediction-guided Feature Imitation", AAAI 2022.
 *
 * Per level and location: the prediction difference P_ij = Sum_c (p_T,ijc − p_S,ijc)² over
 * class probabilities p = sigmoid(class logit) (a constant for the gradient: no gradient flows
 * into the student's head through P); the feature difference F_ij = mean_c (F_T −
 * adapt(F_S))² with adapt a 1x1 conv S→T channels (a connector, trained with the student).
 * Loss per level Sum_{n,i,j} P·F / (N·H·W); the loss averages the levels and is multiplied by
 * `weight` (1.5 in the paper).
 *
 * Inputs: featT, featS [N,H,W,C] per level (neck outputs); clsT, clsS [N,H,W,K] class logits
 * per level on the same grid (for NanoDet the first 80 channels of the raw head output);
 * adapters per level (null/absent: identity, channels must agree).
 *
 * Maps (per level): 'P' and 'F' [N,H,W], side by side: where the features differ but the
 * predictions do not, and the reverse. Terms: 'pfi' (the level average before `weight`).
 */
import * as tf from '@tensorflow/tfjs';
import { adapt, checkLevelPairs, heatmap } from './levels';
import { detached, stopGradient, type Connector, type MethodResult, type PanelMap } from './types';

export interface PfiParams {
  weight: number;
}

export const PFI_DEFAULTS: Readonly<PfiParams> = { weight: 1.5 };

export interface PfiInputs {
  featT: tf.Tensor4D[];
  featS: tf.Tensor4D[];
  clsT: tf.Tensor4D[];
  clsS: tf.Tensor4D[];
  adapters?: (Connector | null)[];
}

export function pfi(inputs: PfiInputs, params: Partial<PfiParams> = {}, options: { withMaps?: boolean } = {}): MethodResult {
  const p = { ...PFI_DEFAULTS, ...params };
  const { featT, featS, clsT, clsS } = inputs;
  checkLevelPairs('PFI', 'feature', featT, featS);
  checkLevelPairs('PFI', 'class-logit', clsT, clsS);
  if (clsT.length !== featT.length) {
    throw new Error(`PFI: ${featT.length} feature levels but ${clsT.length} class-logit levels; pass one of each per level.`);
  }
  featT.forEach((t, l) => {
    const c = clsT[l] as tf.Tensor4D;
    const s = clsS[l] as tf.Tensor4D;
    if (c.shape[0] !== t.shape[0] || c.shape[1] !== t.shape[1] || c.shape[2] !== t.shape[2]) {
      throw new Error(`PFI: level ${l} features are [${t.shape.join(',')}] but class logits [${c.shape.join(',')}]; N, H, W must agree.`);
    }
    if (c.shape[3] !== s.shape[3]) {
      throw new Error(`PFI: level ${l} teacher has ${c.shape[3]} classes and the student ${s.shape[3]}; slice both to the same classes.`);
    }
  });
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const levelLosses = featT.map((t, l) => {
      const [n, h, w] = t.shape;
      const ft = stopGradient(t);
      const pT = tf.sigmoid(stopGradient(clsT[l] as tf.Tensor4D));
      const pS = tf.sigmoid(clsS[l] as tf.Tensor4D);
      const pDiff = detached(() => tf.sum(tf.squaredDifference(pT, pS), 3, true));
      const fs = adapt('PFI', l, featS[l] as tf.Tensor4D, ft.shape[3], inputs.adapters?.[l]);
      const fDiff = tf.mean(tf.squaredDifference(ft, fs), 3, true);
      if (options.withMaps) maps.push(heatmap('P', l, pDiff), heatmap('F', l, fDiff));
      return tf.sum(tf.mul(pDiff, fDiff)).div(n * h * w);
    });
    const pfiTerm = tf.div(tf.addN(levelLosses), levelLosses.length) as tf.Scalar;
    return { loss: tf.mul(pfiTerm, p.weight) as tf.Scalar, terms: { pfi: pfiTerm } };
  });
  return options.withMaps ? { ...out, maps } : out;
}
