/**
 * A convolution on wasm that reads its filter where it lies. tfjs-wasm's Conv2D and FusedConv2D
 * hand the filter to XNNPACK, which packs it into its own layout on the first call with a filter
 * tensor and keeps the packed copy while that tensor lives: free for inference, but a training
 * step has new filters after every update, so its forward repacks every filter (5–7 ns per
 * weight: about 30 ms a step for NanoDet-g's 3.8 M weights, at any batch size), and its input
 * gradients, convolutions with a flipped and transposed filter made in the step, pack those too.
 *
 * This kernel computes output tiles of 4 positions by 8 output channels with WebAssembly SIMD:
 * for each tap and input channel, the 4 positions' input values (splat) times the filter's row of
 * 8 output channels, added to 8 accumulators that start at the bias. Where the positions' input
 * lies is read from small tables: for each output row and tap row the byte offset of the input
 * row it reads (−1 where that is padding, and the tap reads zeros), and the same for columns.
 * The tables spell any stride, dilation and padding, and the phases of a strided convolution's
 * input gradient (wasm-conv-geometry.ts). The filter, [taps, Ci, Co] as the graph stores it, is
 * packed once per call into runs of 8 output channels, so a tile reads its filter rows in order
 * (an input gradient's filter is transposed as it is packed: no flipped or transposed copy).
 * The calls (a run of positions each) are shared with helper threads (heap-helpers.ts).
 *
 * Needs float32 and Co a multiple of 8 (the tile); tfjs's Conv2D and FusedConv2D with another Co
 * run as the next multiple of 8, the extra outputs dropped (`paddedOutputs`). Other cases keep
 * the stock kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { leb, namedLocals, oneFunctionModule, simdOp, VALTYPE } from './wasm-binary';
import { heapCopier, heapFunction, heapMemory } from './wasm-heap-copy';
import { elementwiseLoop } from './wasm-elementwise';
import { ZERO } from './wasm-zeros';
import { helperModule, readyHelpers, runUnits, type EachCall } from './heap-helpers';
import { registerOwnWasmKernel, replaceWasmKernel, type WasmBackend } from './wasm-kernels';
import { forwardAxis, inputGradientAxis, phases2d, type ConvPhase } from './wasm-conv-geometry';

/**
 * One call: the outputs at positions p0 .. p0 + count − 1 of a phase's grid (row-major over its
 * `cols` columns) for the 8·coBlocks output channels from the one `out`, `w` and `bias` point at.
 * Output position (m, l) is at `out + outRowTab[m] + outColTab[l]`; tap (j, i) reads the Ci values
 * at `x + rowTab[m·nty + j] + colTab[l·ntx + i]`, or zeros at `zero` where either entry is −1.
 * `activation`: 0 none, 1 ReLU, 2 leaky ReLU with slope `alphaBits` (a float32's bits). The
 * filter is packed by blocks of 8 output channels (`packFilterModule`): `w` is the phase's first
 * row of 8 in the first block, and the next block's is `blockBytes` further.
 */
export type ConvTiles = (
  out: number, x: number, w: number, bias: number, zero: number,
  rowTab: number, colTab: number, outRowTab: number, outColTab: number,
  p0: number, count: number, cols: number, nty: number, ntx: number,
  ci: number, coBlocks: number, blockBytes: number, activation: number, alphaBits: number,
) => void;
const ARITY = 19;

