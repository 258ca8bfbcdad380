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
  /** False for ops whose outputs carry no gradient (indices, comparisons, top-k). */
  differentiable: boolean;
}

export const op = (kernel: OpKernel, differentiable = true): OpDef => ({ kernel, differentiable });

export function input(inputs: tf.Tensor[], i: number, node: TfNodeDef): tf.Tensor {
  const t = inputs[i];
  if (!t) throw new Error(`${node.op} node "${node.name}" needs input ${i}, which is missing.`);
  return t;
}
