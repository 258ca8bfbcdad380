/**
 * FGD, focal and global distillation: Yang, Li, Jiang, Wang, Li, Yuan, Zhao, "Focal and Global
 * Knowledge Distillation for Detectors", CVPR 2022. Applied per level on the neck outputs.
 *
 * - Align: a 1x1 conv S→T channels, only when the channel counts differ (connector `align`).
 * - Attention of F [N,H,W,C] (for T and for the aligned S): spatial A^S = H·W · softmax over
 *   H·W of (mean_c |F| / temp), [N,H,W,1]; channel A^C = C · softmax over C of
 *   (mean_HW |F| / temp), [N,1,1,C].
 * - Masks from the GT boxes scaled to the level's grid (x · W / inputSize, y · H / inputSize;
 *   floor the min corner, ceil the max corner, both inclusive): M_fg = max over the boxes
 *   covering a cell of 1 / (h_k · w_k), h_k = ymax − ymin + 1 cells (the smaller box wins);
 *   M_bg = 1[M_fg = 0] / (number of such cells), per image. As in the official code the box
 *   area counts the unclipped cells while painting stops at the grid border. (The official
 *   code scales by the resized image before padding; here boxes are in the letterboxed input,
 *   the frame the feature grid covers.)
 * - L_fg = Sum M_fg · A^S_T · A^C_T · (F_S − F_T)² / N, L_bg the same with M_bg (both use the
 *   TEACHER's attention); L_at = [Sum |A^C_S − A^C_T| + Sum |A^S_S − A^S_T|] / N;
 *   L_gl = Sum (R_S(F_S) − R_T(F_T))² / N with R_S, R_T two GcBlocks (see gc-block.ts).
 * - Loss = Sum over levels of alpha·L_fg + beta·L_bg + gamma·L_at + lambda·L_gl.
 *
 * N is the batch size and every Sum runs over all elements, as in the official code
 * (MSELoss(reduction='sum') / len(mask)); the levels are summed because the official configs
 * attach one FGD loss (with its own GcBlocks and align) per FPN level and add them.
 * Gradients reach the student, `align`, both GcBlocks (R_T's parameters train too, while F_T
 * itself gets none), never the teacher features.
 *
 * Inputs: featT [N,H,W,Ct], featS [N,H,W,Cs] per level; GT boxes per image in input pixels;
 * the square input side; per level { align?, gcS, gcT } (gcS and gcT built for Ct channels).
 * Defaults (GFL/RetinaNet): alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6, temp 0.5
 * (FCOS: temp 0.8, 1.6e-3 / 8e-4 / 8e-4 / 8e-6).
 *
 * On a GPU a training step (no maps) computes every level at once when their channel counts
 * agree (fgd-joined.ts): the same loss in fewer kernels (README, "FGD's levels in one pass").
 *
 * Maps (per level): heatmaps 'fg_mask', 'bg_mask', 'spatial_attention_T',
 * 'spatial_attention_S' [N,H,W]; bars 'channel_attention_T', 'channel_attention_S' [N,C].
 * Terms (summed over levels, before weights): 'fg', 'bg', 'attention', 'global'.
 */
import * as tf from '@tensorflow/tfjs';
import type { Box } from '../detect/types';
import { attentionSoftmaxes, fusedFgdLevel } from './fgd-fused';
import { joinableLevels, joinedFgdTerms } from './fgd-joined';
import { isGcBlock } from './gc-block';
import { adapt, bars, checkLevelPairs, heatmap, joinLevelsByDefault } from './levels';
import { stopGradient, type Connector, type MethodResult, type PanelMap } from './types';

export interface FgdParams {
  alpha: number;
  beta: number;
  gamma: number;
  lambda: number;
  temp: number;
}

export const FGD_DEFAULTS: Readonly<FgdParams> = { alpha: 1e-3, beta: 5e-4, gamma: 5e-4, lambda: 5e-6, temp: 0.5 };

/** FGD's settings for FCOS-style heads, from the paper. */
export const FGD_FCOS_PARAMS: Readonly<FgdParams> = { alpha: 1.6e-3, beta: 8e-4, gamma: 8e-4, lambda: 8e-6, temp: 0.8 };

export interface FgdLevelConnectors {
  /** 1x1 conv S→T; null or absent when the channel counts agree. */
  align?: Connector | null;
  /** GcBlocks of student and teacher (Ct channels). Needed unless lambda = 0. */
  gcS?: Connector;
  gcT?: Connector;
}