/** The binary of `conv(...)` (ConvTiles). */
export function convTilesModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const params = ['out', 'x', 'w', 'bias', 'zero', 'rowTab', 'colTab', 'outRowTab', 'outColTab', 'p0', 'count', 'cols', 'nty', 'ntx', 'ci', 'coBlocks', 'blockBytes', 'activation', 'alphaBits'];
  const quads = (name: string) => [0, 1, 2, 3].map((q) => `${name}${q}`);
  const ints = ['j', 'wj', 'bj', 'oj', 'p', 'end', 'pq', 'm', 'l', 'wp', 'ty', 'tx', 'k', 'r', 'c', 'ntyBytes', 'ntxBytes', ...quads('rq'), ...quads('cq'), ...quads('oq'), ...quads('xq')];
  const vectors = ['d0', 'd1', 's', 'zv', 'av', ...[0, 1, 2, 3, 4, 5, 6, 7].map((a) => `acc${a}`)];
  const L = namedLocals(params, ints, vectors);
  const { get, set, tee, i32, addTo } = L;
  const [add, sub, mul, divU, shl, or, ltS, ltU, geU, ne, eqz, select] = [0x6a, 0x6b, 0x6c, 0x6e, 0x74, 0x72, 0x48, 0x49, 0x4f, 0x47, 0x45, 0x1b];
  const loadI32 = [0x28, 0x02, 0x00];
  const load = (offset: number) => [...simdOp(0x00), 0x04, ...leb(offset)];
  const store = (offset: number) => [...simdOp(0x0b), 0x04, ...leb(offset)];
  const splat = [...simdOp(0x09), 0x02, 0x00]; // v128.load32_splat
  const [fmul, fadd, flt, bitselect] = [simdOp(0xe6), simdOp(0xe4), simdOp(0x43), simdOp(0x52)];
  const acc = (a: number) => `acc${a}`;
  const ACCS = [0, 1, 2, 3, 4, 5, 6, 7];

  // Position q of the tile (the last position again past the end: it writes the same values
  // twice), its row m and column l, where its tap tables start, and where its outputs go.
  const position = (q: number) => [
    ...get('end'), ...i32(1), sub, ...get('p'), ...i32(q), add, ...tee('pq'), ...get('pq'), ...get('end'), geU, select, ...set('pq'),
    ...get('pq'), ...get('cols'), divU, ...set('m'),
    ...get('pq'), ...get('m'), ...get('cols'), mul, sub, ...set('l'),
    ...get('rowTab'), ...get('m'), ...get('ntyBytes'), mul, add, ...set(`rq${q}`),
    ...get('colTab'), ...get('l'), ...get('ntxBytes'), mul, add, ...set(`cq${q}`),
    ...get('oj'), ...get('outRowTab'), ...get('m'), ...i32(2), shl, add, ...loadI32, add,
    ...get('outColTab'), ...get('l'), ...i32(2), shl, add, ...loadI32, add, ...set(`oq${q}`),
  ];
  // Where position q reads this tap: zeros where the row or the column is padding.
  const tapPointer = (q: number) => [
    ...get(`rq${q}`), ...get('ty'), add, ...loadI32, ...tee('r'),
    ...get(`cq${q}`), ...get('tx'), add, ...loadI32, ...tee('c'),
    or, ...i32(0), ltS, ...set('k'), // k is free here: the padding flag
    ...get('zero'), ...get('x'), ...get('r'), add, ...get('c'), add, ...get('k'), select, ...set(`xq${q}`),
  ];
  const inputChannels = [
    ...get('ci'), ...set('k'),
    0x03, 0x40,
    ...get('wp'), ...load(0), ...set('d0'), ...get('wp'), ...load(16), ...set('d1'), ...addTo('wp', i32(32)),
    ...[0, 1, 2, 3].flatMap((q) => [
      ...get(`xq${q}`), ...splat, ...set('s'),
      ...get(acc(2 * q)), ...get('s'), ...get('d0'), ...fmul, ...fadd, ...set(acc(2 * q)),
      ...get(acc(2 * q + 1)), ...get('s'), ...get('d1'), ...fmul, ...fadd, ...set(acc(2 * q + 1)),
      ...addTo(`xq${q}`, i32(4)),
    ]),
    ...get('k'), ...i32(1), sub, ...tee('k'), 0x0d, 0x00,
    0x0b,
  ];
  const taps = [
    0x02, 0x40, // no taps (a phase no tap reaches): the bias alone
    ...get('ntyBytes'), ...get('ntxBytes'), mul, eqz, 0x0d, 0x00,
    ...i32(0), ...set('ty'),
    0x03, 0x40,
    ...i32(0), ...set('tx'),
    0x03, 0x40,
    ...[0, 1, 2, 3].flatMap(tapPointer),
    ...inputChannels,
    ...addTo('tx', i32(4)), ...get('tx'), ...get('ntxBytes'), ne, 0x0d, 0x00,
    0x0b,
    ...addTo('ty', i32(4)), ...get('ty'), ...get('ntyBytes'), ne, 0x0d, 0x00,
    0x0b,
    0x0b,
  ];
  const activate = [
    ...get('activation'), ...i32(1), 0x46, 0x04, 0x40, // ReLU
    ...ACCS.flatMap((a) => [...get('zv'), ...get(acc(a)), ...get(acc(a)), ...get('zv'), ...flt, ...bitselect, ...set(acc(a))]),
    0x0b,
    ...get('activation'), ...i32(2), 0x46, 0x04, 0x40, // leaky ReLU
    ...ACCS.flatMap((a) => [...get(acc(a)), ...get('av'), ...fmul, ...get(acc(a)), ...get(acc(a)), ...get('zv'), ...flt, ...bitselect, ...set(acc(a))]),
    0x0b,
  ];
  const tile = [
    ...[0, 1, 2, 3].flatMap(position),
    ...get('bj'), ...load(0), ...set('d0'), ...get('bj'), ...load(16), ...set('d1'),
    ...ACCS.flatMap((a) => [...get(a % 2 ? 'd1' : 'd0'), ...set(acc(a))]),
    ...get('wj'), ...set('wp'),
    ...taps,
    ...activate,
    ...[0, 1, 2, 3].flatMap((q) => [...get(`oq${q}`), ...get(acc(2 * q)), ...store(0), ...get(`oq${q}`), ...get(acc(2 * q + 1)), ...store(16)]),
  ];
  const code = [
    ...L.declarations,
    0x02, 0x40,
    ...get('count'), eqz, 0x0d, 0x00, ...get('coBlocks'), eqz, 0x0d, 0x00,
    ...get('p0'), ...get('count'), add, ...set('end'),
    ...get('nty'), ...i32(2), shl, ...set('ntyBytes'), ...get('ntx'), ...i32(2), shl, ...set('ntxBytes'),
    ...simdOp(0x0c), ...Array<number>(16).fill(0), ...set('zv'),
    ...get('alphaBits'), 0xbe, ...simdOp(0x13), ...set('av'),
    ...get('w'), ...set('wj'), ...get('bias'), ...set('bj'), ...get('out'), ...set('oj'), ...get('coBlocks'), ...set('j'),
    0x03, 0x40, // each block of 8 output channels
    ...get('p0'), ...set('p'),
    0x03, 0x40, // each tile of 4 positions
    ...tile,
    ...addTo('p', i32(4)), ...get('p'), ...get('end'), ltU, 0x0d, 0x00,
    0x0b,
    ...addTo('wj', get('blockBytes')), ...addTo('bj', i32(32)), ...addTo('oj', i32(32)),
    ...get('j'), ...i32(1), sub, ...tee('j'), 0x0d, 0x00,
    0x0b,
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'conv', Array<number>(params.length).fill(VALTYPE.i32), code, true);
}

