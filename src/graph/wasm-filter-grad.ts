/**
 * A convolution's filter gradient on wasm, read in place. The gradient of tap (ty, tx) is
 * Σ over output positions p of x[p's window at the tap]ᵀ · dy[p], an outer product of a row of Ci
 * input channels and a row of Co output gradients per position. conv-grad.ts computes it with
 * tfjs-wasm's matrix product, which needs each tap's window copied and transposed first, and runs
 * a product whose inner dimension is N·H·W at about 27 GFLOP/s per thread. Here one WebAssembly
 * SIMD loop accumulates 4x8 tiles of the gradient over the positions, reading the input and dy
 * where they lie (no padded copy, no window copies). The positions are taken a few output rows at
 * a time (about 128 positions), copied into short panels of 4 and 8 channels first, so both
 * operands stay in cache and are read in order while every tile reads them.
 *
 * The sums run over the positions in order, each product rounded, then added, as the matrix
 * product accumulates them, so the two give the same values. Input channels are taken in blocks
 * of 4 (an image's 3 read with a zero after them, no padded copy) and output channels in blocks
 * of 8 (a last block of 4, a detection head's 124, computed against zeros and sliced off). Needs
 * Co a multiple of 4, float32, and a heap the module can see; otherwise the caller's path.
 */
import * as tf from '@tensorflow/tfjs-core';
import { leb, namedLocals, oneFunctionModule, simdOp, VALTYPE } from './wasm-binary';
import { heapFunction, heapMemory } from './wasm-heap-copy';
import { helperModule, readyHelpers, runUnits, type EachCall } from './heap-helpers';
import { elementwiseLoop } from './wasm-elementwise';
import { ZERO } from './wasm-zeros';
import { registerOwnWasmKernel, type WasmBackend } from './wasm-kernels';

/**
 * Adds to the gradient of each of the kh·kw taps (the tap's [4·ciBlocks, 8·coBlocks] block at
 * `c + tap·tapBytes`, rows `coBytes` apart) the sum over `rows` x `cols` positions of x row ⊗ dy
 * row. Position (r, k) reads Co values at `dy + r·dyRowStride + k·dyPixelBytes` (the last block of
 * 8 half there where `halfBlock`: the rest read as zeros) and, at tap (ty, tx),
 * the Ci values of input row iy0 + r·sh + ty·dh, column ix0 + k·sw + tx·dw of the image at `x`
 * (h x w pixels of `pixelBytes`), or zeros where that lies outside it (padding); the call's
 * last block of 4 input channels holds `lastFloats` of them (zeros after). `xPack` and `dyPack`
 * are room for the call's own copies of its x and dy values, block by block
 * (rows·cols·4·ciBlocks and rows·cols·8·coBlocks floats). `fresh`: the call's blocks start at
 * zero, not at what `c` holds (the first call of a unit: the gradient needs no zeroing pass).
 */
export type AccumulateTiles = (
  c: number, x: number, dy: number, rows: number, cols: number, ciBlocks: number, coBlocks: number,
  dyRowStride: number, coBytes: number, kh: number, kw: number, tapBytes: number, xPack: number, dyPack: number,
  iy0: number, ix0: number, h: number, w: number, sh: number, sw: number, dh: number, dw: number, pixelBytes: number,
  dyPixelBytes: number, halfBlock: number, lastFloats: number, fresh: number,
) => void;
const ARITY = 27;


/**
 * The binary of `accumulate(...)` (AccumulateTiles). dy's values for the call's positions are
 * first copied into one panel per block of 8 output channels, and at each tap x's into one panel
 * per block of 4 input channels, positions in order: every tile then reads its two panels in
 * order, from a few cache lines, where it would otherwise read a part of one line per position
 * (rows of Ci and Co values). For each tile of 4 input by 8 output channels, its 8 vectors are
 * loaded from the gradient, and for each position the 2 vectors of dy are multiplied by each of
 * the 4 input values (splat) and added; then stored back.
 */
