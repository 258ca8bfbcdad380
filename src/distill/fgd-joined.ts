/**
 * FGD over every level at once: the same loss and gradients as `fgd` level by level (fgd.ts),
 * in fewer kernels (on WebGPU 423 instead of 758 for NanoDet-g's three levels). The levels'
 * features are put end to end, [N,H,W,C] → [N,P,C] with P = Σ H·W, for what is per position
 * (differences, weights, sums), and what FGD does per level runs on all levels together:
 *
 * - a softmax within each level shifts by its own level's maximum (taken off the tape: any
 *   constant per level gives the same softmax and gradient), exponentiates once and divides by
 *   its level's sum, the sums and their spreading back being products of the [N,P] logits with
 *   a 0/1 level-membership matrix [P,L];
 * - the means over a level's positions (channel attention, GcBlock contexts) run on each level's
 *   own tensor, and per-level rows ([N,1,C]) are spread over their positions by a broadcast add:
 *   as products with the membership matrix they would be matrices of three rows, which wasm
 *   multiplies at a few percent of its usual rate;
 * - the levels' GcBlocks (student and teacher) are stacked into one batched product per weight,
 *   [2L,N,C]·[2L,C,C/2] and so on;
 * - R_S(F_S) − R_T(F_T) = (F_S − F_T) + (t_S − t_T), each level's transform t spread over its
 *   positions.
 *
 * A GPU step is bound by dispatches (FGD alone cost 1.8x a plain step on an H200); on wasm this
 * path measured slower than the level-by-level one (and each level as one op, fgd-fused.ts, is
 * faster than both there), so `fgd` takes it on GPU backends only
 * (`joinLevelsByDefault`), when no maps are wanted, every level has the same channel count after
 * `align` and the GcBlocks come from createGcBlock with one epsilon.
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
  /** H·W of each level. */
  areas: number[];
  /** [P,L]: 1 where position p belongs to level l. */
  member: tf.Tensor2D;
  /** [L,P]: its transpose. */
  memberT: tf.Tensor2D;
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
  const outside = new Float32Array(positions * l).fill(-1e30);
  const levelArea = new Float32Array(positions);
  let p = 0;
  areas.forEach((area, level) => {
    for (let i = 0; i < area; i++, p++) {
      member[p * l + level] = 1;
      memberT[level * positions + p] = 1;
      outside[p * l + level] = 0;
      levelArea[p] = area;
    }
  });
  return {
    n,
    levels: l,
    positions,
    areas,
    member: tf.tensor2d(member, [positions, l]),
    memberT: tf.tensor2d(memberT, [l, positions]),
    outside: tf.tensor2d(outside, [positions, l]),
    levelArea: tf.tensor2d(levelArea, [1, positions]),
  };
}

/** Per level [N,H,W,C] → [N,H·W,C]. */
const flat = (levels: tf.Tensor4D[]) => levels.map((t) => t.reshape([t.shape[0], t.shape[1] * t.shape[2], t.shape[3]]) as tf.Tensor3D);