helperModule('convTiles', convTilesModule, ARITY);

/**
 * Packs `rows` filter rows of 8·blocks output channels into `blocks` runs of rows of 8 floats
 * (run b at `dst + b·dstBlockBytes`), so that a tile reads its block's rows in order. The source
 * is [rows][8·blocks] with rows `srcRowBytes` apart, or, `transposed`, [8·blocks][rows] with
 * rows of output channels `srcRowBytes` apart (an input gradient's filter, read in place).
 */
export type PackFilter = (dst: number, src: number, rows: number, blocks: number, srcRowBytes: number, dstBlockBytes: number, transposed: number) => void;

export function packFilterModule(sharedMemory: boolean): Uint8Array<ArrayBuffer> {
  const vs = ['v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 't0', 't1', 't2', 't3'];
  const L = namedLocals(['dst', 'src', 'rows', 'blocks', 'srcRowBytes', 'dstBlockBytes', 'transposed'], ['b', 'k', 'l', 'from', 'to', 'blockFrom', 'blockTo', 'n'], vs);
  const { get, set, i32, addTo, countDown } = L;
  const [add, mul, eqz, and, shrU] = [0x6a, 0x6c, 0x45, 0x71, 0x76];
  /** i8x16.shuffle of the two vectors on the stack, taking their 32-bit lanes `lanes` (0–3 the first's, 4–7 the second's). */
  const shuffle = (lanes: number[]) => [...simdOp(0x0d), ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3])];
  /** Into ROW[0..3] the 4x4 transpose of the rows in `a`..`d`: ROW[j] = (a_j, b_j, c_j, d_j). */
  const transpose4 = (a: string, b: string, c: string, d: string) => [
    ...get(a), ...get(b), ...shuffle([0, 4, 1, 5]), ...get(c), ...get(d), ...shuffle([0, 4, 1, 5]), ...set('t2'), ...set('t0'),
    ...get(a), ...get(b), ...shuffle([2, 6, 3, 7]), ...get(c), ...get(d), ...shuffle([2, 6, 3, 7]), ...set('t3'), ...set('t1'),
    // (a0 b0 a1 b1), (c0 d0 c1 d1) -> (a0 b0 c0 d0), (a1 b1 c1 d1); the same from lanes 2 and 3.
    ...get('t0'), ...get('t2'), ...shuffle([0, 1, 4, 5]), ...get('t0'), ...get('t2'), ...shuffle([2, 3, 6, 7]), ...set('t2'), ...set('t0'),
    ...get('t1'), ...get('t3'), ...shuffle([0, 1, 4, 5]), ...get('t1'), ...get('t3'), ...shuffle([2, 3, 6, 7]), ...set('t3'), ...set('t1'),
  ];
  const ROW = ['t0', 't2', 't1', 't3'];
  const code = [
    ...L.declarations,
    0x02, 0x40,
    ...get('rows'), eqz, 0x0d, 0x00, ...get('blocks'), eqz, 0x0d, 0x00,
    ...get('src'), ...set('blockFrom'), ...get('dst'), ...set('blockTo'),
    ...countDown('b', get('blocks'), [
      ...get('blockFrom'), ...set('from'), ...get('blockTo'), ...set('to'),
      ...get('transposed'), eqz, 0x04, 0x40,
      // Rows of the block: 32 bytes each, srcRowBytes apart.
      ...countDown('k', get('rows'), [
        ...get('to'), ...get('from'), ...simdOp(0x00), 0x04, 0x00, ...simdOp(0x0b), 0x04, 0x00,
        ...get('to'), ...get('from'), ...simdOp(0x00), 0x04, 0x10, ...simdOp(0x0b), 0x04, 0x10,
        ...addTo('from', get('srcRowBytes')), ...addTo('to', i32(32)),
      ]),
      ...addTo('blockFrom', i32(32)),
      0x05,
      // Rows k..k+3 of the block gather columns k..k+3 of its 8 source rows: 4 columns of each
      // loaded at once and transposed 4x4 (rows 0–3, then 4–7).
      0x02, 0x40,
      ...get('rows'), ...i32(2), shrU, ...set('n'), ...get('n'), eqz, 0x0d, 0x00,
      ...countDown('n', get('n'), [
        ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((l) => [...get('from'), ...get('srcRowBytes'), ...i32(l), mul, add, ...simdOp(0x00), 0x04, 0x00, ...set(`v${l}`)]),
        ...[0, 4].flatMap((h) => [
          ...transpose4(`v${h}`, `v${h + 1}`, `v${h + 2}`, `v${h + 3}`),
          ...[0, 1, 2, 3].flatMap((j) => [...get('to'), ...get(ROW[j]!), ...simdOp(0x0b), 0x04, ...leb(32 * j + 4 * h)]),
        ]),
        ...addTo('from', i32(16)), ...addTo('to', i32(128)),
      ]),
      0x0b,
      // The last rows & 3, a value at a time.
      0x02, 0x40,
      ...get('rows'), ...i32(3), and, ...set('n'), ...get('n'), eqz, 0x0d, 0x00,
      ...countDown('k', get('n'), [
        ...[0, 1, 2, 3, 4, 5, 6, 7].flatMap((l) => [...get('to'), ...get('from'), ...get('srcRowBytes'), ...i32(l), mul, add, 0x2a, 0x02, 0x00, 0x38, 0x02, ...leb(4 * l)]),
        ...addTo('from', i32(4)), ...addTo('to', i32(32)),
      ]),
      0x0b,
      ...get('blockFrom'), ...get('srcRowBytes'), ...i32(8), mul, add, ...set('blockFrom'),
      0x0b,
      ...addTo('blockTo', get('dstBlockBytes')),
    ]),
    0x0b, 0x0b,
  ];
  return oneFunctionModule(sharedMemory, 'pack', Array<number>(7).fill(VALTYPE.i32), code);
}