export function accumulateTilesModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const params = ['c', 'x', 'dy', 'rows', 'cols', 'ciBlocks', 'coBlocks', 'dyRowStride', 'coBytes', 'kh', 'kw', 'tapBytes', 'xPack', 'dyPack', 'iy0', 'ix0', 'h', 'w', 'sh', 'sw', 'dh', 'dw', 'pixelBytes', 'dyPixelBytes', 'halfBlock', 'lastFloats', 'fresh'];
  const ints = ['positions', 'xPanel', 'dyPanel', 'ty', 'tx', 'ct', 'xt', 'i', 'j', 'r', 'k', 'n', 'src', 'srcRow', 'dst', 'xp', 'dp', 'cp', 'p', 'crow', 'iy', 'ix', 'ixTap', 'colStep'];
  const vectors = ['d0', 'd1', 's', 'vlane', ...[0, 1, 2, 3, 4, 5, 6, 7].map((a) => `acc${a}`)];
  const L = namedLocals(params, ints, vectors);
  const { get, set, i32, addTo, countDown: loop } = L;
  const [add, sub, mul, shl, eqz, ltU, and] = [0x6a, 0x6b, 0x6c, 0x74, 0x45, 0x49, 0x71];
  const load = (offset: number) => [...simdOp(0x00), 0x04, ...leb(offset)];
  const store = (offset: number) => [...simdOp(0x0b), 0x04, ...leb(offset)];
  const splat = (offset: number) => [...simdOp(0x09), 0x02, ...leb(offset)]; // v128.load32_splat
  const acc = (a: number) => `acc${a}`;

  // dy's 8·coBlocks values per position (Co, dyPixelBytes apart, the last block only half
  // there where `halfBlock`: zeros after them) into coBlocks panels, dyPanel bytes apart.
  const packDy = [
    ...get('dy'), ...set('srcRow'), ...get('dyPack'), ...set('p'),
    ...loop('r', get('rows'), [
      ...get('srcRow'), ...set('src'),
      ...loop('k', get('cols'), [
        ...get('src'), ...set('n'), ...get('p'), ...set('dst'),
        ...loop('i', get('coBlocks'), [
          ...get('dst'), ...get('n'), ...load(0), ...store(0),
          ...get('dst'),
          ...get('i'), ...i32(1), 0x46, ...get('halfBlock'), and, 0x04, VALTYPE.v128, ...simdOp(0x0c), ...Array<number>(16).fill(0), 0x05, ...get('n'), ...load(16), 0x0b,
          ...store(16),
          ...addTo('n', i32(32)), ...addTo('dst', get('dyPanel')),
        ]),
        ...addTo('src', get('dyPixelBytes')), ...addTo('p', i32(32)),
      ]),
      ...addTo('srcRow', get('dyRowStride')),
    ]),
  ];
  // The last block of an input whose channels are not a multiple of 4: its 1–3 values, zeros after
  // them (reading no further: past them may be the end of the heap).
  const partialBlock = [
    ...get('lastFloats'), ...i32(1), 0x46, 0x04, VALTYPE.v128,
    ...get('n'), ...simdOp(0x5c), 0x02, 0x00, // v128.load32_zero
    0x05,
    ...get('n'), ...simdOp(0x5d), 0x03, 0x00, ...set('vlane'), // v128.load64_zero
    ...get('lastFloats'), ...i32(3), 0x46, 0x04, 0x40,
    ...get('n'), ...get('vlane'), ...simdOp(0x56), 0x02, 0x08, 0x02, ...set('vlane'), // v128.load32_lane: lane 2 from n + 8
    0x0b,
    ...get('vlane'),
    0x0b,
  ];
  // At tap (ty, tx), position (r, k) reads input row iy0 + r·sh + ty·dh and column
  // ix0 + k·sw + tx·dw: its Ci values (the call's blocks of 4) where those lie in the input, zeros
  // where they are padding.
  const packInput = [
    ...get('xPack'), ...set('p'),
    ...get('iy0'), ...get('kh'), ...get('ty'), sub, ...get('dh'), mul, add, ...set('iy'),
    ...get('ix0'), ...get('kw'), ...get('tx'), sub, ...get('dw'), mul, add, ...set('ixTap'),
    ...get('sw'), ...get('pixelBytes'), mul, ...set('colStep'),
    ...loop('r', get('rows'), [
      ...get('ixTap'), ...set('ix'),
      ...get('x'), ...get('iy'), ...get('w'), mul, ...get('ixTap'), add, ...get('pixelBytes'), mul, add, ...set('src'),
      ...loop('k', get('cols'), [
        ...get('p'), ...set('dst'),
        ...get('iy'), ...get('h'), ltU, ...get('ix'), ...get('w'), ltU, and,
        0x04, 0x40, // inside the input
        ...get('src'), ...set('n'),
        ...loop('i', get('ciBlocks'), [
          ...get('dst'),
          ...get('i'), ...i32(1), 0x46, ...get('lastFloats'), ...i32(4), 0x47, and,
          0x04, VALTYPE.v128, ...partialBlock, 0x05, ...get('n'), ...load(0), 0x0b,
          ...store(0), ...addTo('n', i32(16)), ...addTo('dst', get('xPanel')),
        ]),
        0x05, // padding
        ...loop('i', get('ciBlocks'), [...get('dst'), ...simdOp(0x0c), ...Array<number>(16).fill(0), ...store(0), ...addTo('dst', get('xPanel'))]),
        0x0b,
        ...addTo('ix', get('sw')), ...addTo('src', get('colStep')), ...addTo('p', i32(16)),
      ]),
      ...addTo('iy', get('sh')),
    ]),
  ];
  // The tile's 4 rows of 2 vectors, `coBytes` apart, from or to `cp`.
  const tileRows = (each: (row: number) => number[]) => [...get('cp'), ...set('crow'), ...[0, 1, 2, 3].flatMap((row) => [...each(row), ...addTo('crow', get('coBytes'))])];
  const tiles = loop('i', get('ciBlocks'), [
    ...get('ct'), ...get('ciBlocks'), ...get('i'), sub, ...get('coBytes'), ...i32(2), shl, mul, add, ...set('cp'),
    ...get('xPack'), ...get('ciBlocks'), ...get('i'), sub, ...get('xPanel'), mul, add, ...set('xt'),
    ...get('dyPack'), ...set('dp'),
    ...loop('j', get('coBlocks'), [
      // The tile's sums so far, or zeros in a fresh call.
      ...tileRows((row) => [0, 16].flatMap((offset, half) => [
        ...get('fresh'), 0x04, VALTYPE.v128, ...simdOp(0x0c), ...Array<number>(16).fill(0), 0x05, ...get('crow'), ...load(offset), 0x0b, ...set(acc(2 * row + half)),
      ])),
      ...get('xt'), ...set('xp'), ...get('dp'), ...set('n'),
      ...loop('p', get('positions'), [
        ...get('n'), ...load(0), ...set('d0'), ...get('n'), ...load(16), ...set('d1'),
        ...[0, 1, 2, 3].flatMap((q) => [
          ...get('xp'), ...splat(4 * q), ...set('s'),
          ...get(acc(2 * q)), ...get('s'), ...get('d0'), ...simdOp(0xe6), ...simdOp(0xe4), ...set(acc(2 * q)),
          ...get(acc(2 * q + 1)), ...get('s'), ...get('d1'), ...simdOp(0xe6), ...simdOp(0xe4), ...set(acc(2 * q + 1)),
        ]),
        ...addTo('xp', i32(16)), ...addTo('n', i32(32)),
      ]),
      ...tileRows((row) => [...get('crow'), ...get(acc(2 * row)), ...store(0), ...get('crow'), ...get(acc(2 * row + 1)), ...store(16)]),
      ...addTo('cp', i32(32)), ...addTo('dp', get('dyPanel')),
    ]),
  ]);
  const code = [
    ...L.declarations,
    0x02, 0x40,
    ...['rows', 'cols', 'ciBlocks', 'coBlocks', 'kh', 'kw'].flatMap((n) => [...get(n), eqz, 0x0d, 0x00]),
    ...get('rows'), ...get('cols'), mul, ...set('positions'),
    ...get('positions'), ...i32(4), shl, ...set('xPanel'), ...get('positions'), ...i32(5), shl, ...set('dyPanel'),
    ...packDy,
    ...get('c'), ...set('ct'),
    ...loop('ty', get('kh'), [
      ...loop('tx', get('kw'), [
        ...packInput,
        ...tiles,
        ...addTo('ct', get('tapBytes')),
      ]),
    ]),
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'accumulate', Array<number>(params.length).fill(VALTYPE.i32), code, true);
}

