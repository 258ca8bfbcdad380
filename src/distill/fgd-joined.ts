/**
 * FGD over every level at once: the same loss as `fgd` level by level (fgd.ts), in less than half
 * the kernels. Each level's features are flattened and put end to end, [N,H,W,C] → [N,P,C]
 * with P = Σ H·W, and what FGD does per level (a softmax over a level's positions, a mean over
 * them, a GcBlock with the level's own weights) runs on all levels together:
 *
 * - a per-level sum is one product with a 0/1 level-membership matrix [P,L] (and its transpose
 *   spreads a per-level value back over the level's positions);
 * - a softmax within each level shifts by its own level's maximum (taken off the tape: any
 *   constant per level gives the same softmax and gradient), exponentiates once and divides by
 *   the level sums spread back;
 * - the levels' GcBlocks (student and teacher) are stacked into one batched product per weight,
 *   [2L,N,C]·[2L,C,C/2] and so on;
 * - R_S(F_S) − R_T(F_T) = (F_S − F_T) + (t_S − t_T), with each level's transform t spread over its
 *   positions.
 *
 * On wasm a kernel costs about as much to dispatch as it computes at these sizes, and on a GPU a
 * step is bound by dispatches: FGD alone was 1.8x a plain step on an H200, mostly its per-level
 * small kernels. `fgd` takes this path when it can (no maps wanted, every level with the same
 * channel count after `align`, GcBlocks made by createGcBlock with one epsilon); the maps keep
 * the level-by-level path, which reads each level's attention and masks.
 */
import * as tf from '@tensorflow/tfjs';
import { detached, stopGradient } from '../detect/stop-gradient';
import { withoutTape } from '../graph/ops/tape';
import { isGcBlock, type GcBlock } from './gc-block';
import type { Connector } from './types';

export interface JoinedFgdInputs {
  /** Per level [N,H,W,C], the teacher's (a constant here) and the student's after `align`. */
  featT: tf.Tensor4D[];
  featS: tf.Tensor4D[];
  /** Per level, the fg and bg masks of every image, each [N·H·W] (`batchMasks`). */
  masks: { fg: Float32Array; bg: Float32Array }[];
  /** Per level, the student's and the teacher's GcBlock; absent when lambda is 0. */
  gc?: { gcS: GcBlock; gcT: GcBlock }[];
}

export interface JoinedFgdParams {
  temp: number;
  lambda: number;
}

/**
 * Whether the joined path computes the same loss for these levels and connectors: null when it
 * cannot (one level, channel counts that differ, GcBlocks missing or not from createGcBlock, or
 * with different epsilons), else the GcBlocks it will use (none when lambda is 0).
 */
export function joinableLevels(
  channels: number[],
  connectors: { gcS?: Connector; gcT?: Connector }[],
  lambda: number,
): { gc?: { gcS: GcBlock; gcT: GcBlock }[] } | null {
  const c = channels[0];
  if (channels.length < 2 || channels.some((x) => x !== c)) return null;
  if (lambda === 0) return {};
  const gc: { gcS: GcBlock; gcT: GcBlock }[] = [];
  for (const { gcS, gcT } of connectors) {
    if (!isGcBlock(gcS) || !isGcBlock(gcT)) return null;
    gc.push({ gcS, gcT });
  }
  const blocks = gc.flatMap((g) => [g.gcS, g.gcT]);
  const eps = blocks[0]?.parts.epsilon;
  return blocks.every((b) => b.parts.epsilon === eps && b.parts.w1.shape[0] === c) ? { gc } : null;
}

/** The level layout of the joined positions, and its constant matrices. */
interface Layout {
  n: number;
  levels: number;
  positions: number;
  /** [P,L]: 1 where position p belongs to level l. */
  member: tf.Tensor2D;
  /** [L,P]: its transpose. */
  memberT: tf.Tensor2D;
  /** [1,L,P]: 1 / (H·W) of the level where position p belongs to it (per-level means). */
  meanT: tf.Tensor3D;
  /** [P,L]: 0 where p belongs to l, −1e30 elsewhere (per-level maxima). */
  outside: tf.Tensor2D;
  /** [1,P]: H·W of the level of position p. */
  levelArea: tf.Tensor2D;
}

