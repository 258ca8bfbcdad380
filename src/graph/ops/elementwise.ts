/** Element-wise ops with broadcasting: arithmetic, comparisons and activations. */
import * as tf from '@tensorflow/tfjs-core';
import { attr } from '../model-json';
import { activate } from './conv';
import { input, op, type OpDef } from './types';

const binary = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, differentiable = true) =>
  op((inputs, ctx) => f(input(inputs, 0, ctx.node), input(inputs, 1, ctx.node)), differentiable);
const unary = (f: (a: tf.Tensor) => tf.Tensor, differentiable = true) => op((inputs, ctx) => f(input(inputs, 0, ctx.node)), differentiable);

export const elementwiseOps: Record<string, OpDef> = {
  Add: binary(tf.add),
  AddV2: binary(tf.add),
  BiasAdd: binary(tf.add),
  AddN: op((inputs) => tf.addN(inputs)),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  RealDiv: binary(tf.div),
  Div: binary(tf.div),
  DivNoNan: binary(tf.divNoNan),
  FloorDiv: binary(tf.floorDiv, false),
  FloorMod: binary(tf.mod, false),
  Mod: binary(tf.mod, false),
  Maximum: binary(tf.maximum),
  Minimum: binary(tf.minimum),
  Pow: binary(tf.pow),
  SquaredDifference: binary(tf.squaredDifference),
  Equal: binary(tf.equal, false),
  NotEqual: binary(tf.notEqual, false),
  Greater: binary(tf.greater, false),
  GreaterEqual: binary(tf.greaterEqual, false),
  Less: binary(tf.less, false),
  LessEqual: binary(tf.lessEqual, false),
  LogicalAnd: binary(tf.logicalAnd, false),
  LogicalOr: binary(tf.logicalOr, false),
  LogicalNot: unary(tf.logicalNot, false),
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
  Log: unary(tf.log),
  Log1p: unary(tf.log1p),
  Neg: unary(tf.neg),
  Abs: unary(tf.abs),
  Sqrt: unary(tf.sqrt),
  Rsqrt: unary(tf.rsqrt),
  Square: unary(tf.square),
  Reciprocal: unary(tf.reciprocal),
  Floor: unary(tf.floor, false),
  Ceil: unary(tf.ceil, false),
  Round: unary(tf.round, false),
  Sign: unary(tf.sign, false),
  Erf: unary(tf.erf),
  Softmax: unary((x) => tf.softmax(x)),
  LogSoftmax: unary((x) => tf.logSoftmax(x)),
  ClipByValue: op((inputs, ctx) => tf.clipByValue(input(inputs, 0, ctx.node), ctx.values(1)[0]!, ctx.values(2)[0]!)),
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