export interface FgdInputs {
  featT: tf.Tensor4D[];
  featS: tf.Tensor4D[];
  /** Per image, the GT boxes in model-input pixels. */
  gtBoxes: Box[][];
  /** Side of the square model input the boxes refer to. */
  inputSize: number;
  /** One per level. */
  connectors: FgdLevelConnectors[];
}

/**
 * The focal masks of one image on one H x W level: fg (scale mask) and bg (normalised), each
 * row-major [H*W].
 */
export function fgdMasks(boxes: Box[], inputSize: number, height: number, width: number): { fg: Float32Array; bg: Float32Array } {
  const fg = new Float32Array(height * width);
  for (const b of boxes) {
    if (!(b[2] > b[0] && b[3] > b[1])) {
      throw new Error(`FGD: GT box [${b.join(', ')}] is empty; pass boxes as [x1, y1, x2, y2] with x2 > x1 and y2 > y1.`);
    }
    // Multiply before dividing: an edge on a cell boundary (120 · 52 / 416 = 15) stays exact,
    // where (120 / 416) · 52 = 14.999999999999998 would floor one cell off.
    const wmin = Math.floor((b[0] * width) / inputSize);
    const hmin = Math.floor((b[1] * height) / inputSize);
    const wmax = Math.ceil((b[2] * width) / inputSize);
    const hmax = Math.ceil((b[3] * height) / inputSize);
    const area = 1 / ((hmax + 1 - hmin) * (wmax + 1 - wmin));
    for (let y = Math.max(hmin, 0); y <= Math.min(hmax, height - 1); y++) {
      for (let x = Math.max(wmin, 0); x <= Math.min(wmax, width - 1); x++) {
        const i = y * width + x;
        fg[i] = Math.max(fg[i] ?? 0, area);
      }
    }
  }
  const bg = new Float32Array(height * width);
  let count = 0;
  for (let i = 0; i < fg.length; i++) {
    if (fg[i] === 0) {
      bg[i] = 1;
      count += 1;
    }
  }
  if (count > 0) for (let i = 0; i < bg.length; i++) bg[i] = (bg[i] ?? 0) / count;
  return { fg, bg };
}

/** The masks of a batch on one H x W level, the images end to end (each [N·H·W]). */
export function batchMasks(gtBoxes: Box[][], inputSize: number, height: number, width: number): { fg: Float32Array; bg: Float32Array } {
  const area = height * width;
  const fg = new Float32Array(gtBoxes.length * area);
  const bg = new Float32Array(gtBoxes.length * area);
  gtBoxes.forEach((boxes, i) => {
    const m = fgdMasks(boxes, inputSize, height, width);
    fg.set(m.fg, i * area);
    bg.set(m.bg, i * area);
  });
  return { fg, bg };
}

/** FGD's spatial [N,H,W,1] and channel [N,1,1,C] attention of a feature map. */
export function fgdAttention(f: tf.Tensor4D, temp: number): { spatial: tf.Tensor4D; channel: tf.Tensor4D } {
  return tf.tidy(() => {
    const [n, h, w, c] = f.shape;
    const softmaxes = attentionSoftmaxes(f, temp);
    const spatial = tf.mul(softmaxes.spatial, h * w).reshape([n, h, w, 1]) as tf.Tensor4D;
    const channel = tf.mul(softmaxes.channel, c).reshape([n, 1, 1, c]) as tf.Tensor4D;
    return { spatial, channel };
  });
}

/** One level's four terms (before the weights); its panels go to `maps` when given. */
function levelTerms(
  l: number,
  t: tf.Tensor4D,
  fs: tf.Tensor4D,
  masks: { fg: Float32Array; bg: Float32Array },
  conn: FgdLevelConnectors,
  p: FgdParams,
  maps: PanelMap[] | undefined,
): Record<'fg' | 'bg' | 'attention' | 'global', tf.Scalar> {
  const [n, h, w] = t.shape;
  const ft = stopGradient(t);
  const maskFg = tf.tensor4d(masks.fg, [n, h, w, 1]);
  const maskBg = tf.tensor4d(masks.bg, [n, h, w, 1]);
  const attT = fgdAttention(ft, p.temp);
  const attS = fgdAttention(fs, p.temp);
  const weighted = tf.squaredDifference(fs, ft).mul(attT.spatial).mul(attT.channel);
  const fg = tf.sum(weighted.mul(maskFg)).div(n) as tf.Scalar;
  const bg = tf.sum(weighted.mul(maskBg)).div(n) as tf.Scalar;
  const attention = tf
    .add(tf.sum(tf.abs(tf.sub(attS.channel, attT.channel))), tf.sum(tf.abs(tf.sub(attS.spatial, attT.spatial))))
    .div(n) as tf.Scalar;
  let global: tf.Scalar = tf.scalar(0);
  if (p.lambda !== 0) {
    if (!conn.gcS || !conn.gcT) {
      throw new Error(`FGD: level ${l} has no GcBlocks; pass gcS and gcT (createGcBlock) or set lambda to 0.`);
    }
    global = tf.sum(tf.squaredDifference(conn.gcS.apply(fs), conn.gcT.apply(ft))).div(n) as tf.Scalar;
  }
  maps?.push(
    heatmap('fg_mask', l, maskFg),
    heatmap('bg_mask', l, maskBg),
    heatmap('spatial_attention_T', l, attT.spatial),
    heatmap('spatial_attention_S', l, attS.spatial),
    bars('channel_attention_T', l, attT.channel.reshape([n, -1])),
    bars('channel_attention_S', l, attS.channel.reshape([n, -1])),
  );
  return { fg, bg, attention, global };
}

