/**
 * Pieces of the WebAssembly binary format, for the small modules the lab builds from their bytes
 * and instantiates on tfjs-backend-wasm's own memory (wasm-heap-copy.ts, wasm-elementwise.ts).
 */

/** Unsigned LEB128, as the binary format writes sizes, counts and indices. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

/** Signed LEB128 of a 32-bit integer (the immediate of `i32.const`). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A name (import, export): its UTF-8 length and bytes (ASCII here). */
export const name = (s: string): number[] => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];

export const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];

/** The little-endian bytes of a float32. */
export function f32Bytes(value: number): number[] {
  return Array.from(new Uint8Array(new Float32Array([value]).buffer));
}

export const VALTYPE = { i32: 0x7f, f32: 0x7d, v128: 0x7b } as const;

/**
 * A module that imports the heap as env.memory and exports one function `exportName` of the
 * given parameter types (no results), whose body (locals declaration included) is `code`.
 * An imported memory must be declared shared exactly when it is, and a shared one with a maximum.
 * With `eachCall` (all parameters i32), it also exports `each(at, count)`, which makes `count`
 * calls of the function, the arguments of each read from the heap at `at` (rows of as many i32
 * words as it has parameters): a list of calls costs one call from JavaScript, not one each.
 */
export function oneFunctionModule(sharedMemory: boolean, exportName: string, params: number[], code: number[], eachCall = false): Uint8Array<ArrayBuffer> {
  const limits = sharedMemory ? [0x03, 0x00, ...leb(65536)] : [0x00, 0x00];
  const types = [[0x60, ...leb(params.length), ...params, 0]];
  const exports = [[...name(exportName), 0x00, 0]];
  const bodies = [code];
  if (eachCall) {
    if (params.some((p) => p !== VALTYPE.i32)) throw new Error('each(at, count) reads i32 arguments only');
    const [at, count] = [0, 1];
    types.push([0x60, 2, VALTYPE.i32, VALTYPE.i32, 0]);
    exports.push([...name('each'), 0x00, 1]);
    bodies.push([
      0x00, // no locals besides the parameters
      0x02, 0x40, 0x20, count, 0x45, 0x0d, 0x00, // block; br_if 0 when count == 0
      0x03, 0x40, // loop
      ...params.flatMap((_, k) => [0x20, at, 0x28, 0x02, ...leb(4 * k)]), // i32.load offset=4k
      0x10, 0x00, // call 0
      0x20, at, 0x41, ...sleb(4 * params.length), 0x6a, 0x21, at,
      0x20, count, 0x41, 0x01, 0x6b, 0x22, count, 0x0d, 0x00,
      0x0b, 0x0b, 0x0b,
    ]);
  }
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [types.length, ...types.flat()]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...limits]),
    // Function i has type i.
    ...section(3, [bodies.length, ...bodies.map((_, i) => i)]),
    ...section(7, [exports.length, ...exports.flat()]),
    ...section(10, [bodies.length, ...bodies.flatMap((b) => [...leb(b.length), ...b])]),
  ]);
}

/**
 * Named locals for a hand-assembled function body: `params` (i32), then i32 and v128 locals.
 * `declarations` opens the body; the rest emit instructions.
 */
export function namedLocals(params: string[], ints: string[], vectors: string[]) {
  const index = new Map([...params, ...ints, ...vectors].map((n, i) => [n, i]));
  const at = (n: string) => {
    const i = index.get(n);
    if (i === undefined) throw new Error(`No local named ${n}.`);
    return leb(i);
  };
  const get = (n: string) => [0x20, ...at(n)];
  const set = (n: string) => [0x21, ...at(n)];
  const tee = (n: string) => [0x22, ...at(n)];
  /** i32.const (its immediate is signed: 64 in unsigned LEB128 would read as −64). */
  const i32 = (v: number) => [0x41, ...sleb(v)];
  return {
    declarations: [...leb(2), ...leb(ints.length), VALTYPE.i32, ...leb(vectors.length), VALTYPE.v128],
    get,
    set,
    tee,
    i32,
    /** n += by (an i32 expression). */
    addTo: (n: string, by: number[]) => [...get(n), ...by, 0x6a, ...set(n)],
    /** `body` with `counter` running from `count` (≥ 1) down to 1. */
    countDown: (counter: string, count: number[], body: number[]) => [...count, ...set(counter), 0x03, 0x40, ...body, ...get(counter), ...i32(1), 0x6b, ...tee(counter), 0x0d, 0x00, 0x0b],
  };
}

/** A WebAssembly SIMD instruction (0xfd prefix). */
export const simdOp = (op: number): number[] => [0xfd, ...leb(op)];