type Pair = [number, number];
type Pads = [number, number, number, number];

interface ConvAttrs {
  phases: ConvPhase[];
  /** The filter's tap (ty·kw + tx) each of the phases' taps takes, in order. */
  tapOrder: number[];
  /** The filter is [taps, Co, Ci] (an input gradient's, Co the kernel's outputs), not [taps, Ci, Co]. */
  transposed: boolean;
  outShape: [number, number, number, number];
  /** 0 none, 1 ReLU, 2 leaky ReLU. */
  activation: number;
  alpha: number;
}

const KERNEL = 'LabConv2D';
/** Below this many input channels, tfjs's own convolution is faster (a first layer's 3). */
const FEW_CHANNELS = 8;
/** About this many output positions per call: their input rows stay in cache while every block of output channels reads them. */
const POSITIONS_PER_CALL = 128;
const MIN_POSITIONS_PER_CALL = 16;
const CALLS_PER_THREAD = 4;
const ACTIVATIONS = { linear: 0, relu: 1, leakyrelu: 2 } as const;
export type ConvActivation = keyof typeof ACTIVATIONS;

let runs = 0;
/** How many convolutions this kernel has run in this process (to tell which calls it took). */
export function wasmConvolutionRuns(): number {
  return runs;
}

/** Runs the convolution `attrs` spells over x with `filter` ([taps, Ci, Co] in the phases' tap order) and `bias` ([Co]; none: zeros). */
function runConvolution(wasm: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, attrs: ConvAttrs): tf.TensorInfo {
  const { phases, outShape, activation, alpha } = attrs;
  runs += 1;
  const [n, h, w, ci] = x.shape as [number, number, number, number];
  const [, oh, ow, co] = outShape;
  const out = wasm.makeOutput(outShape, 'float32');
  const memory = heapMemory(wasm.wasm);
  const helpers = memory ? readyHelpers(memory, 'convTiles') : [];
  // Per phase, positions per call: at most POSITIONS_PER_CALL, and a few calls for every thread
  // where an image has fewer (threads take calls as they come: one that starts late leaves its
  // share to the others).
  const chunks = phases.map(({ rows, cols }) => {
    const positions = rows.out.length * cols.out.length;
    return Math.max(MIN_POSITIONS_PER_CALL, Math.min(POSITIONS_PER_CALL, Math.ceil(positions / (CALLS_PER_THREAD * (helpers.length + 1)) / 4) * 4));
  });
  const count = phases.reduce((s, p, i) => s + n * Math.ceil((p.rows.out.length * p.cols.out.length) / chunks[i]!), 0);
  // One int32 allocation: the phases' tables, then the calls (ARITY integers each).
  const tableLength = phases.reduce((s, p) => s + p.rows.reads.length + p.cols.reads.length + p.rows.out.length + p.cols.out.length, 0);
  const tables = wasm.makeOutput([Math.max(1, tableLength + count * ARITY)], 'int32');
  const zero = wasm.makeOutput([Math.max(ci, co)], 'float32');
  const packed = wasm.makeOutput([Math.max(1, attrs.tapOrder.length * ci * co)], 'float32');
  // Views after every allocation (a growing heap moves them).
  (wasm.typedArrayFromHeap(zero) as Float32Array).fill(0);
  const table = wasm.typedArrayFromHeap(tables) as Int32Array;
  const [xb, fb, ob, tb, zb, pb] = [x, filter, out, tables, zero, packed].map((t) => wasm.typedArrayFromHeap(t).byteOffset) as [number, number, number, number, number, number];
  // The filter packed once by blocks of 8 output channels, its taps in the phases' order.
  const pack = heapFunction<PackFilter>(wasm.wasm, 'packFilter', packFilterModule, 'pack')!;
  const blockBytes = attrs.tapOrder.length * ci * 32;
  attrs.tapOrder.forEach((t, i) => pack(pb + i * ci * 32, fb + t * ci * co * 4, ci, co / 8, (attrs.transposed ? ci : co) * 4, blockBytes, attrs.transposed ? 1 : 0));
  const bb = bias ? wasm.typedArrayFromHeap(bias).byteOffset : zb;
  const alphaBits = new Int32Array(new Float32Array([alpha]).buffer)[0]!;
  const each = heapFunction<EachCall>(wasm.wasm, 'convTiles', convTilesModule, 'each')!;
  let at = 0;
  /** Writes `values` (byte offsets, or −1 for padding) into the table; returns their address. */
  const put = (values: number[], bytesPerIndex: number) => {
    const address = tb + 4 * at;
    for (const v of values) table[at++] = v < 0 ? -1 : v * bytesPerIndex;
    return address;
  };
  let call = tableLength;
  phases.forEach(({ rows, cols, firstTap }, i) => {
    const [rowTab, colTab] = [put(rows.reads, w * ci * 4), put(cols.reads, ci * 4)];
    const [outRowTab, outColTab] = [put(rows.out, ow * co * 4), put(cols.out, co * 4)];
    const positions = rows.out.length * cols.out.length;
    const chunk = chunks[i]!;
    for (let b = 0; b < n; b++) {
      for (let p0 = 0; p0 < positions; p0 += chunk, call += ARITY) {
        table.set([ob + b * oh * ow * co * 4, xb + b * h * w * ci * 4, pb + firstTap * ci * 32, bb, zb, rowTab, colTab, outRowTab, outColTab, p0, Math.min(chunk, positions - p0), cols.out.length, rows.taps.length, cols.taps.length, ci, co / 8, blockBytes, activation, alphaBits], call);
      }
    }
  });
  // A unit per call: the threads take them in turn, each the next one left.
  runUnits(helpers.slice(0, count - 1), each, tb + 4 * tableLength, ARITY, count, 1);
  wasm.disposeData(tables.dataId);
  wasm.disposeData(zero.dataId);
  wasm.disposeData(packed.dataId);
  return out;
}

