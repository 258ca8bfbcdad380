/**
 * Deferred transposes. Graphs converted from PyTorch through ONNX keep activations in NCHW and
 * wrap every convolution in a pair of transposes (NCHW→NHWC before, back after), with the
 * activation, padding, concatenation and additions in between done in NCHW: NanoDet-g runs 83
 * Transpose nodes, each a full copy of an activation in the forward and again in backprop.
 *
 * Here a Transpose only records its permutation: the value is held in its input's axis order
 * ("physical") with `perm` saying how to read it (logical = transpose(physical, perm)). Ops that
 * do not care about axis order (element-wise ops), or whose axis arguments can be renamed (pads,
 * concat and split axes), run on the physical tensor and pass the permutation on; a second
 * Transpose composes with the first, and where the composition is the identity (the pair around
 * a convolution) no data moves at all. Any other op gets the logical value, transposed then.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OpContext, OpDef } from './ops';

export type Perm = readonly number[];

/** transpose(transpose(x, p), q) = transpose(x, r) with r[i] = p[q[i]]. */
export function composePerms(p: Perm, q: Perm): number[] {
  return q.map((axis) => p[axis]!);
}

export const isIdentityPerm = (p: Perm): boolean => p.every((axis, i) => axis === i);

/** A value as the executor holds it: `tensor` read through `perm` (none: as it is). */
export interface Held {
  tensor: tf.Tensor;
  perm?: Perm;
}

/** The value in logical axis order. */
export function logical(held: Held): tf.Tensor {
  return held.perm ? tf.transpose(held.tensor, [...held.perm]) : held.tensor;
}

/** A new handle on the same data, visible to the gradient tape (Reshape never copies). */
const alias = (t: tf.Tensor) => tf.reshape(t, t.shape);

/** Ops that act on each element alone (shape, broadcasting aside): axis order does not matter. */
const UNARY = new Set(['LeakyRelu', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Rsqrt', 'Square', 'Softplus', 'Identity', 'StopGradient', 'Snapshot']);
const BINARY = new Set(['Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'Maximum', 'Minimum', 'SquaredDifference', 'Pow']);
const PADS = new Set(['Pad', 'PadV2', 'MirrorPad']);

/** Ops runPermuted may run without restoring the logical order (others never see a perm). */
export function mayRunPermuted(op: string): boolean {
  return op === 'Transpose' || op === 'ConcatV2' || op === 'SplitV' || UNARY.has(op) || BINARY.has(op) || PADS.has(op);
}

/** ctx with host input `index` replaced by `values`. */
function withValues(ctx: OpContext, index: number, values: number[]): OpContext {
  return { node: ctx.node, values: (i) => (i === index ? values : ctx.values(i)) };
}

/**
 * One node's outputs, computed on physical tensors where its inputs are held permuted. Undefined
 * when it cannot be done (mixed permutations, a full-size operand in logical order, an op outside
 * the list): the caller then runs the op on logical values. Outputs may carry a perm.
 */
export function runPermuted(opName: string, def: OpDef, inputs: Held[], ctx: OpContext): Held[] | undefined {
  const first = inputs[0];
  if (!first) return undefined;
  const p = first.perm;
  if (opName === 'Transpose') {
    const q = ctx.values(1);
    const r = p ? composePerms(p, q) : q;
    return [isIdentityPerm(r) ? { tensor: alias(first.tensor) } : { tensor: alias(first.tensor), perm: r }];
  }
  if (BINARY.has(opName)) {
    // Either operand may be the permuted one (a constant first, an activation second).
    const lead = inputs.find((h) => h.perm);
    if (!lead?.perm || inputs.length !== 2) return undefined;
    const [a, b] = inputs.map((h) => operandIn(h, lead.perm!, lead.tensor));
    return a && b ? outputs(def.kernel([a, b], ctx), lead.perm) : undefined;
  }
  if (!p) return undefined;
  if (UNARY.has(opName)) return outputs(def.kernel([first.tensor], ctx), p);
  if (PADS.has(opName)) {
    const pads = ctx.values(1);
    if (pads.length !== 2 * p.length) return undefined;
    // Logical axis i is physical axis p[i].
    const physical = new Array<number>(pads.length);
    p.forEach((axis, i) => {
      physical[2 * axis] = pads[2 * i]!;
      physical[2 * axis + 1] = pads[2 * i + 1]!;
    });
    return outputs(def.kernel([first.tensor, ...inputs.slice(1).map((h) => h.tensor)], withValues(ctx, 1, physical)), p);
  }
  if (opName === 'ConcatV2') {
    const n = inputs.length - 1;
    const parts = inputs.slice(0, n);
    if (!parts.every((h) => h.perm && samePerm(h.perm, p))) return undefined;
    const axis = normalizeAxis(ctx.values(n)[0] ?? 0, p.length);
    return outputs(def.kernel([...parts.map((h) => h.tensor), inputs[n]!.tensor], withValues(ctx, n, [p[axis]!])), p);
  }
  if (opName === 'SplitV') {
    const axis = normalizeAxis(ctx.values(2)[0] ?? 0, p.length);
    return outputs(def.kernel([first.tensor, ...inputs.slice(1).map((h) => h.tensor)], withValues(ctx, 2, [p[axis]!])), p);
  }
  return undefined;
}

const samePerm = (a: Perm, b: Perm) => a.length === b.length && a.every((v, i) => v === b[i]);
const normalizeAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function outputs(out: tf.Tensor | tf.Tensor[], perm: Perm): Held[] {
  return (Array.isArray(out) ? out : [out]).map((tensor) => ({ tensor, perm }));
}

/**
 * An operand of a binary op whose other operand is held through `p`, in that one's physical
 * order: as it is when held the same way or when it is a scalar; a small operand (a per-channel
 * constant such as [1,C,1,1]) transposed to match; undefined for a large one in logical order
 * (transposing it would cost what the deferral saves).
 */
function operandIn(other: Held, p: Perm, physical: tf.Tensor): tf.Tensor | undefined {
  if (other.perm) return samePerm(other.perm, p) ? other.tensor : undefined;
  const t = other.tensor;
  if (t.size === 1 && t.rank <= p.length) return t.rank === 0 ? t : tf.reshape(t, new Array<number>(p.length).fill(1));
  if (t.rank > p.length || 4 * t.size > physical.size) return undefined;
  const full = t.rank === p.length ? t : tf.reshape(t, [...new Array<number>(p.length - t.rank).fill(1), ...t.shape]);
  // Physical axis j holds logical axis inverse[j].
  const inverse = new Array<number>(p.length);
  p.forEach((axis, i) => (inverse[axis] = i));
  return tf.transpose(full, inverse);
}