function layoutOf(levels: tf.Tensor4D[]): Layout {
  const n = (levels[0] as tf.Tensor4D).shape[0];
  const areas = levels.map((t) => t.shape[1] * t.shape[2]);
  const positions = areas.reduce((s, a) => s + a, 0);
  const l = levels.length;
  const member = new Float32Array(positions * l);
  const memberT = new Float32Array(l * positions);
  const meanT = new Float32Array(l * positions);
  const outside = new Float32Array(positions * l).fill(-1e30);
  const levelArea = new Float32Array(positions);
  let p = 0;
  areas.forEach((area, level) => {
    for (let i = 0; i < area; i++, p++) {
      member[p * l + level] = 1;
      memberT[level * positions + p] = 1;
      meanT[level * positions + p] = 1 / area;
      outside[p * l + level] = 0;
      levelArea[p] = area;
    }
  });
  return {
    n,
    levels: l,
    positions,
    member: tf.tensor2d(member, [positions, l]),
    memberT: tf.tensor2d(memberT, [l, positions]),
    meanT: tf.tensor3d(meanT, [1, l, positions]),
    outside: tf.tensor2d(outside, [positions, l]),
    levelArea: tf.tensor2d(levelArea, [1, positions]),
  };
}

/** [N,H,W,C] per level → [N,P,C], the levels end to end. */
function joinLevels(levels: tf.Tensor4D[]): tf.Tensor3D {
  const [n, , , c] = (levels[0] as tf.Tensor4D).shape;
  return tf.concat(
    levels.map((t) => t.reshape([n, t.shape[1] * t.shape[2], c])),
    1,
  ) as tf.Tensor3D;
}

/** A softmax over each level's positions of logits [N,P]. */
function levelSoftmax(logits: tf.Tensor2D, layout: Layout): tf.Tensor2D {
  // Each level's own maximum, off the tape: the softmax does not depend on the shift.
  const shift = detached(() => tf.matMul(tf.max(tf.add(logits.expandDims(2), layout.outside), 1) as tf.Tensor2D, layout.memberT));
  const e = tf.exp(tf.sub(logits, shift)) as tf.Tensor2D;
  return tf.div(e, tf.matMul(tf.matMul(e, layout.member), layout.memberT)) as tf.Tensor2D;
}

/** FGD's spatial attention [N,P] (H·W · softmax within the level) and channel attention [N,L,C]. */
function attention(joined: tf.Tensor3D, layout: Layout, temp: number): { spatial: tf.Tensor2D; channel: tf.Tensor3D } {
  const c = joined.shape[2];
  const value = tf.abs(joined);
  const spatialLogits = tf.div(tf.mean(value, 2), temp) as tf.Tensor2D;
  const spatial = tf.mul(levelSoftmax(spatialLogits, layout), layout.levelArea) as tf.Tensor2D;
  const channelLogits = tf.div(tf.matMul(layout.meanT, value), temp);
  const channel = tf.mul(tf.softmax(channelLogits), c) as tf.Tensor3D;
  return { spatial, channel };
}

/** The context of each level's GcBlock [N,L,C]: positions pooled by the level's own softmax. */
function gcContext(joined: tf.Tensor3D, blocks: GcBlock[], layout: Layout): tf.Tensor3D {
  const [n, p, c] = joined.shape;
  const kernels = tf.concat(blocks.map((b) => b.parts.maskKernel.reshape([c, 1])), 1);
  const biases = tf.concat(blocks.map((b) => b.parts.maskBias), 0).reshape([layout.levels, 1]);
  // Every position through every level's 1x1 conv, each position keeping its own level's.
  const all = tf.matMul(joined.reshape([n * p, c]), kernels).reshape([n, p, layout.levels]);
  const logits = tf.add(tf.sum(tf.mul(all, layout.member), 2), tf.matMul(layout.member, biases).reshape([1, p])) as tf.Tensor2D;
  const weights = levelSoftmax(logits, layout);
  return tf.matMul(tf.mul(layout.memberT, weights.expandDims(1)), joined) as tf.Tensor3D;
}

