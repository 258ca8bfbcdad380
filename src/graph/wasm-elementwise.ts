/**
 * Fused elementwise loops for tfjs-backend-wasm, compiled to WebAssembly SIMD from an expression
 * (elementwise-program.ts) and run on the backend's own heap: one pass over the data for what
 * tfjs runs as one kernel per operation, each reading and writing every element. An optimizer
 * update of a 2.7 M-float vector is 14 such kernels; fused, it reads each input once and writes
 * each output once.
 *
 * Each element is computed in float32 with the operations in the expression's order, each rounded
 * as its own kernel would round it, so a fused loop gives the values of the kernels it replaces
 * (elementwise-program.test.ts compares them bit for bit against the cpu backend). Four elements
 * go per SIMD step, the last count % 4 one at a time with the scalar instructions of the same
 * operations.
 */
import { f32Bytes, leb, oneFunctionModule, sleb, VALTYPE } from './wasm-binary';
import { heapFunction } from './wasm-heap-copy';
import type { ElementwiseProgram, Expr } from './elementwise-program';

/**
 * Runs a program over `count` elements, called as (count, output byte offsets in the heap..., input
 * byte offsets..., float parameters...): the module's own export, for calls in a loop.
 */
export type ElementwiseLoop = (count: number, ...offsetsThenParams: number[]) => void;

const SIMD = 0xfd;
const simd = (op: number) => [SIMD, ...leb(op)];
/** f32x4 opcodes (after the 0xfd prefix) and their scalar f32 counterparts. */
const UNARY = { abs: [0xe0, 0x8b], neg: [0xe1, 0x8c], sqrt: [0xe3, 0x91] } as const;
const BINARY = { add: [0xe4, 0x92], sub: [0xe5, 0x93], mul: [0xe6, 0x94], div: [0xe7, 0x95], min: [0xe8, 0x96], max: [0xe9, 0x97] } as const;
const COMPARE = { eq: [0x41, 0x5b], ne: [0x42, 0x5c], lt: [0x43, 0x5d], gt: [0x44, 0x5e], le: [0x45, 0x5f], ge: [0x46, 0x60] } as const;

/**
 * The binary of a module exporting `run(count, out_0.., in_0.., p_0..)`: for each element, every
 * `let` and output value in order into locals, then the outputs stored (so an output may share its
 * place with an input: each element is read before it is written).
 */
export function elementwiseModule(program: ElementwiseProgram, sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const { inputs, params, outputs } = program;
  const lets = program.lets ?? [];
  const values = [...lets, ...outputs];
  // Parameter indices: count, outputs, inputs (i32), then the f32 parameters; then the locals.
  const count = 0;
  const out = (k: number) => 1 + k;
  const inp = (k: number) => 1 + outputs.length + k;
  const param = (k: number) => 1 + outputs.length + inputs + k;
  const firstLocal = 1 + outputs.length + inputs + params;
  const i = firstLocal;
  const end = firstLocal + 1;
  const splat = (k: number) => firstLocal + 2 + k;
  const vector = (k: number) => firstLocal + 2 + params + k;
  const scalar = (k: number) => firstLocal + 2 + params + values.length + k;
  const get = (l: number) => [0x20, ...leb(l)];
  const set = (l: number) => [0x21, ...leb(l)];
  const memarg = [0x02, 0x00]; // alignment hint 4 bytes, offset 0

  const emit = (e: Expr, wide: boolean): number[] => {
    switch (e.kind) {
      case 'input':
        return [...get(inp(e.index)), ...get(i), 0x6a, ...(wide ? simd(0x00) : [0x2a]), ...memarg];
      case 'param':
        return wide ? get(splat(e.index)) : get(param(e.index));
      case 'const': {
        const bytes = f32Bytes(e.value);
        return wide ? [...simd(0x0c), ...bytes, ...bytes, ...bytes, ...bytes] : [0x43, ...bytes];
      }
      case 'let':
        return get(wide ? vector(e.index) : scalar(e.index));
      case 'unary':
        return [...emit(e.a, wide), ...(wide ? simd(UNARY[e.op][0]) : [UNARY[e.op][1]])];
      case 'binary':
        return [...emit(e.a, wide), ...emit(e.b, wide), ...(wide ? simd(BINARY[e.op][0]) : [BINARY[e.op][1]])];
      case 'select': {
        const test = [...emit(e.a, wide), ...emit(e.b, wide), ...(wide ? simd(COMPARE[e.test][0]) : [COMPARE[e.test][1]])];
        // v128.bitselect(then, else, mask); select(then, else, condition).
        return [...emit(e.then, wide), ...emit(e.else, wide), ...test, ...(wide ? simd(0x52) : [0x1b])];
      }
    }
  };
  const body = (wide: boolean, stepBytes: number) => [
    ...values.flatMap((v, k) => [...emit(v, wide), ...set(wide ? vector(k) : scalar(k))]),
    ...outputs.flatMap((_, k) => [...get(out(k)), ...get(i), 0x6a, ...get(wide ? vector(lets.length + k) : scalar(lets.length + k)), ...(wide ? simd(0x0b) : [0x38]), ...memarg]),
    ...get(i), 0x41, ...sleb(stepBytes), 0x6a, ...set(i),
  ];
  /** block; loop; exit when i >= end; body; continue. */
  const loop = (wide: boolean, stepBytes: number) => [0x02, 0x40, 0x03, 0x40, ...get(i), ...get(end), 0x4f, 0x0d, 0x01, ...body(wide, stepBytes), 0x0c, 0x00, 0x0b, 0x0b];
  const localGroups: [number, number][] = [[2, VALTYPE.i32], [params + values.length, VALTYPE.v128], [values.length, VALTYPE.f32]];
  const declared = localGroups.filter(([n]) => n > 0);
  const code = [
    ...leb(declared.length), ...declared.flatMap(([n, t]) => [...leb(n), t]),
    ...Array.from({ length: params }, (_, k) => [...get(param(k)), ...simd(0x13), ...set(splat(k))]).flat(),
    // end = (count & ~3) · 4 bytes: whole SIMD steps; then end = count · 4 for the rest.
    ...get(count), 0x41, ...sleb(-4), 0x71, 0x41, 0x02, 0x74, ...set(end),
    0x41, 0x00, ...set(i),
    ...loop(true, 16),
    ...get(count), 0x41, 0x02, 0x74, ...set(end),
    ...loop(false, 4),
    0x0b,
  ];
  const types = [...Array<number>(1 + outputs.length + inputs).fill(VALTYPE.i32), ...Array<number>(params).fill(VALTYPE.f32)];
  return oneFunctionModule(sharedMemory, 'run', types, code);
}

/** Each program's text, the key of its loop on a heap (programs are built once and kept). */
const keys = new WeakMap<ElementwiseProgram, string>();

/**
 * The loop of `program` on the heap of the backend whose Emscripten module is `wasm`; null where
 * this build does not show its memory (the caller then runs the operations as kernels).
 */
export function elementwiseLoop(wasm: object, program: ElementwiseProgram): ElementwiseLoop | null {
  let key = keys.get(program);
  if (!key) keys.set(program, (key = `elementwise ${JSON.stringify(program)}`));
  return heapFunction<ElementwiseLoop>(wasm, key, (shared) => elementwiseModule(program, shared), 'run') ?? null;
}
