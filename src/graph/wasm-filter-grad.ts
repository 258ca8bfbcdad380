/**
 * A convolution's filter gradient on wasm, read in place. The gradient of tap (ty, tx) is
 * Σ over output positions p of x[p's window at the tap]ᵀ · dy[p], an outer product of a row of Ci
 * input channels and a row of Co output gradients per position. conv-grad.ts computes it with
 * tfjs-wasm's matrix product, which needs each tap's window copied and transposed first, and runs
 * a product whose inner dimension is N·H·W at about 27 GFLOP/s per thread. Here one WebAssembly
 * SIMD loop accumulates 4x8 tiles of the gradient over the positions, reading the padded input
 * and dy where they lie: 32–37 GFLOP/s on one thread, with no window copies. The positions are
 * taken a few output rows at a time (about 128 positions), so both operands stay in cache while
 * every tile reads them.
 *
 * The sums run over the positions in order, each product rounded, then added, as the matrix
 * product accumulates them, so the two give the same values. Needs Ci a multiple of 4 (an image's
 * 3 channels get a fourth of zeros) and Co a multiple of 8 (the tile), float32, and a heap the
 * module can see; otherwise the caller's path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { leb, oneFunctionModule, VALTYPE } from './wasm-binary';
import { heapFunction, heapMemory } from './wasm-heap-copy';
import { HELPER_CALLS, readyHelpers, runWithHelpers } from './heap-helpers';
import { elementwiseLoop } from './wasm-elementwise';
import { ZERO } from './wasm-zeros';
import { registerOwnWasmKernel, type WasmBackend } from './wasm-kernels';

/**
 * Adds to the [4·ciBlocks, 4·coBlocks·2] block of the gradient at `c` (rows `coBytes` apart) the
 * sum over `rows` x `cols` positions of x row ⊗ dy row: position (r, k) reads Ci values at
 * `x + r·xRowStride + k·xPixelStride` and Co values at `dy + r·dyRowStride + k·coBytes`.
 */
export type AccumulateTiles = (c: number, x: number, dy: number, rows: number, cols: number, ciBlocks: number, coBlocks: number, xPixelStride: number, xRowStride: number, dyRowStride: number, coBytes: number) => void;

const simd = (op: number) => [0xfd, ...leb(op)];

/**
 * The binary of `accumulate(c, x, dy, rows, cols, ciBlocks, coBlocks, xPixelStride, xRowStride,
 * dyRowStride, coBytes)`: for each tile of 4 input by 8 output channels, its 8 vectors are loaded
 * from `c`, and for each position the 2 vectors of dy are multiplied by each of the 4 input
 * values (splat) and added; then stored back.
 */
