/**
 * FGD's four terms on one level with their gradient written out: the same loss and gradients as
 * `levelTerms` in fgd.ts (which tfjs differentiates op by op), in fewer kernels and passes
 * (NanoDet-g's three levels: 632 kernels against 812, about half the time on wasm; README,
 * "the methods' gradients written out"). Autodiff re-derives each op's gradient separately,
 * broadcasting dy over the map again for every mean and product; here one op takes the student's
 * features and both GcBlocks' weights, and its backward is the closed form below.
 *
 * Per level, with s the (aligned) student and t the teacher features [N,P,C] (P = H·W),
 * d = s − t, A_T^sp [N,P] and A_T^ch [N,C] the teacher's attention (constants):
 *
 * - fg + bg: ∂/∂s = d · (2/N) (g_fg·M_fg + g_bg·M_bg) · A_T^sp ⊗ A_T^ch.
 * - attention: A_S^sp = P·softmax(u), u = mean_c |s| / temp, and A_S^ch = C·softmax(v),
 *   v = mean_p |s| / temp. With e = (g_at/N)·sign(A_S − A_T) (tfjs's sign: −1 at 0, as its Abs
 *   gradient), ∂/∂u = P·y ⊙ (e − Σ y·e) (softmax backward), and
 *   ∂/∂s = sign(s) · (∂/∂u ⊗ 1 / (C·temp) + 1 ⊗ ∂/∂v / (P·temp)).
 * - global: R_S(s) − R_T(t) = d + Δ, Δ = tr_S − tr_T [N,C] (each GcBlock's transform of its
 *   context, the same at every position), so
 *   Σ (d + Δ)² = Σ d² + 2 Σ Δ·dsum + P Σ Δ², dsum = Σ_p d [N,C]: the forward needs no [N,P,C]
 *   sum with Δ. ∂/∂s = κ(d + Δ) with κ = 2·g_gl/N, and ∂/∂Δ = κ(dsum + P·Δ) goes back through
 *   both transforms (W2, ReLU, LayerNorm, W1 on [N,C] rows) to each context
 *   c = Σ_p y_p x_p, y = softmax_p(x·k + b): ∂/∂y_p = Σ_c ∂c·x_p, ∂/∂logit = y ⊙ (∂y − Σ y·∂y),
 *   ∂/∂k = Σ_{n,p} ∂logit·x_p, ∂/∂b = Σ ∂logit, and for the student ∂/∂x_p += y_p·∂c + ∂logit_p·k.
 *
 * The student's gradient is then one elementwise pass over [N,P,C] from five maps (d, s and
 * three [N,P]⊗[N,C] products). Sums over the positions of each image are average pools on wasm
 * (bias-add.ts, channelSums: the stock Sum transposes first).
 */
import * as tf from '@tensorflow/tfjs';
import { ew, runElementwise, type ElementwiseProgram } from '../graph/elementwise-program';
import { channelSums } from '../graph/ops/bias-add';
import { withLazyGradients } from '../graph/ops/tape';
import type { GcBlock, GcBlockParts } from './gc-block';

export type FgdTerms = Record<'fg' | 'bg' | 'attention' | 'global', tf.Scalar>;

/** Means over the positions of each image, [N,H,W,C] → [N,C]. */
function positionMeans(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  // On wasm an average pool: its Mean over [1,2] would move the whole map first.
  if (tf.getBackend() === 'wasm') return tf.avgPool(x, [h, w], [h, w], 'valid').reshape([n, c]);
  return tf.mean(x, [1, 2]) as tf.Tensor2D;
}

/**
 * The softmaxes of FGD's attention of F [N,H,W,C]: over the positions of mean_c |F| / temp [N,H·W],
 * and over the channels of mean_HW |F| / temp [N,C] (`fgdAttention` scales them by H·W and C).
 */
export function attentionSoftmaxes(f: tf.Tensor4D, temp: number): { spatial: tf.Tensor2D; channel: tf.Tensor2D } {
  return tf.tidy(() => {
    const [n, h, w] = f.shape;
    const value = tf.abs(f);
    const spatial = tf.softmax(tf.div(tf.mean(value, 3).reshape([n, h * w]), temp)) as tf.Tensor2D;
    const channel = tf.softmax(tf.div(positionMeans(value), temp)) as tf.Tensor2D;
    return { spatial, channel };
  });
}