helperModule('accumulateTiles', accumulateTilesModule, ARITY);

type Pair = [number, number];

interface FilterGradientAttrs {
  /** [KH, KW] of the filter. */
  taps: Pair;
  strides: Pair;
  dilations: Pair;
  /** Rows before the input, and columns before it (the rows and columns after it need nothing: no position reads them). */
  pads: Pair;
}

const KERNEL = 'LabFilterGradient';
/** About this many positions per call: x and dy rows for them stay in cache while every tile reads them. */
const POSITIONS_PER_CALL = 128;
/** Units of work per thread: enough that a thread that starts late leaves its share to the others, few enough that each unit copies dy for many blocks. */
const UNITS_PER_THREAD = 4;
/** Blocks in a unit at least: a unit copies its dy values and, per tap, its x values; thinner ones spend more on copies than on products. */
const MIN_UNIT_BLOCKS = 4;

/** A unit: blocks ciFirst .. ciFirst + ciCount − 1 of input channels by coFirst .. coFirst + coCount − 1 of output channels. */
export interface FilterGradientUnit {
  ciFirst: number;
  ciCount: number;
  coFirst: number;
  coCount: number;
}

/**
 * The units the threads share a filter gradient by, so that no two write the same part of it: a
 * few blocks of input channels each, with every output channel (or, where there is one block of
 * input channels, a first layer's 3 padded to 4, a few blocks of output channels each).
 */
