/**
 * Elementwise programs: a few float32 operations per element over tensors of one size, written
 * once as an expression and run as one fused loop on wasm (wasm-elementwise.ts) or as the tfjs
 * operations they spell anywhere else. Used where a step runs chains of elementwise kernels over
 * large tensors: the optimizer's update, an activation's slope in backprop.
 *
 * The fused loop rounds each operation to float32 in the order written, so both paths give the
 * same values. No gradient: programs run outside what the tape records (updates, gradients).
 */
import * as tf from '@tensorflow/tfjs-core';
import { elementwiseLoop } from './wasm-elementwise';
import { registerOwnWasmKernel, type WasmBackend } from './wasm-kernels';

export type UnaryOp = 'abs' | 'neg' | 'sqrt';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'min' | 'max';
export type CompareOp = 'eq' | 'ne' | 'lt' | 'gt' | 'le' | 'ge';

export type Expr =
  | { kind: 'input'; index: number }
  | { kind: 'param'; index: number }
  | { kind: 'const'; value: number }
  /** A value computed earlier for the same element (`lets[index]`). */
  | { kind: 'let'; index: number }
  | { kind: 'unary'; op: UnaryOp; a: Expr }
  | { kind: 'binary'; op: BinaryOp; a: Expr; b: Expr }
  /** `then` where `a test b` holds, else `else`. */
  | { kind: 'select'; test: CompareOp; a: Expr; b: Expr; then: Expr; else: Expr };

export interface ElementwiseProgram {
  /** Number of input tensors (all of one size) and of float parameters. */
  inputs: number;
  params: number;
  /** Values computed once per element, in order; later values and the outputs read them with `let`. */
  lets?: Expr[];
  outputs: Expr[];
}

/** Builders, so that a program reads as its formula. */
export const ew = {
  input: (index: number): Expr => ({ kind: 'input', index }),
  param: (index: number): Expr => ({ kind: 'param', index }),
  constant: (value: number): Expr => ({ kind: 'const', value }),
  ref: (index: number): Expr => ({ kind: 'let', index }),
  add: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'add', a, b }),
  sub: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'sub', a, b }),
  mul: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'mul', a, b }),
  div: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'div', a, b }),
  min: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'min', a, b }),
  max: (a: Expr, b: Expr): Expr => ({ kind: 'binary', op: 'max', a, b }),
  abs: (a: Expr): Expr => ({ kind: 'unary', op: 'abs', a }),
  neg: (a: Expr): Expr => ({ kind: 'unary', op: 'neg', a }),
  sqrt: (a: Expr): Expr => ({ kind: 'unary', op: 'sqrt', a }),
  select: (test: CompareOp, a: Expr, b: Expr, then: Expr, otherwise: Expr): Expr => ({ kind: 'select', test, a, b, then, else: otherwise }),
};

const KERNEL = 'LabElementwise';

interface KernelAttrs {
  program: ElementwiseProgram;
  params: number[];
}

function registerWasmKernel(): void {
  registerOwnWasmKernel(KERNEL, ({ inputs, backend, attrs }) => {
    const { program, params } = attrs as unknown as KernelAttrs;
    const wasm = backend as unknown as WasmBackend;
    const xs = Array.from({ length: program.inputs }, (_, k) => inputs[`x${k}`] as tf.TensorInfo);
    const loop = elementwiseLoop(wasm.wasm, program)!;
    const outs = program.outputs.map(() => wasm.makeOutput([...xs[0]!.shape], 'float32'));
    // Offsets are read after every allocation: a growing heap keeps offsets, not views.
    const offset = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t).byteOffset;
    loop(tf.util.sizeFromShape(xs[0]!.shape), ...outs.map(offset), ...xs.map(offset), ...params);
    return outs;
  });
}

function checkInputs(program: ElementwiseProgram, inputs: readonly tf.Tensor[], params: readonly number[]): void {
  if (inputs.length !== program.inputs || params.length !== program.params) {
    throw new Error(`An elementwise program of ${program.inputs} inputs and ${program.params} parameters was given ${inputs.length} and ${params.length}.`);
  }
  const size = inputs[0]?.size;
  for (const x of inputs) {
    if (x.dtype !== 'float32') throw new Error(`Elementwise programs take float32 tensors, not ${x.dtype}.`);
    if (x.size !== size) throw new Error(`Elementwise program inputs differ in size: ${inputs.map((t) => `[${t.shape.join(',')}]`).join(' ')}.`);
  }
}

/**
 * The program's outputs (each of the first input's shape): one fused loop on wasm; elsewhere
 * `elsewhere` when given (the same values in fewer kernels than the program spells, for a GPU),
 * else the program's operations.
 */
export function runElementwise(program: ElementwiseProgram, inputs: readonly tf.Tensor[], params: readonly number[] = [], elsewhere?: () => tf.Tensor[]): tf.Tensor[] {
  checkInputs(program, inputs, params);
  if (tf.getBackend() === 'wasm' && program.inputs > 0 && elementwiseLoop((tf.backend() as unknown as WasmBackend).wasm, program)) {
    registerWasmKernel();
    const named = Object.fromEntries(inputs.map((x, k) => [`x${k}`, x]));
    const attrs: KernelAttrs = { program, params: [...params] };
    return tf.engine().runKernel(KERNEL, named, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  }
  return elsewhere ? elsewhere() : evaluateWithOps(program, inputs, params);
}

/** The program as the tfjs operations it spells: the reference for the fused loop. */
export function evaluateWithOps(program: ElementwiseProgram, inputs: readonly tf.Tensor[], params: readonly number[]): tf.Tensor[] {
  checkInputs(program, inputs, params);
  const shape = inputs[0]?.shape ?? [];
  return tf.tidy(() => {
    const lets: tf.Tensor[] = [];
    const value = (e: Expr): tf.Tensor => {
      switch (e.kind) {
        case 'input':
          return inputs[e.index]!.reshape(shape);
        case 'param':
          return tf.scalar(params[e.index]!);
        case 'const':
          return tf.scalar(e.value);
        case 'let':
          return lets[e.index]!;
        case 'unary':
          return tf[e.op](value(e.a));
        case 'binary': {
          const f = { add: tf.add, sub: tf.sub, mul: tf.mul, div: tf.div, min: tf.minimum, max: tf.maximum }[e.op];
          return f(value(e.a), value(e.b));
        }
        case 'select': {
          const test = { eq: tf.equal, ne: tf.notEqual, lt: tf.less, gt: tf.greater, le: tf.lessEqual, ge: tf.greaterEqual }[e.test];
          return tf.where(test(value(e.a), value(e.b)), value(e.then), value(e.else));
        }
      }
    };
    for (const e of program.lets ?? []) lets.push(value(e));
    // A bare input or let is handed back as its own tensor, not a view of another.
    return program.outputs.map((e) => {
      const v = value(e);
      return v.rank === 0 ? tf.broadcastTo(v, shape) : v.clone();
    });
  });
}