export function accumulateTilesModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const [c, x, dy, rows, cols, ciBlocks, coBlocks, xPixelStride, xRowStride, dyRowStride, coBytes] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [i, j, r, k, xr, dr, xp, dp, cp, p, xcol, crow, dcol] = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
  const acc = (q: number) => 24 + q;
  const [d0, d1, s] = [32, 33, 34];
  const get = (l: number) => [0x20, l];
  const set = (l: number) => [0x21, l];
  const add = 0x6a;
  const load = (offset: number) => [...simd(0x00), 0x00, ...leb(offset)];
  const store = (offset: number) => [...simd(0x0b), 0x00, ...leb(offset)];
  const countDown = (l: number) => [...get(l), 0x41, 0x01, 0x6b, 0x22, l, 0x0d, 0x00];
  const step = (l: number, by: number[]) => [...get(l), ...by, add, ...set(l)];
  // The tile's 4 rows of 2 vectors, `coBytes` apart, from or to `cp`.
  const tileRows = (each: (row: number) => number[]) => [...get(cp), ...set(p), ...[0, 1, 2, 3].flatMap((row) => [...each(row), ...step(p, get(coBytes))])];
  const positions = [
    ...get(xcol), ...set(xr), ...get(dcol), ...set(dr), ...get(rows), ...set(r),
    0x03, 0x40, // each row of positions
    ...get(xr), ...set(xp), ...get(dr), ...set(dp), ...get(cols), ...set(k),
    0x03, 0x40, // each position of the row
    ...get(dp), ...load(0), ...set(d0), ...get(dp), ...load(16), ...set(d1),
    ...[0, 1, 2, 3].flatMap((q) => [
      ...get(xp), ...simd(0x09), 0x00, ...leb(4 * q), ...set(s), // v128.load32_splat
      ...get(acc(2 * q)), ...get(s), ...get(d0), ...simd(0xe6), ...simd(0xe4), ...set(acc(2 * q)),
      ...get(acc(2 * q + 1)), ...get(s), ...get(d1), ...simd(0xe6), ...simd(0xe4), ...set(acc(2 * q + 1)),
    ]),
    ...step(xp, get(xPixelStride)), ...step(dp, get(coBytes)),
    ...countDown(k), 0x0b,
    ...step(xr, get(xRowStride)), ...step(dr, get(dyRowStride)),
    ...countDown(r), 0x0b,
  ];
  const code = [
    0x02, 0x0d, VALTYPE.i32, 0x0b, VALTYPE.v128, // locals: counters and pointers; acc0..7, d0, d1, s
    0x02, 0x40,
    ...[rows, cols, ciBlocks, coBlocks].flatMap((n) => [...get(n), 0x45, 0x0d, 0x00]),
    ...get(x), ...set(xcol), ...get(c), ...set(crow), ...get(ciBlocks), ...set(i),
    0x03, 0x40, // each block of 4 input channels
    ...get(crow), ...set(cp), ...get(dy), ...set(dcol), ...get(coBlocks), ...set(j),
    0x03, 0x40, // each block of 8 output channels
    ...tileRows((row) => [...get(p), ...load(0), ...set(acc(2 * row)), ...get(p), ...load(16), ...set(acc(2 * row + 1))]),
    ...positions,
    ...tileRows((row) => [...get(p), ...get(acc(2 * row)), ...store(0), ...get(p), ...get(acc(2 * row + 1)), ...store(16)]),
    ...step(cp, [0x41, 0x20]), ...step(dcol, [0x41, 0x20]),
    ...countDown(j), 0x0b,
    ...step(xcol, [0x41, 0x10]), ...step(crow, [...get(coBytes), 0x41, 0x02, 0x74]),
    ...countDown(i), 0x0b,
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'accumulate', Array<number>(11).fill(VALTYPE.i32), code);
}

type Pair = [number, number];

interface FilterGradientAttrs {
  /** [KH, KW] of the filter. */
  taps: Pair;
  strides: Pair;
  dilations: Pair;
}

const KERNEL = 'LabFilterGradient';
/** About this many positions per call: x and dy rows for them stay in cache while every tile reads them. */
const POSITIONS_PER_CALL = 128;

function registerKernel(): void {
  registerOwnWasmKernel(KERNEL, ({ inputs, backend, attrs }) => {
    const { taps, strides, dilations } = attrs as unknown as FilterGradientAttrs;
    const wasm = backend as unknown as WasmBackend;
    const [xp, dy] = [inputs['x'] as tf.TensorInfo, inputs['dy'] as tf.TensorInfo];
    const [n, hp, wp, ci] = xp.shape as [number, number, number, number];
    const [, oh, ow, co] = dy.shape as [number, number, number, number];
    const out = wasm.makeOutput([taps[0], taps[1], ci, co], 'float32');
    const size = taps[0] * taps[1] * ci * co;
    elementwiseLoop(wasm.wasm, ZERO)!(size, wasm.typedArrayFromHeap(out).byteOffset);
    const accumulate = heapFunction<AccumulateTiles>(wasm.wasm, 'accumulateTiles', accumulateTilesModule, 'accumulate')!;
    // Views after the allocation (a growing heap moves them).
    const [xb, db, cb] = [xp, dy, out].map((t) => wasm.typedArrayFromHeap(t).byteOffset) as [number, number, number];
    const chunk = Math.max(1, Math.floor(POSITIONS_PER_CALL / ow));
    const [sh, sw] = strides;
    const [dh, dw] = dilations;
    // The work is split between this thread and the helpers ready on this heap by blocks of
    // input channels, or of output channels where there is one block of input channels (a first
    // layer's 3 channels, padded to 4).
    const [ciBlocks, coBlocks] = [ci / 4, co / 8];
    const byInput = ciBlocks > 1;
    const blocks = byInput ? ciBlocks : coBlocks;
    /** Every call for the blocks first .. first + count − 1. */
    const eachCall = (first: number, count: number, call: AccumulateTiles) => {
      const [ciFirst, ciCount, coFirst, coCount] = byInput ? [first, count, 0, coBlocks] : [0, ciBlocks, first, count];
      for (let ty = 0; ty < taps[0]; ty++) {
        for (let tx = 0; tx < taps[1]; tx++) {
          const c = cb + ((ty * taps[1] + tx) * ci + 4 * ciFirst) * co * 4 + 32 * coFirst;
          for (let b = 0; b < n; b++) {
            for (let y0 = 0; y0 < oh; y0 += chunk) {
              const x = xb + ((b * hp + y0 * sh + ty * dh) * wp + tx * dw) * ci * 4 + 16 * ciFirst;
              const d = db + (b * oh + y0) * ow * co * 4 + 32 * coFirst;
              call(c, x, d, Math.min(chunk, oh - y0), ow, ciCount, coCount, sw * ci * 4, sh * wp * ci * 4, ow * co * 4, co * 4);
            }
          }
        }
      }
    };
    const memory = heapMemory(wasm.wasm);
    const calls = taps[0] * taps[1] * n * Math.ceil(oh / chunk);
    const ready = memory && calls <= HELPER_CALLS && blocks > 1 ? readyHelpers(memory, 'accumulateTiles', accumulateTilesModule, 'accumulate', 11).slice(0, blocks - 1) : [];
    const share = (k: number) => [Math.floor((k * blocks) / (ready.length + 1)), Math.floor(((k + 1) * blocks) / (ready.length + 1))] as const;
    const lists = ready.map((_, k) => {
      const [first, end] = share(k + 1);
      const list = new Int32Array(calls * 11);
      let at = 0;
      eachCall(first, end - first, (...args) => {
        list.set(args, at);
        at += 11;
      });
      return list;
    });
    runWithHelpers(ready, lists, () => eachCall(0, share(0)[1], accumulate));
    return out;
  });
}