/** Softmax's backward along the last axis: y ⊙ (g − Σ y·g). */
function softmaxBackward(y: tf.Tensor, g: tf.Tensor): tf.Tensor {
  return tf.mul(y, tf.sub(g, tf.sum(tf.mul(y, g), -1, true)));
}

/** What a GcBlock's transform keeps for its backward. */
interface TransformCache {
  context: tf.Tensor2D;
  normed: tf.Tensor2D;
  sigma: tf.Tensor2D;
  preRelu: tf.Tensor2D;
}

/** W2·ReLU(LN(W1·context + b1)) + b2 of contexts [N,C] (gc-block.ts). */
function transform(context: tf.Tensor2D, p: GcBlockParts): { out: tf.Tensor2D; cache: TransformCache } {
  const z = tf.add(tf.matMul(context, p.w1 as tf.Tensor2D), p.b1) as tf.Tensor2D;
  const { mean, variance } = tf.moments(z, 1, true);
  const sigma = tf.sqrt(tf.add(variance, p.epsilon)) as tf.Tensor2D;
  const normed = tf.div(tf.sub(z, mean), sigma) as tf.Tensor2D;
  const preRelu = tf.add(tf.mul(normed, p.lnScale), p.lnShift) as tf.Tensor2D;
  const out = tf.add(tf.matMul(tf.relu(preRelu) as tf.Tensor2D, p.w2 as tf.Tensor2D), p.b2) as tf.Tensor2D;
  return { out, cache: { context, normed, sigma, preRelu } };
}

/** The transform's backward from ∂out [N,C]: ∂context and its weights' gradients (w1, b1, lnScale, lnShift, w2, b2). */
function transformBackward(gOut: tf.Tensor2D, c: TransformCache, p: GcBlockParts): { gContext: tf.Tensor2D; weights: tf.Tensor[] } {
  const relu = tf.relu(c.preRelu) as tf.Tensor2D;
  const gB2 = tf.sum(gOut, 0);
  const gW2 = tf.matMul(relu, gOut, true, false);
  const gPre = tf.mul(tf.matMul(gOut, p.w2 as tf.Tensor2D, false, true), tf.step(c.preRelu));
  const gScale = tf.sum(tf.mul(gPre, c.normed), 0);
  const gShift = tf.sum(gPre, 0);
  const gNormed = tf.mul(gPre, p.lnScale);
  // LayerNorm's backward: (g − mean g − x̂·mean(g·x̂)) / σ.
  const gZ = tf.div(tf.sub(tf.sub(gNormed, tf.mean(gNormed, 1, true)), tf.mul(c.normed, tf.mean(tf.mul(gNormed, c.normed), 1, true))), c.sigma) as tf.Tensor2D;
  const gB1 = tf.sum(gZ, 0);
  const gW1 = tf.matMul(c.context, gZ, true, false);
  const gContext = tf.matMul(gZ, p.w1 as tf.Tensor2D, false, true) as tf.Tensor2D;
  return { gContext, weights: [gW1, gB1, gScale, gShift, gW2, gB2] };
}

/** A GcBlock's attention pooling of x [N,P,C]: weights y [N,P] and context Σ_p y_p x_p [N,C]. */
function contextOf(x: tf.Tensor3D, h: number, w: number, p: GcBlockParts): { weights: tf.Tensor2D; context: tf.Tensor2D } {
  const [n, positions, c] = x.shape;
  const logits = tf.add(tf.sum(tf.mul(x, p.maskKernel.reshape([c])), 2), p.maskBias);
  const weights = tf.softmax(logits) as tf.Tensor2D;
  const context = tf.mul(positionMeans(tf.mul(x, weights.reshape([n, positions, 1])).reshape([n, h, w, c]) as tf.Tensor4D), positions) as tf.Tensor2D;
  return { weights, context };
}

