/**
 * Binary cross-entropy with logits per element, softplus(x) − x·y, differentiable in x (its
 * gradient (σ(x) − y)·dy; the target y is a constant). On wasm the stock Sigmoid (vectorised) and
 * one elementwise program write every element's loss and derivative, softplus coming from σ
 * (softplus-program.ts); tfjs's Softplus there is a scalar loop, and its autodiff adds a Sigmoid
 * and a product over the whole block. Elsewhere tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ew, type ElementwiseProgram } from '../graph/elementwise-program';
import { logitLoss } from './logit-loss';
import { softplusFromSigmoid } from './softplus-program';

const X = ew.input(0);
const Y = ew.input(1);
const SIGMA = ew.input(2);
const { lets, softplus } = softplusFromSigmoid(X, SIGMA);

/** Inputs x, y, σ; outputs the loss and its derivative in x. */
const BCE_PROGRAM: ElementwiseProgram = {
  inputs: 3,
  params: 0,
  lets,
  outputs: [ew.sub(softplus, ew.mul(X, Y)), ew.sub(SIGMA, Y)],
};

/** softplus(x) − x·y per element, x and y float32 of one shape; the caller owns the result. */
export function bceWithLogits(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
  return logitLoss('bceWithLogits', x, y, BCE_PROGRAM, (sigma) => [tf.sub(tf.softplus(x), tf.mul(x, y)), tf.sub(sigma, y)]);
}