function registerKernel(): void {
  registerOwnWasmKernel(KERNEL, ({ inputs, backend, attrs }) =>
    runConvolution(backend as unknown as WasmBackend, inputs['x']!, inputs['filter']!, inputs['bias'], attrs as unknown as ConvAttrs));
}

let enabled = true;
/** Turns this path off or on (to compare it with the stock kernels in one process). */
export function setWasmConvolutions(on: boolean): void {
  enabled = on;
}

/** Whether this path takes a convolution with `outChannels` outputs of these tensors on `backend`. */
function takes(backend: WasmBackend, outChannels: number, tensors: tf.TensorInfo[]): boolean {
  return enabled && outChannels % 8 === 0 && tensors.every((t) => t.dtype === 'float32') && !!heapFunction(backend.wasm, 'convTiles', convTilesModule, 'each');
}

/** The wasm backend, where this path applies to a convolution with `outChannels` outputs. */
function usableBackend(outChannels: number, tensors: tf.Tensor[]): WasmBackend | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as WasmBackend;
  if (!takes(backend, outChannels, tensors)) return null;
  registerKernel();
  return backend;
}

/**
 * tfjs's Conv2D or FusedConv2D call through this kernel, or null where it does not take it (NCHW,
 * a PReLU or other activation, a bias that is not one value per channel, output channels off the tile).
 */
