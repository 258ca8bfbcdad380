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
 * Softplus comes from σ, without exp or log kernels (softplus-program.ts), and σ(1 − σ) = lo·hi.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram, type Expr } from '../graph/elementwise-program';
import { logitLoss } from './logit-loss';
import { softplusFromSigmoid } from './softplus-program';

const { input, constant, ref, add, sub, mul } = ew;

/** Inputs x, y, σ; lets: softplus's (softplus-program.ts), then these; outputs the loss and its derivative per element. */
const X = input(0);
const Y = input(1);
const SIGMA = input(2);
const { lets: softplusLets, lo: LO, hi: HI, softplus: SOFTPLUS } = softplusFromSigmoid(X, SIGMA);
const [GAP, BCE] = [softplusLets.length, softplusLets.length + 1].map(ref) as [Expr, Expr];

const QFL_PROGRAM: ElementwiseProgram = {
  inputs: 3,
  params: 0,
  lets: [...softplusLets, sub(SIGMA, Y), sub(SOFTPLUS, mul(X, Y))],
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
  return logitLoss('qualityFocalLossSum', logits, target, QFL_PROGRAM, (sigma) => lossAndDerivativeWithOps(logits, target, sigma), (loss) => tf.sum(loss)) as tf.Scalar;
}
