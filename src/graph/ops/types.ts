import type * as tf from '@tensorflow/tfjs-core';
import type { TfNodeDef } from '../model-json';

/** What a kernel may ask of the executor besides its input tensors. */
export interface OpContext {
  node: TfNodeDef;
  /** The host-side values of input `i` (constants are known without a GPU read). */
  values(i: number): number[];
}

export type OpKernel = (inputs: tf.Tensor[], ctx: OpContext) => tf.Tensor | tf.Tensor[];

export interface OpDef {
  kernel: OpKernel;
  /**
   * False where tfjs has no gradient for what the kernel records (comparisons, top-k): backprop
   * through such a node throws "gradient function not found". Ops whose gradient is zero
   * (floor, argmax) have one.
   */
  hasGradient: boolean;
  /** Inputs read on the host (shapes, axes, sizes; -1 is the last input): the tape never sees them. */
  hostInputs: readonly number[];
  /** A kernel the gradient needs that some backends lack (tf.gather's needs UnsortedSegmentSum). */
  gradientKernel?: string;
}

export interface OpOptions {
  hasGradient?: boolean;
  host?: readonly number[];
  gradientKernel?: string;
}

export const op = (kernel: OpKernel, options: OpOptions = {}): OpDef => ({
  kernel,
  hasGradient: options.hasGradient ?? true,
  hostInputs: options.host ?? [],
  gradientKernel: options.gradientKernel,
});

/** The inputs of a node with `count` inputs that a gradient can flow into. */
export function tensorInputs(def: OpDef, count: number): number[] {
  const host = new Set(def.hostInputs.map((i) => (i < 0 ? count + i : i)));
  return Array.from({ length: count }, (_, i) => i).filter((i) => !host.has(i));
}

export function input(inputs: tf.Tensor[], i: number, node: TfNodeDef): tf.Tensor {
  const t = inputs[i];
  if (!t) throw new Error(`${node.op} node "${node.name}" needs input ${i}, which is missing.`);
  return t;
}
