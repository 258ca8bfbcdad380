/**
 * The executor's op table: TensorFlow op name → a kernel written with differentiable tfjs-core
 * ops. Built from one explicit list of families, so a missing op is easy to find and to add.
 */
import { convOps } from './conv';
import { elementwiseOps } from './elementwise';
import { nnOps } from './nn';
import { shapeOps } from './shape';
import type { OpDef } from './types';

export const OPS: Readonly<Record<string, OpDef>> = { ...convOps, ...elementwiseOps, ...shapeOps, ...nnOps };

/** Ops the executor handles itself rather than through a kernel. */
export const STRUCTURAL_OPS = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);

export function isSupportedOp(name: string): boolean {
  return STRUCTURAL_OPS.has(name) || name in OPS;
}

export { tensorInputs } from './types';
export type { OpContext, OpDef, OpKernel } from './types';