let enabled = true;
/** Turns this path off or on (to compare it with the matrix products in one process). */
export function setInPlaceFilterGradients(on: boolean): void {
  enabled = on;
}

/**
 * The filter gradient [KH,KW,Ci,Co] of a convolution of `x` [N,H,W,Ci] with explicit `pads`
 * [top, bottom, left, right] at output gradient `dy` [N,OH,OW,Co]; null where this path does not
 * apply (not wasm, not float32, Co not a multiple of 8, a heap the module cannot see). The pads
 * and the zero channels that bring Ci to a multiple of 4 are one PadV2.
 */
export function filterGradientInPlace(x: tf.Tensor4D, dy: tf.Tensor4D, taps: Pair, strides: Pair, pads: [number, number, number, number], dilations: Pair): tf.Tensor4D | null {
  const [ci, co] = [x.shape[3], dy.shape[3]];
  if (!enabled || tf.getBackend() !== 'wasm' || ci < 1 || co % 8 !== 0 || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const wasm = (tf.backend() as unknown as WasmBackend).wasm;
  if (!heapFunction(wasm, 'accumulateTiles', accumulateTilesModule, 'accumulate') || !elementwiseLoop(wasm, ZERO)) return null;
  registerKernel();
  const ci4 = Math.ceil(ci / 4) * 4;
  const padding: [number, number][] = [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, ci4 - ci]];
  const xp = padding.some(([a, b]) => a + b > 0) ? tf.pad(x, padding) : x;
  const attrs: FilterGradientAttrs = { taps, strides, dilations };
  const g = tf.engine().runKernel(KERNEL, { x: xp, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  if (xp !== x) xp.dispose();
  if (ci4 === ci) return g;
  const kept = tf.slice(g, [0, 0, 0, 0], [taps[0], taps[1], ci, co]);
  g.dispose();
  return kept;
}

/**
 * Starts this kernel's helper threads on the current wasm heap (they otherwise start at its first
 * call and join once ready) and resolves with how many are ready, after at most `timeoutMs`.
 */
export async function startFilterGradientHelpers(timeoutMs = 10_000): Promise<number> {
  if (tf.getBackend() !== 'wasm') return 0;
  const memory = heapMemory((tf.backend() as unknown as WasmBackend).wasm);
  if (!memory) return 0;
  const ready = () => readyHelpers(memory, 'accumulateTiles', accumulateTilesModule, 'accumulate', 11).length;
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await new Promise((r) => setTimeout(r, 10))) {
    const n = ready();
    if (n > 0) return n;
  }
  return ready();
}