/** ∂ of a context's weights' logits, and the pooling kernel's and bias's gradients, from ∂context. */
function contextBackward(x: tf.Tensor3D, weights: tf.Tensor2D, gContext: tf.Tensor2D, p: GcBlockParts): { gLogits: tf.Tensor2D; gKernel: tf.Tensor; gBias: tf.Tensor } {
  const [n, positions, c] = x.shape;
  const gWeights = tf.sum(tf.mul(x, gContext.reshape([n, 1, c])), 2);
  const gLogits = softmaxBackward(weights, gWeights) as tf.Tensor2D;
  const gKernel = channelSums(tf.mul(x, gLogits.reshape([n, positions, 1]))).reshape(p.maskKernel.shape);
  const gBias = tf.sum(gLogits).reshape(p.maskBias.shape);
  return { gLogits, gKernel, gBias };
}

/**
 * The student's gradient from its five maps: d·m1 + sign(s)·m2 + m3, sign as tfjs's Abs
 * gradient has it (−1 at 0). One pass on wasm.
 */
const STUDENT_GRADIENT: ElementwiseProgram = {
  inputs: 5,
  params: 0,
  outputs: [
    ew.add(
      ew.add(ew.mul(ew.input(0), ew.input(2)), ew.select('gt', ew.input(1), ew.constant(0), ew.input(3), ew.neg(ew.input(3)))),
      ew.input(4),
    ),
  ],
};

const PARTS = ['maskKernel', 'maskBias', 'w1', 'b1', 'lnScale', 'lnShift', 'w2', 'b2'] as const;
const partsOf = (b: GcBlock) => PARTS.map((k) => b.parts[k]);

/**
 * FGD's terms (before their weights) of one level: the teacher t and the aligned student s
 * [N,H,W,C], the masks of `batchMasks`, the GcBlocks (null when lambda is 0: no global term).
 */