export function tfjsConvolutionOnWasm(args: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | null {
  const backend = args.backend as unknown as WasmBackend;
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
  const activation = (attrs.activation ?? 'linear') as ConvActivation;
  if (!x || !filter || preluActivationWeights || attrs.dataFormat === 'NCHW' || !(activation in ACTIVATIONS)) return null;
  const [ci, co] = [filter.shape[2]!, filter.shape[3]!];
  // An image's few channels: a tap's pointers cost more than its products (XNNPACK packs those filters in no time).
  if (ci < FEW_CHANNELS) return null;
  // Output channels off the tile (a detection head's 80 + 4·11 = 124) are computed as the next
  // multiple of 8 and the extra ones dropped (`paddedOutputs`).
  const co8 = Math.ceil(co / 8) * 8;
  if ((bias && (bias.shape.length !== 1 || bias.shape[0] !== co)) || !takes(backend, co8, bias ? [x, filter, bias] : [x, filter])) return null;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filter.shape as [number, number, number, number], attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode);
  const { top, left } = info.padInfo;
  const rows = forwardAxis(info.outHeight, info.inHeight, info.filterHeight, info.strideHeight, info.dilationHeight, top);
  const cols = forwardAxis(info.outWidth, info.inWidth, info.filterWidth, info.strideWidth, info.dilationWidth, left);
  const { phases, tapOrder } = phases2d([rows], [cols], info.filterWidth);
  const conv = (f: tf.TensorInfo, b: tf.TensorInfo | undefined, channels: number) =>
    runConvolution(backend, x, f, b, { phases, tapOrder, transposed: false, outShape: [info.batchSize, info.outHeight, info.outWidth, channels], activation: ACTIVATIONS[activation], alpha: attrs.leakyreluAlpha ?? 0.2 });
  return co === co8 ? conv(filter, bias, co) : paddedOutputs(backend, filter, bias, co8, conv);
}