/** Per level [B,1,C] → [B,P,C], each level's row repeated over its positions. */
function spread(rows: tf.Tensor3D[], areas: number[]): tf.Tensor3D {
  // A broadcast add, not tf.tile or broadcastTo: their gradient is one slice per repetition
  // in tfjs, where an add's is one sum.
  return tf.concat(
    rows.map((r, l) => tf.add(r, tf.zeros([1, areas[l] as number, 1]))),
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

/**
 * FGD's spatial attention [N,P] (H·W · softmax within the level) and channel attention, one
 * [N,1,C] row per level. The means run on each level's own tensor: a per-level mean of the
 * joined tensor would be a product with a 3-row matrix, which wasm runs at a few percent of
 * its speed.
 */
function attention(levels: tf.Tensor3D[], layout: Layout, temp: number): { spatial: tf.Tensor2D; channel: tf.Tensor3D[] } {
  const c = (levels[0] as tf.Tensor3D).shape[2];
  const values = levels.map((x) => tf.abs(x));
  const spatialLogits = tf.div(tf.concat(values.map((v) => tf.mean(v, 2)), 1), temp) as tf.Tensor2D;
  const spatial = tf.mul(levelSoftmax(spatialLogits, layout), layout.levelArea) as tf.Tensor2D;
  const channel = values.map((v) => tf.mul(tf.softmax(tf.div(tf.mean(v, 1, true), temp)), c) as tf.Tensor3D);
  return { spatial, channel };
}

/** The context of each level's GcBlock, [N,1,C] per level: its positions pooled by its own softmax. */
function gcContexts(joined: tf.Tensor3D, levels: tf.Tensor3D[], blocks: GcBlock[], layout: Layout): tf.Tensor3D[] {
  const n = joined.shape[0];
  // Each position through its own level's 1x1 conv C→1: the kernels spread over the positions.
  const kernels = spread(blocks.map((b) => b.parts.maskKernel.reshape([1, 1, -1]) as tf.Tensor3D), layout.areas);
  const biases = tf.matMul(layout.member, tf.concat(blocks.map((b) => b.parts.maskBias), 0).reshape([layout.levels, 1])).reshape([1, -1]);
  const logits = tf.add(tf.sum(tf.mul(joined, kernels), 2), biases) as tf.Tensor2D;
  const weights = levelSoftmax(logits, layout);
  let offset = 0;
  return levels.map((x, l) => {
    const area = layout.areas[l] as number;
    const w = weights.slice([0, offset], [n, area]).reshape([n, 1, area]) as tf.Tensor3D;
    offset += area;
    return tf.matMul(w, x);
  });
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
    const { n, levels } = layout;
    const levelsT = flat(inputs.featT.map((t) => stopGradient(t)));
    const levelsS = flat(inputs.featS);
    const ft = tf.concat(levelsT, 1) as tf.Tensor3D;
    const fs = tf.concat(levelsS, 1) as tf.Tensor3D;
    const attT = withoutTape(() => {
      const a = attention(levelsT, layout, params.temp);
      // The teacher's channel attention at every position, for the focal terms.
      return { ...a, spread: spread(a.channel, layout.areas) };
    });
    const attS = attention(levelsS, layout, params.temp);

    // Focal: the squared difference weighted by the teacher's channel attention, summed over
    // channels [N,P], then by each mask times the teacher's spatial attention.
    const concatMasks = (pick: 'fg' | 'bg') => {
      const data = new Float32Array(n * layout.positions);
      let offset = 0;
      inputs.masks.forEach((m, l) => {
        const area = layout.areas[l] as number;
        for (let i = 0; i < n; i++) data.set(m[pick].subarray(i * area, (i + 1) * area), i * layout.positions + offset);
        offset += area;
      });
      return tf.mul(tf.tensor2d(data, [n, layout.positions]), attT.spatial);
    };
    const diff = tf.sub(fs, ft) as tf.Tensor3D;
    const perPosition = tf.sum(tf.mul(tf.square(diff), attT.spread), 2);
    const fg = tf.sum(tf.mul(perPosition, concatMasks('fg'))).div(n) as tf.Scalar;
    const bg = tf.sum(tf.mul(perPosition, concatMasks('bg'))).div(n) as tf.Scalar;

    const channelS = tf.concat(attS.channel, 1);
    const channelT = tf.concat(attT.channel, 1);
    const attentionTerm = tf
      .add(tf.sum(tf.abs(tf.sub(channelS, channelT))), tf.sum(tf.abs(tf.sub(attS.spatial, attT.spatial))))
      .div(n) as tf.Scalar;

    let global: tf.Scalar = tf.scalar(0);
    if (params.lambda !== 0) {
      const gc = inputs.gc;
      if (!gc) throw new Error('FGD: the joined levels need GcBlocks when lambda is not 0.');
      const studentBlocks = gc.map((g) => g.gcS);
      const teacherBlocks = gc.map((g) => g.gcT);
      // Contexts [N,1,C] per level and side → [2L,N,C], one batched transform for all 2L blocks.
      const contexts = tf
        .concat([...gcContexts(fs, levelsS, studentBlocks, layout), ...gcContexts(ft, levelsT, teacherBlocks, layout)], 1)
        .transpose([1, 0, 2]) as tf.Tensor3D;
      const t = gcTransforms(contexts, [...studentBlocks, ...teacherBlocks]);
      // Per level t_S − t_T [N,1,C], spread over the level's positions: R_S(F_S) − R_T(F_T).
      const delta = tf.sub(t.slice([0, 0, 0], [levels, -1, -1]), t.slice([levels, 0, 0], [levels, -1, -1])).transpose([1, 0, 2]) as tf.Tensor3D;
      const rows = Array.from({ length: levels }, (_, l) => delta.slice([0, l, 0], [-1, 1, -1]) as tf.Tensor3D);
      global = tf.sum(tf.square(tf.add(diff, spread(rows, layout.areas)))).div(n) as tf.Scalar;
    }
    return { fg, bg, attention: attentionTerm, global };
  });
}