export function fusedFgdLevel(
  t: tf.Tensor4D,
  s: tf.Tensor4D,
  masks: { fg: Float32Array; bg: Float32Array },
  gc: { gcS: GcBlock; gcT: GcBlock } | null,
  temp: number,
): FgdTerms {
  const [n, h, w, c] = t.shape;
  const positions = h * w;
  const inputs = [s, ...(gc ? [...partsOf(gc.gcS), ...partsOf(gc.gcT)] : [])];
  const terms = withLazyGradients(
    inputs,
    (save) => {
      const S = s.reshape([n, positions, c]) as tf.Tensor3D;
      const T = t.reshape([n, positions, c]) as tf.Tensor3D;
      // The teacher's attention: constants.
      const softmaxT = attentionSoftmaxes(t, temp);
      const spatialT = tf.mul(softmaxT.spatial, positions);
      const channelT = tf.mul(softmaxT.channel, c);
      const weightFg = tf.mul(tf.tensor2d(masks.fg, [n, positions]), spatialT);
      const weightBg = tf.mul(tf.tensor2d(masks.bg, [n, positions]), spatialT);
      // Focal: the squared difference weighted per channel, summed over channels [N,P].
      const d = tf.sub(S, T) as tf.Tensor3D;
      const squared = tf.square(d);
      const perPosition = tf.sum(tf.mul(squared, channelT.reshape([n, 1, c])), 2);
      const fg = tf.div(tf.sum(tf.mul(perPosition, weightFg)), n);
      const bg = tf.div(tf.sum(tf.mul(perPosition, weightBg)), n);
      // The student's attention and its distance to the teacher's.
      const { spatial: spatialS, channel: channelS } = attentionSoftmaxes(s, temp);
      const offSpatial = tf.sub(tf.mul(spatialS, positions), spatialT);
      const offChannel = tf.sub(tf.mul(channelS, c), channelT);
      const attention = tf.div(tf.add(tf.sum(tf.abs(offChannel)), tf.sum(tf.abs(offSpatial))), n);
      const kept: tf.Tensor[] = [s, d, channelT, weightFg, weightBg, spatialS, channelS, offSpatial, offChannel];
      let global: tf.Tensor = tf.scalar(0);
      if (gc) {
        const ps = gc.gcS.parts;
        const pt = gc.gcT.parts;
        const poolS = contextOf(S, h, w, ps);
        const poolT = contextOf(T, h, w, pt);
        const trS = transform(poolS.context, ps);
        const trT = transform(poolT.context, pt);
        const delta = tf.sub(trS.out, trT.out);
        const dSum = tf.mul(positionMeans(d.reshape([n, h, w, c]) as tf.Tensor4D), positions);
        const squaredSum = tf.mul(tf.sum(positionMeans(squared.reshape([n, h, w, c]) as tf.Tensor4D)), positions);
        global = tf.div(tf.addN([squaredSum, tf.mul(tf.sum(tf.mul(delta, dSum)), 2), tf.mul(tf.sum(tf.square(delta)), positions)]), n);
        const cache = (x: TransformCache) => [x.context, x.normed, x.sigma, x.preRelu];
        kept.push(t, poolS.weights, poolT.weights, delta, dSum, ...cache(trS.cache), ...cache(trT.cache));
      }
      save(kept);
      return tf.stack([fg, bg, attention, global]);
    },
    (dy, saved) => {
      const [sSaved, d, channelT, weightFg, weightBg, spatialS, channelS, offSpatial, offChannel, ...rest] = saved as [tf.Tensor4D, tf.Tensor3D, ...tf.Tensor2D[]];
      const [gFg, gBg, gAttention, gGlobal] = tf.unstack(dy);
      const S = sSaved.reshape([n, positions, c]) as tf.Tensor3D;
      // fg and bg: d times (2/N)(g_fg·M_fg + g_bg·M_bg)·A_T^sp ⊗ A_T^ch.
      const focal = tf.mul(tf.add(tf.mul(weightFg!, gFg!), tf.mul(weightBg!, gBg!)), 2 / n);
      let m1: tf.Tensor = tf.mul(focal.reshape([n, positions, 1]), channelT!.reshape([n, 1, c]));
      // Attention: through each softmax and the mean of |s|.
      const scale = tf.div(gAttention!, n);
      const gU = softmaxBackward(spatialS!, tf.mul(tf.step(offSpatial!, -1), tf.mul(scale, positions)));
      const gV = softmaxBackward(channelS!, tf.mul(tf.step(offChannel!, -1), tf.mul(scale, c)));
      const m2 = tf.add(tf.div(gU, c * temp).reshape([n, positions, 1]), tf.div(gV, positions * temp).reshape([n, 1, c]));
      let m3: tf.Tensor;
      const weightGrads: tf.Tensor[] = [];
      if (gc) {
        const [tSaved, weightsS, weightsT, delta, dSum, ...caches] = rest as [tf.Tensor4D, ...tf.Tensor2D[]];
        const cacheAt = (i: number): TransformCache => ({ context: caches[i]!, normed: caches[i + 1]!, sigma: caches[i + 2]!, preRelu: caches[i + 3]! });
        const T = tSaved.reshape([n, positions, c]) as tf.Tensor3D;
        const kappa = tf.mul(gGlobal!, 2 / n);
        const gDelta = tf.mul(tf.add(dSum!, tf.mul(delta!, positions)), kappa) as tf.Tensor2D;
        const ps = gc.gcS.parts;
        const pt = gc.gcT.parts;
        const backS = transformBackward(gDelta, cacheAt(0), ps);
        const backT = transformBackward(tf.neg(gDelta) as tf.Tensor2D, cacheAt(4), pt);
        const poolS = contextBackward(S, weightsS!, backS.gContext, ps);
        const poolT = contextBackward(T, weightsT!, backT.gContext, pt);
        weightGrads.push(poolS.gKernel, poolS.gBias, ...backS.weights, poolT.gKernel, poolT.gBias, ...backT.weights);
        // κ(d + Δ), and the context's pull on each position: y_p·∂c + ∂logit_p·k.
        m1 = tf.add(m1, kappa);
        m3 = tf.add(
          tf.add(tf.mul(weightsS!.reshape([n, positions, 1]), backS.gContext.reshape([n, 1, c])), tf.mul(delta!, kappa).reshape([n, 1, c])),
          tf.mul(poolS.gLogits.reshape([n, positions, 1]), ps.maskKernel.reshape([1, 1, c])),
        );
      } else {
        m3 = tf.zeros([n, positions, c]);
      }
      const full = (x: tf.Tensor) => (x.size === n * positions * c ? x : tf.broadcastTo(x, [n, positions, c]));
      const [gS] = runElementwise(STUDENT_GRADIENT, [d!, S, full(m1), full(m2), full(m3)]);
      const grads = [gS!.reshape(s.shape), ...weightGrads];
      return grads.map((g) => () => g);
    },
  );
  const [fg, bg, attention, global] = tf.unstack(terms) as tf.Scalar[];
  return { fg: fg!, bg: bg!, attention: attention!, global: global! };
}