/**
 * A convolution with `co8` output channels in place of the filter's co (not a multiple of 8): the
 * filter and bias copied with zero columns after their own, the convolution run, and each output
 * position's first co values copied out (memory.copy runs, wasm-heap-copy.ts). XNNPACK's kernel,
 * which takes any count, runs on one thread, as tfjs-wasm's pool does here (src/cli/wasm-threads.ts).
 */
function paddedOutputs(backend: WasmBackend, filter: tf.TensorInfo, bias: tf.TensorInfo | undefined, co8: number, conv: (f: tf.TensorInfo, b: tf.TensorInfo, channels: number) => tf.TensorInfo): tf.TensorInfo {
  const co = filter.shape[3]!;
  const rows = filter.shape.slice(0, 3).reduce((a, b) => a * b, 1);
  const zero = elementwiseLoop(backend.wasm, ZERO)!;
  const copy = heapCopier(backend.wasm);
  const wide = backend.makeOutput([...filter.shape.slice(0, 3), co8], 'float32');
  const wideBias = backend.makeOutput([co8], 'float32');
  const at = (t: tf.TensorInfo) => backend.typedArrayFromHeap(t).byteOffset;
  zero(rows * co8, at(wide));
  zero(co8, at(wideBias));
  copy(at(wide), at(filter), co * 4, rows, co * 4, co8 * 4);
  if (bias) copy(at(wideBias), at(bias), co * 4, 1, 0, 0);
  const full = conv(wide, wideBias, co8);
  const [n, oh, ow] = full.shape as [number, number, number, number];
  const out = backend.makeOutput([n, oh, ow, co], 'float32');
  copy(at(out), at(full), co * 4, n * oh * ow, co8 * 4, co * 4);
  for (const t of [wide, wideBias, full]) backend.disposeData(t.dataId);
  return out;
}

