/**
 * The sum of the Quality Focal Loss over a dense [R, classes] block of logits, as few passes over
 * the block as the backend allows. QFL (beta 2) of logit x and soft target y is
 *   L = BCE(x, y)·(σ − y)²,  BCE = softplus(x) − x·y,  σ = sigmoid(x),
 * and with y a constant its derivative is
 *   dL/dx = (σ − y)³ + 2·BCE·(σ − y)·σ(1 − σ).
 * Written with tfjs ops, the loss and its autodiff are about twenty kernels over the whole block
 * (a batch-4 NanoDet head: 14,196 × 80 values), and tfjs-wasm's Softplus alone, a scalar loop,
 * takes as long as the rest. Here, on wasm, the block is read by two kernels: the stock Sigmoid
 * (vectorised) and one fused elementwise loop that writes every element's loss and derivative
 * (elementwise-program.ts); backprop multiplies the saved derivative by dy. Elsewhere the same
 * formulas run as tfjs ops.
 *
 * Softplus comes from σ, without exp or log kernels: with lo = min(σ, 1 − σ) and
 * hi = max(σ, 1 − σ) (σ(−|x|) and σ(|x|)), u = lo / hi = e^−|x| and
 *   softplus(x) = max(x, 0) + log1p(u),  log1p(u) = 2·atanh(s),  s = u / (2 + u) ∈ [0, 1/3],
 * the atanh series to s¹¹ (the next term is below 2·10⁻⁸ of the sum). So softplus is accurate to
 * float32 rounding where x < 0 and to within about 10⁻⁷ absolute where x > 0 (1 − σ rounds), and
 * σ(1 − σ) = lo·hi.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, runElementwise, type ElementwiseProgram, type Expr } from '../graph/elementwise-program';
import { withLazyGradients } from '../graph/ops/tape';

const { input, constant, ref, add, sub, mul, div, min, max } = ew;

/** Inputs x, y, σ; lets in order; outputs the loss and its derivative per element. */
const X = input(0);
const Y = input(1);
const SIGMA = input(2);
const [LO, HI, S, S2, SOFTPLUS, GAP, BCE] = [0, 1, 2, 3, 4, 5, 6].map(ref) as [Expr, Expr, Expr, Expr, Expr, Expr, Expr];

/** 1 + s²/3 + s⁴/5 + … + s¹⁰/11, by Horner's rule in s². */
const atanhSeries = [1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11].reduceRight<Expr>((inner, c) => add(constant(c), mul(S2, inner)), constant(0));
const LOG1P = mul(mul(constant(2), S), add(constant(1), mul(S2, atanhSeries)));

const QFL_PROGRAM: ElementwiseProgram = {
  inputs: 3,
  params: 0,
  lets: [
    min(SIGMA, sub(constant(1), SIGMA)),
    max(SIGMA, sub(constant(1), SIGMA)),
    (() => {
      const u = div(LO, HI);
      return div(u, add(constant(2), u));
    })(),
    mul(S, S),
    add(max(X, constant(0)), LOG1P),
    sub(SIGMA, Y),
    sub(SOFTPLUS, mul(X, Y)),
  ],
  outputs: [
    mul(BCE, mul(GAP, GAP)),
    add(mul(mul(GAP, GAP), GAP), mul(mul(mul(constant(2), BCE), GAP), mul(LO, HI))),
  ],
};

/** Per element: the QFL (beta 2) and its derivative in x, as tfjs ops (the backends without fused loops). */
function lossAndDerivativeWithOps(x: tf.Tensor, y: tf.Tensor, sigma: tf.Tensor): tf.Tensor[] {
  return tf.tidy(() => {
    const gap = tf.sub(sigma, y);
    const bce = tf.sub(tf.softplus(x), tf.mul(x, y));
    const gap2 = tf.square(gap);
    const loss = tf.mul(bce, gap2);
    const derivative = tf.add(tf.mul(gap2, gap), tf.mul(tf.mul(tf.mul(bce, gap), 2), tf.mul(sigma, tf.sub(1, sigma))));
    return [loss, derivative];
  });
}

/**
 * Sum over every element of QFL(logits, target) with beta 2, differentiable in `logits` only
 * (`target`, a constant of the same shape, gets no gradient). A scalar the caller owns.
 */
export function qualityFocalLossSum(logits: tf.Tensor, target: tf.Tensor): tf.Scalar {
  if (logits.dtype !== 'float32' || target.dtype !== 'float32' || !tf.util.arraysEqual(logits.shape, target.shape)) {
    throw new Error(`qualityFocalLossSum needs float32 logits and targets of one shape, got [${logits.shape.join(',')}] and [${target.shape.join(',')}].`);
  }
  return withLazyGradients(
    [logits],
    (save) => {
      const sigma = tf.sigmoid(logits);
      const [loss, derivative] = runElementwise(QFL_PROGRAM, [logits, target, sigma], [], () => lossAndDerivativeWithOps(logits, target, sigma));
      const sum = tf.sum(loss!);
      tf.dispose([sigma, loss!]);
      // Kept only while a tape records (tfjs ignores the save otherwise).
      save([derivative!]);
      derivative!.dispose();
      return sum;
    },
    (dy, [derivative]) => [() => tf.mul(dy, derivative!)],
  ) as tf.Scalar;
}