/** Every block's transform W2·ReLU(LN(W1·context)) of its own context; contexts [B,N,C] → [B,N,C]. */
function gcTransforms(contexts: tf.Tensor3D, blocks: GcBlock[]): tf.Tensor3D {
  const stacked = (pick: (b: GcBlock) => tf.Variable) => tf.stack(blocks.map(pick));
  const b = blocks.length;
  const eps = (blocks[0] as GcBlock).parts.epsilon;
  const z = tf.add(tf.matMul(contexts, stacked((g) => g.parts.w1) as tf.Tensor3D), stacked((g) => g.parts.b1).reshape([b, 1, -1]));
  const { mean, variance } = tf.moments(z, 2, true);
  const normed = tf
    .sub(z, mean)
    .div(tf.sqrt(tf.add(variance, eps)))
    .mul(stacked((g) => g.parts.lnScale).reshape([b, 1, -1]))
    .add(stacked((g) => g.parts.lnShift).reshape([b, 1, -1]));
  return tf.add(
    tf.matMul(tf.relu(normed) as tf.Tensor3D, stacked((g) => g.parts.w2) as tf.Tensor3D),
    stacked((g) => g.parts.b2).reshape([b, 1, -1]),
  ) as tf.Tensor3D;
}

/** The four FGD terms summed over levels (before the weights alpha … lambda), as `fgd` defines them. */
export function joinedFgdTerms(inputs: JoinedFgdInputs, params: JoinedFgdParams): { fg: tf.Scalar; bg: tf.Scalar; attention: tf.Scalar; global: tf.Scalar } {
  return tf.tidy(() => {
    const layout = layoutOf(inputs.featT);
    const { n, levels, positions } = layout;
    const ft = stopGradient(joinLevels(inputs.featT));
    const fs = joinLevels(inputs.featS);
    const { spatial: spatialT, channel: channelT } = withoutTape(() => attention(ft, layout, params.temp));
    const attS = attention(fs, layout, params.temp);

    // Focal: each level's fg and bg mask rows [N,2L,P], weighted by the teacher's spatial
    // attention, times the squared difference [N,P,C] → [N,2L,C], then the channel attention.
    const rows = new Float32Array(n * 2 * levels * positions);
    let offset = 0;
    inputs.masks.forEach((m, l) => {
      const area = inputs.featT[l]!.shape[1] * inputs.featT[l]!.shape[2];
      for (let i = 0; i < n; i++) {
        rows.set(m.fg.subarray(i * area, (i + 1) * area), (i * 2 * levels + l) * positions + offset);
        rows.set(m.bg.subarray(i * area, (i + 1) * area), (i * 2 * levels + levels + l) * positions + offset);
      }
      offset += area;
    });
    const maskRows = tf.mul(tf.tensor3d(rows, [n, 2 * levels, positions]), spatialT.expandDims(1)) as tf.Tensor3D;
    const diff = tf.sub(fs, ft) as tf.Tensor3D;
    const focal = tf.matMul(maskRows, tf.square(diff) as tf.Tensor3D).reshape([n, 2, levels, -1]);
    const focalSums = tf.sum(tf.mul(focal, channelT.expandDims(1)), [0, 2, 3]).div(n);
    const fg = focalSums.slice([0], [1]).reshape([]) as tf.Scalar;
    const bg = focalSums.slice([1], [1]).reshape([]) as tf.Scalar;

    const attentionTerm = tf
      .add(tf.sum(tf.abs(tf.sub(attS.channel, channelT))), tf.sum(tf.abs(tf.sub(attS.spatial, spatialT))))
      .div(n) as tf.Scalar;

    let global: tf.Scalar = tf.scalar(0);
    if (params.lambda !== 0) {
      const gc = inputs.gc;
      if (!gc) throw new Error('FGD: the joined levels need GcBlocks when lambda is not 0.');
      const studentBlocks = gc.map((g) => g.gcS);
      const teacherBlocks = gc.map((g) => g.gcT);
      // Contexts [N,L,C] per side → [2L,N,C], one batched transform for all 2L blocks.
      const contexts = tf.concat([gcContext(fs, studentBlocks, layout), gcContext(ft, teacherBlocks, layout)], 1).transpose([1, 0, 2]) as tf.Tensor3D;
      const t = gcTransforms(contexts, [...studentBlocks, ...teacherBlocks]);
      const delta = tf.sub(t.slice([0, 0, 0], [levels, -1, -1]), t.slice([levels, 0, 0], [levels, -1, -1])).transpose([1, 0, 2]) as tf.Tensor3D;
      // Each level's t_S − t_T spread over its positions: [P,L]·[N,L,C] → [N,P,C].
      const spread = tf.matMul(layout.member.expandDims(0) as tf.Tensor3D, delta);
      global = tf.sum(tf.square(tf.add(diff, spread))).div(n) as tf.Scalar;
    }
    return { fg, bg, attention: attentionTerm, global };
  });
}