/**
 * Puts this kernel in front of tfjs-wasm's Conv2D and FusedConv2D where it takes the call (before
 * the leaky ReLU's replacement of FusedConv2D, when installed after it: wasm-kernels.ts).
 */
export function convolutionsBySimdOnWasm(): void {
  for (const name of ['Conv2D', 'FusedConv2D']) replaceWasmKernel(name, (_x, args) => tfjsConvolutionOnWasm(args), 'wasm-conv');
}

const outSize = (size: number, k: number, stride: number, dilation: number, before: number, after: number) => Math.floor((size + before + after - ((k - 1) * dilation + 1)) / stride) + 1;

/**
 * act(conv2d(x, filter) + bias) on wasm with the filter read in place: x [N,H,W,Ci], filter
 * [KH,KW,Ci,Co], explicit pads [top, bottom, left, right]. Null where this path does not apply
 * (not wasm, Co not a multiple of 8, not float32).
 */
export function convOnWasm(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor | null, strides: Pair, pads: Pads, dilations: Pair, activation: ConvActivation = 'linear', alpha = 0): tf.Tensor4D | null {
  const [kh, kw, , co] = filter.shape;
  if (!usableBackend(co, bias ? [x, filter, bias] : [x, filter])) return null;
  const [n, h, w] = x.shape;
  const oh = outSize(h, kh, strides[0], dilations[0], pads[0], pads[1]);
  const ow = outSize(w, kw, strides[1], dilations[1], pads[2], pads[3]);
  const { phases, tapOrder } = phases2d([forwardAxis(oh, h, kh, strides[0], dilations[0], pads[0])], [forwardAxis(ow, w, kw, strides[1], dilations[1], pads[2])], kw);
  const attrs: ConvAttrs = { phases, tapOrder, transposed: false, outShape: [n, oh, ow, co], activation: ACTIVATIONS[activation], alpha };
  const inputs: Record<string, tf.Tensor> = { x, filter };
  if (bias) inputs['bias'] = bias;
  return tf.engine().runKernel(KERNEL, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * The input gradient of conv2d(x, filter) (x shaped `xShape`, filter [KH,KW,Ci,Co]) at output
 * gradient `dy` [N,OH,OW,Co], on wasm: each tap's [Ci, Co] matrix read as [Co, Ci] while the
 * filter is packed, and for a strided convolution one phase per stride residue
 * (wasm-conv-geometry.ts). Null where this path does not apply (not wasm, Ci not a multiple of 8,
 * not float32).
 */
export function convInputGradientOnWasm(dy: tf.Tensor4D, filter: tf.Tensor4D, xShape: readonly number[], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D | null {
  const [kh, kw, ci] = filter.shape;
  if (!usableBackend(ci, [dy, filter])) return null;
  const [n, h, w] = xShape as [number, number, number, number];
  const [, oh, ow] = dy.shape;
  const { phases, tapOrder } = phases2d(inputGradientAxis(h, oh, kh, strides[0], dilations[0], pads[0]), inputGradientAxis(w, ow, kw, strides[1], dilations[1], pads[2]), kw);
  const attrs: ConvAttrs = { phases, tapOrder, transposed: true, outShape: [n, h, w, ci], activation: 0, alpha: 0 };
  return tf.engine().runKernel(KERNEL, { x: dy, filter } as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