export function filterGradientUnits(ciBlocks: number, coBlocks: number, threads: number): FilterGradientUnit[] {
  const byInput = ciBlocks > 1;
  const blocks = byInput ? ciBlocks : coBlocks;
  // One thread: one unit (a unit copies dy again).
  const perUnit = threads > 1 ? Math.max(MIN_UNIT_BLOCKS, Math.ceil(blocks / (UNITS_PER_THREAD * threads))) : blocks;
  const units: FilterGradientUnit[] = [];
  for (let first = 0; first < blocks; first += perUnit) {
    const count = Math.min(perUnit, blocks - first);
    units.push(byInput ? { ciFirst: first, ciCount: count, coFirst: 0, coCount: coBlocks } : { ciFirst: 0, ciCount: ciBlocks, coFirst: first, coCount: count });
  }
  return units;
}

function registerKernel(): void {
  registerOwnWasmKernel(KERNEL, ({ inputs, backend, attrs }) => {
    const { taps, strides, dilations, pads } = attrs as unknown as FilterGradientAttrs;
    const wasm = backend as unknown as WasmBackend;
    const [xp, dy] = [inputs['x'] as tf.TensorInfo, inputs['dy'] as tf.TensorInfo];
    const [n, h, w, ci] = xp.shape as [number, number, number, number];
    const [, oh, ow, co] = dy.shape as [number, number, number, number];
    // Input channels in blocks of 4: a last block of 1–3 is read with zeros after them.
    const ci4 = Math.ceil(ci / 4) * 4;
    // Output channels in blocks of 8: a last block of 4 is padded (with zero gradients, sliced off by the caller).
    const co8 = Math.ceil(co / 8) * 8;
    const chunk = Math.max(1, Math.floor(POSITIONS_PER_CALL / ow));
    const chunks = n * Math.ceil(oh / chunk);
    // The threads share the work by units (filterGradientUnits); a unit runs its calls in order
    // (the sums' order does not depend on the threads).
    const [ciBlocks, coBlocks] = [ci4 / 4, co8 / 8];
    const memory = heapMemory(wasm.wasm);
    const helpers = memory && ciBlocks * coBlocks > 1 ? readyHelpers(memory, 'accumulateTiles') : [];
    const units = filterGradientUnits(ciBlocks, coBlocks, helpers.length + 1);
    const out = wasm.makeOutput([taps[0], taps[1], ci4, co8], 'float32');
    // Each unit's room for its copies of a call's x and dy values.
    const packFloats = units.map((u) => chunk * ow * (4 * u.ciCount + 8 * u.coCount));
    const packs = wasm.makeOutput([packFloats.reduce((a, b) => a + b, 0)], 'float32');
    const list = wasm.makeOutput([Math.max(1, units.length * chunks * ARITY)], 'int32');
    // A unit's first call starts its part of the gradient at zero; with no positions, no call does.
    if (chunks === 0 || ow === 0) elementwiseLoop(wasm.wasm, ZERO)!(taps[0] * taps[1] * ci4 * co8, wasm.typedArrayFromHeap(out).byteOffset);
    const each = heapFunction<EachCall>(wasm.wasm, 'accumulateTiles', accumulateTilesModule, 'each')!;
    // Views after the allocations (a growing heap moves them).
    const [xb, db, cb, pb] = [xp, dy, out, packs].map((t) => wasm.typedArrayFromHeap(t).byteOffset) as [number, number, number, number];
    const [sh, sw] = strides;
    const [dh, dw] = dilations;
    const calls = wasm.typedArrayFromHeap(list) as Int32Array;
    let at = 0;
    let xPack = pb;
    units.forEach(({ ciFirst, ciCount, coFirst, coCount }, u) => {
      const c = cb + 4 * ciFirst * co8 * 4 + 32 * coFirst;
      const dyPack = xPack + chunk * ow * 4 * ciCount * 4;
      const lastFloats = ciFirst + ciCount === ciBlocks ? ci - 4 * (ciBlocks - 1) : 4;
      // Only the unit with the last block of output channels reads half of it (a last block of 4).
      const halfBlock = co8 > co && coFirst + coCount === coBlocks ? 1 : 0;
      // The unit's arguments; a call changes x, dy, its rows, its first input row and `fresh`.
      const call = [c, 0, 0, 0, ow, ciCount, coCount, ow * co * 4, co8 * 4, taps[0], taps[1], ci4 * co8 * 4, xPack, dyPack, 0, -pads[1], h, w, sh, sw, dh, dw, ci * 4, co * 4, halfBlock, lastFloats, 0];
      for (let b = 0; b < n; b++) {
        for (let y0 = 0; y0 < oh; y0 += chunk) {
          call[1] = xb + b * h * w * ci * 4 + 16 * ciFirst;
          call[2] = db + (b * oh + y0) * ow * co * 4 + 32 * coFirst;
          call[3] = Math.min(chunk, oh - y0);
          call[14] = y0 * sh - pads[0];
          call[26] = b === 0 && y0 === 0 ? 1 : 0;
          calls.set(call, at);
          at += ARITY;
        }
      }
      xPack += packFloats[u]! * 4;
    });
    runUnits(helpers.slice(0, units.length - 1), each, calls.byteOffset, ARITY, units.length, chunks);
    wasm.disposeData(packs.dataId);
    wasm.disposeData(list.dataId);
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
 * apply (not wasm, not float32, Co not a multiple of 4, a heap the module cannot see).
 */
export function filterGradientInPlace(x: tf.Tensor4D, dy: tf.Tensor4D, taps: Pair, strides: Pair, pads: [number, number, number, number], dilations: Pair): tf.Tensor4D | null {
  const [ci, co] = [x.shape[3], dy.shape[3]];
  if (!enabled || tf.getBackend() !== 'wasm' || ci < 1 || co % 4 !== 0 || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const wasm = (tf.backend() as unknown as WasmBackend).wasm;
  if (!heapFunction(wasm, 'accumulateTiles', accumulateTilesModule, 'each') || !elementwiseLoop(wasm, ZERO)) return null;
  registerKernel();
  const attrs: FilterGradientAttrs = { taps, strides, dilations, pads: [pads[0], pads[2]] };
  const g = tf.engine().runKernel(KERNEL, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  if (ci % 4 === 0 && co % 8 === 0) return g;
  // The blocks' extra rows and columns (zero gradients) off.
  const kept = tf.slice(g, [0, 0, 0, 0], [taps[0], taps[1], ci, co]);
  g.dispose();
  return kept;
}
