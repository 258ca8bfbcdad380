/** Element-wise ops with broadcasting: arithmetic, comparisons and activations. */
import * as tf from '@tensorflow/tfjs-core';
import { attr } from '../model-json';
import { activate } from './conv';
import { add, biasAdd } from './bias-add';
import { withoutTape } from './tape';
import { input, op, type OpDef, type OpOptions } from './types';

const binary = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, options?: OpOptions) =>
  op((inputs, ctx) => f(input(inputs, 0, ctx.node), input(inputs, 1, ctx.node)), options);
const unary = (f: (a: tf.Tensor) => tf.Tensor, options?: OpOptions) => op((inputs, ctx) => f(input(inputs, 0, ctx.node)), options);
/** tfjs registers no gradient for these (comparisons but GreaterEqual, logical ops). */
const NO_GRADIENT: OpOptions = { hasGradient: false };

/**
 * a / b, 0 where b = 0. tf.divNoNan compares b with 0 on the tape (Equal has no gradient) and
 * divides by the zeros (0 · inf = NaN in the gradient): here the mask is taken off the tape and
 * the zeros are replaced by ones before dividing.
 */
function divNoNan(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const zero = withoutTape(() => tf.equal(b, 0));
  const q = tf.div(a, tf.where(zero, tf.onesLike(b), b));
  return tf.where(zero, tf.zerosLike(q), q);
}

export const elementwiseOps: Record<string, OpDef> = {
  Add: binary(add),
  AddV2: binary(add),
  BiasAdd: binary(biasAdd),
  AddN: op((inputs) => tf.addN(inputs)),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  RealDiv: binary(tf.div),
  Div: binary(tf.div),
  DivNoNan: binary(divNoNan),
  FloorDiv: binary(tf.floorDiv),
  FloorMod: binary(tf.mod),
  Mod: binary(tf.mod),
  Maximum: binary(tf.maximum),
  Minimum: binary(tf.minimum),
  Pow: binary(tf.pow),
  SquaredDifference: binary(tf.squaredDifference),
  Equal: binary(tf.equal, NO_GRADIENT),
  NotEqual: binary(tf.notEqual, NO_GRADIENT),
  Greater: binary(tf.greater, NO_GRADIENT),
  GreaterEqual: binary(tf.greaterEqual),
  Less: binary(tf.less, NO_GRADIENT),
  LessEqual: binary(tf.lessEqual, NO_GRADIENT),
  LogicalAnd: binary(tf.logicalAnd, NO_GRADIENT),
  LogicalOr: binary(tf.logicalOr, NO_GRADIENT),
  LogicalNot: unary(tf.logicalNot, NO_GRADIENT),
  Select: op((inputs, ctx) => tf.where(input(inputs, 0, ctx.node), input(inputs, 1, ctx.node), input(inputs, 2, ctx.node))),
  SelectV2: op((inputs, ctx) => tf.where(input(inputs, 0, ctx.node), input(inputs, 1, ctx.node), input(inputs, 2, ctx.node))),
  Relu: unary(tf.relu),
  Relu6: unary(tf.relu6),
  Elu: unary(tf.elu),
  Selu: unary(tf.selu),
  LeakyRelu: op((inputs, ctx) => activate(input(inputs, 0, ctx.node), 'LeakyRelu', ctx.node)),
  Prelu: binary(tf.prelu),
  Sigmoid: unary(tf.sigmoid),
  Tanh: unary(tf.tanh),
  Softplus: unary(tf.softplus),
  Exp: unary(tf.exp),
  Sin: unary(tf.sin),
  Cos: unary(tf.cos),
  Atan2: binary(tf.atan2),
  Log: unary(tf.log),
  Log1p: unary(tf.log1p),
  Neg: unary(tf.neg),
  Abs: unary(tf.abs),
  Sqrt: unary(tf.sqrt),
  Rsqrt: unary(tf.rsqrt),
  Square: unary(tf.square),
  Reciprocal: unary(tf.reciprocal),
  Floor: unary(tf.floor),
  Ceil: unary(tf.ceil),
  Round: unary(tf.round),
  Sign: unary(tf.sign),
  Erf: unary(tf.erf),
  Softmax: unary((x) => tf.softmax(x)),
  LogSoftmax: unary((x) => tf.logSoftmax(x)),
  ClipByValue: op((inputs, ctx) => tf.clipByValue(input(inputs, 0, ctx.node), ctx.values(1)[0]!, ctx.values(2)[0]!), { host: [1, 2] }),
  Identity: unary((x) => x.clone()),
  StopGradient: unary((x) => x.clone()),
  Snapshot: unary((x) => x.clone()),
  // Cast keeps gradients only float → float (tfjs differentiates cast as identity).
  Cast: op((inputs, ctx) => {
    const to = attr.dtype(ctx.node, 'DstT');
    const dtype = to === 'DT_BOOL' ? 'bool' : to === 'DT_FLOAT' || to === 'DT_HALF' || to === 'DT_DOUBLE' ? 'float32' : 'int32';
    return tf.cast(input(inputs, 0, ctx.node), dtype);
  }),
};