/**
 * How the terms are computed; all give the same loss and gradients. `joined`: every level at once
 * (fgd-joined.ts) when the levels allow it; by default on GPU backends only
 * (`joinLevelsByDefault`). Otherwise `fused` (default true): each level as one op with its
 * gradient written out (fgd-fused.ts), where its GcBlocks come from createGcBlock; `fused: false`
 * leaves every op to tfjs's autodiff. Maps always take that op-by-op path.
 */
export function fgd(inputs: FgdInputs, params: Partial<FgdParams> = {}, options: { withMaps?: boolean; joined?: boolean; fused?: boolean } = {}): MethodResult {
  const p = { ...FGD_DEFAULTS, ...params };
  const { featT, featS, gtBoxes, inputSize, connectors } = inputs;
  checkLevelPairs('FGD', 'feature', featT, featS);
  const n = (featT[0] as tf.Tensor4D).shape[0];
  if (gtBoxes.length !== n) {
    throw new Error(`FGD: the batch has ${n} images but GT boxes for ${gtBoxes.length} were given; pass one list per image.`);
  }
  if (connectors.length !== featT.length) {
    throw new Error(`FGD: ${featT.length} levels but ${connectors.length} connector sets; pass { align?, gcS, gcT } per level.`);
  }
  if (!(inputSize > 0)) throw new Error(`FGD: inputSize must be positive, got ${inputSize}.`);
  if (!(p.temp > 0)) throw new Error(`FGD: temp must be positive, got ${p.temp}.`);
  const maps: PanelMap[] = [];
  const out = tf.tidy(() => {
    const aligned = featS.map((s, l) => adapt('FGD', l, s, (featT[l] as tf.Tensor4D).shape[3], connectors[l]?.align));
    // Maps are read level by level.
    const wantJoined = !options.withMaps && (options.joined ?? joinLevelsByDefault());
    const joined = wantJoined ? joinableLevels(featT.map((t) => t.shape[3]), connectors, p.lambda) : null;
    const masks = featT.map((t) => batchMasks(gtBoxes, inputSize, t.shape[1], t.shape[2]));
    const fused = !options.withMaps && (options.fused ?? true);
    const parts = joined
      ? [joinedFgdTerms({ featT, featS: aligned, masks, gc: joined.gc }, p)]
      : featT.map((t, l) => {
          const conn = connectors[l] as FgdLevelConnectors;
          const s = aligned[l] as tf.Tensor4D;
          if (fused && p.lambda === 0) return fusedFgdLevel(t, s, masks[l]!, null, p.temp);
          if (fused && isGcBlock(conn.gcS) && isGcBlock(conn.gcT)) return fusedFgdLevel(t, s, masks[l]!, { gcS: conn.gcS, gcT: conn.gcT }, p.temp);
          return levelTerms(l, t, s, masks[l]!, conn, p, options.withMaps ? maps : undefined);
        });
    const total = (key: 'fg' | 'bg' | 'attention' | 'global') => tf.addN(parts.map((q) => q[key])) as tf.Scalar;
    const terms = { fg: total('fg'), bg: total('bg'), attention: total('attention'), global: total('global') };
    const loss = tf.addN([
      terms.fg.mul(p.alpha),
      terms.bg.mul(p.beta),
      terms.attention.mul(p.gamma),
      terms.global.mul(p.lambda),
    ]) as tf.Scalar;
    return { loss, terms };
  });
  return options.withMaps ? { ...out, maps } : out;
}
