/**
 * Convolution and depthwise-convolution gradients written with forward kernels only (convolution,
 * matrix product, slices), for backends without backprop kernels (wasm has no
 * Conv2DBackpropFilter and no depthwise backprop). Shapes: x [N,H,W,Ci], filter [KH,KW,Ci,Co]
 * (depthwise: [KH,KW,C,M]), explicit pads [top, bottom, left, right]. Either the stride or the
 * dilation must be 1 on each axis (tfjs's own rule for convolutions).
 *
 * - Filter gradient on wasm where Co is a multiple of 4: accumulated in place by the lab's SIMD
 *   kernel, reading the input and dy where they lie, shared with helper threads
 *   (wasm-filter-grad.ts). Else:
 * - Filter gradient of a 1x1 stride-1 convolution: one matrix product xᵀ·dy.
 * - Filter gradient of a k×k convolution, im2col by tap: for each of the k·k taps, the input
 *   window that tap reads (at stride 1 sliced from one channels-first transpose of the padded
 *   input; strided, a strided slice) times dy, as a matrix product whose right operand (dy) is
 *   the same for every tap.
 * - Depthwise filter gradient: per tap, the shifted input times dy, summed over batch and space.
 * - Input gradient on wasm where Ci is a multiple of 8: the lab's convolution reads dy and the
 *   filter (transposed per tap) in place, a strided one phase by phase (wasm-conv.ts). Else:
 * - Input gradient: one forward convolution of dy with the flipped filter, its padding chosen so
 *   the result is the input's size (no pad or crop of dy, except a stride's zero spreading).
 * Every gradient is computed only when backprop asks for it (see withLazyGradients), and the
 * matrix products never use transposeA/transposeB (several times slower on wasm than an explicit
 * transpose followed by a plain product).
 */
import * as tf from '@tensorflow/tfjs-core';
import { withLazyGradients } from './tape';
import { channelSums } from './bias-add';
import { sideBySide } from './side-by-side';
import { activationSlopeGrad } from './leaky-relu';
import { filterGradientInPlace } from '../wasm-filter-grad';
import { convInputGradientOnWasm } from '../wasm-conv';

export type Pads = [number, number, number, number];
type Pair = [number, number];
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

function outSize(inSize: number, k: number, stride: number, dilation: number, before: number, after: number) {
  return Math.floor((inSize + before + after - ((k - 1) * dilation + 1)) / stride) + 1;
}

const padsArg = (p: Pads): Pad4 => [[0, 0], [p[0], p[1]], [p[2], p[3]], [0, 0]];

/**
 * Insert (stride − 1) zeros after every row and column of dy: [N,OH,OW,C] → [N,OH·s,OW·s,C]
 * (the last s − 1 rows and columns are zeros too; the caller's padding accounts for them).
 */
function spreadByStride(dy: tf.Tensor4D, [sh, sw]: Pair): tf.Tensor4D {
  if (sh === 1 && sw === 1) return dy;
  const [n, oh, ow, c] = dy.shape;
  return tf.pad(dy.reshape([n, oh, 1, ow, 1, c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]).reshape([n, oh * sh, ow * sw, c]);
}

/**
 * The filter flipped in both spatial axes: its taps as rows, taken in reverse order (contiguous
 * slices and one concat; tfjs-wasm's Reverse and Gather are several times slower).
 */
function flipSpatial(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  const taps = kh * kw;
  if (taps === 1) return filter;
  const rows = filter.reshape([taps, a * b]);
  return tf.concat(Array.from({ length: taps }, (_, i) => tf.slice(rows, [taps - 1 - i, 0], [1, a * b]))).reshape([kh, kw, a, b]);
}

/**
 * The input gradient of a convolution: dy (spread by the stride) correlated with the flipped
 * filter (already [KH,KW,Co,Ci], or [KH,KW,C·M,1] for depthwise), with pads chosen so the
 * output covers exactly the unpadded input rows: row r of the result is padded-input row r + top.
 */
function inputGradient(dy: tf.Tensor4D, flipped: tf.Tensor4D, xShape: readonly number[], strides: Pair, dilations: Pair, pads: Pads, depthwise: boolean, multiplier: number): tf.Tensor4D {
  const [n, h, w, c] = xShape as [number, number, number, number];
  const [kh, kw] = flipped.shape;
  let spread = spreadByStride(dy, strides);
  const fh = (kh - 1) * dilations[0];
  const fw = (kw - 1) * dilations[1];
  // Rows of the spread dy that lie before/after what reaches the input rows are cropped (a pad
  // larger than the kernel's reach, or rows the stride never read): negative pads become crops.
  let top = fh - pads[0];
  let bottom = h + pads[0] - spread.shape[1];
  let left = fw - pads[2];
  let right = w + pads[2] - spread.shape[2];
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [, sh, sw] = spread.shape;
    const t0 = Math.max(0, -top);
    const l0 = Math.max(0, -left);
    spread = tf.slice(spread, [0, t0, l0, 0], [n, sh - t0 - Math.max(0, -bottom), sw - l0 - Math.max(0, -right), spread.shape[3]]);
    top = Math.max(0, top);
    bottom = Math.max(0, bottom);
    left = Math.max(0, left);
    right = Math.max(0, right);
  }
  const p: Pad4 = [[0, 0], [top, bottom], [left, right], [0, 0]];
  let g = depthwise ? tf.depthwiseConv2d(spread, flipped, 1, p, 'NHWC', dilations) : tf.conv2d(spread, flipped, 1, p, 'NHWC', dilations);
  if (depthwise && multiplier > 1) g = g.reshape([n, h, w, c, multiplier]).sum(4) as tf.Tensor4D;
  return g;
}

/**
 * The input values each output position reads at tap (ty, tx), [N,OH,OW,C], out of the padded
 * input: a slice at stride 1, a strided slice otherwise (on wasm, the lab's StridedSlice kernel
 * copies runs of channels: 3x faster than a one-tap depthwise convolution, which multiplies by
 * the eight zero taps too).
 */
export function tapWindow(xp: tf.Tensor4D, ty: number, tx: number, [oh, ow]: Pair, strides: Pair, dilations: Pair): tf.Tensor4D {
  const [n, , , c] = xp.shape;
  const [y0, x0] = [ty * dilations[0], tx * dilations[1]];
  if (strides[0] === 1 && strides[1] === 1) return tf.slice(xp, [0, y0, x0, 0], [n, oh, ow, c]);
  return tf.stridedSlice(xp, [0, y0, x0, 0], [n, y0 + (oh - 1) * strides[0] + 1, x0 + (ow - 1) * strides[1] + 1, c], [1, strides[0], strides[1], 1]) as tf.Tensor4D;
}

/** x with its explicit pads applied (x itself when there are none). */
const padded = (x: tf.Tensor4D, pads: Pads): tf.Tensor4D => (pads.some((p) => p > 0) ? tf.pad(x, padsArg(pads)) : x);

/**
 * tfjs-wasm's Transpose of an [R,C] matrix writes each input row down a column of the output,
 * R floats apart. When 4·R bytes is a multiple of a large power of two, as it is for the feature
 * maps of 256 and 320 px inputs (2·32·32 or 4·40·40 positions, multiples of 256), the C writes of
 * a row fall into a few sets of the 32 KiB, 8-way L1 cache and evict each other once C exceeds
 * their ways: the transpose then runs 2–8x slower than for a row count just beside it ([2048,128]:
 * 1.9 ms, [2112,128]: 0.3 ms; [6400,128] 3.8 ns per value, [6400,32] 1.5, [10816,128] 1.0).
 */
export function transposeConflicts(rows: number, columns: number): boolean {
  // Rows that straddle cache lines spread over every set; more than 8 · 64 columns overflow the
  // cache whatever the row count (no other count would do better).
  if (!conflictPadding || rows % 16 !== 0 || columns > 8 * 64) return false;
  const lineStride = rows / 16;
  let shared = 1; // the power of two that line strides share with the 64 sets
  while (shared < 64 && lineStride % (shared * 2) === 0) shared *= 2;
  return columns > 8 * (64 / shared);
}

/**
 * The row count to run a filter-gradient product over: `rows`, or the next count (16 more at a
 * time) whose transpose is free of those conflicts. The rows added are zeros in both operands of
 * the product, so they add nothing to it.
 */
export function conflictFreeRows(rows: number, columns: number): number {
  let r = rows;
  while (transposeConflicts(r, columns)) r += 16;
  return r;
}

let conflictPadding = true;
/** Turns the conflict-free row counts off or on (to compare both in one process). */
export function setConflictPadding(on: boolean): void {
  conflictPadding = on;
}

/** `m` [R,C] with zero rows appended up to `rows`. */
function withRows(m: tf.Tensor2D, rows: number): tf.Tensor2D {
  const [r, c] = m.shape;
  return r === rows ? m : tf.concat([m, tf.zeros([rows - r, c])]);
}

/** `m` [R,C] transposed to [C,R'], R' = conflictFreeRows(R, C): the left operand of a filter-gradient product. */
function transposedForProduct(m: tf.Tensor2D): tf.Tensor2D {
  return withRows(m, conflictFreeRows(m.shape[0], m.shape[1])).transpose();
}

/** The per-tap gradients as one filter: a 1-D concat (tfjs-wasm's Pack is up to 4x slower for the same copy). */
function joinTaps(taps: tf.Tensor[], shape: [number, number, number, number]): tf.Tensor4D {
  return tf.concat(taps.map((t) => t.reshape([-1]))).reshape(shape);
}

/**
 * Gradient of conv2d(x, filter) w.r.t. the filter at output gradient dy: per tap, the input
 * window that tap reads, as [Ci, N·OH·OW], times dy [N·OH·OW, Co]. dy is the same right operand
 * for every tap (the wasm matrix product packs it once).
 * - 1x1 at stride 1: the input itself is the one window.
 * - Stride 1: the padded input is transposed once, channels first, and each window is a slice of
 *   that (channelMajorFilterGradient).
 * - Strided: each window is a strided slice of the padded input, [N·OH·OW, Ci], transposed;
 *   position counts whose transpose would meet cache conflicts (`transposeConflicts`) get zero
 *   rows in both operands.
 */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw, ci, co]: readonly number[], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  const inPlace = filterGradientInPlace(x, dy, [kh!, kw!], strides, pads, dilations);
  if (inPlace) return inPlace;
  const [n, oh, ow] = dy.shape;
  const stride1 = strides[0] === 1 && strides[1] === 1;
  const rows = n * oh * ow;
  if (kh === 1 && kw === 1 && stride1 && pads.every((p) => p === 0)) {
    return tf.matMul(transposedForProduct(x.reshape([rows, ci!])), withRows(dy.reshape([rows, co!]), conflictFreeRows(rows, ci!))).reshape([1, 1, ci!, co!]);
  }
  if (stride1) return channelMajorFilterGradient(x, dy, [kh!, kw!, ci!, co!], pads, dilations);
  const stacked = ci! * kh! * kw! <= STACKED_TAP_ROWS;
  const dy2 = withRows(dy.reshape([rows, co!]), conflictFreeRows(rows, stacked ? ci! * kh! * kw! : ci!));
  if (stacked) return stackedFilterGradient(x, dy2 as tf.Tensor2D, [kh!, kw!, ci!, co!], [oh, ow], strides, pads, dilations);
  const xp = padded(x, pads);
  const taps: tf.Tensor[] = [];
  for (let ty = 0; ty < kh!; ty++) {
    for (let tx = 0; tx < kw!; tx++) {
      taps.push(tf.tidy(() => {
        const window = tapWindow(xp, ty, tx, [oh, ow], strides, dilations);
        return tf.matMul(transposedForProduct(window.reshape([rows, ci!])), dy2);
      }));
    }
  }
  return joinTaps(taps, [kh!, kw!, ci!, co!]);
}

/**
 * The filter gradient of a stride-1 convolution from one transpose: the padded input as
 * [Ci, N, HP, WP], in which the window of tap (ty, tx) is the box at rows ty·dh, columns tx·dw,
 * sliced straight into the [Ci, N·OH·OW] left operand of that tap's product. Per tap, a slice
 * and a transpose of the window would move every value twice, and tfjs-wasm's transposes run on
 * one thread. When the padded input's position count would transpose with cache conflicts, it
 * gets a column (or row) of zeros more that no window reads.
 */
function channelMajorFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw, ci, co]: [number, number, number, number], pads: Pads, dilations: Pair): tf.Tensor4D {
  const [n, oh, ow] = dy.shape;
  const [eh, ew] = conflictFreeGrid(n, x.shape[1] + pads[0] + pads[1], x.shape[2] + pads[2] + pads[3], ci);
  const grown: Pads = [pads[0], pads[1] + eh, pads[2], pads[3] + ew];
  const xp = padded(x, grown);
  const [, hp, wp] = xp.shape;
  const channelsFirst = xp.reshape([n * hp * wp, ci]).transpose().reshape([ci, n, hp, wp]);
  const rows = n * oh * ow;
  const dy2 = dy.reshape([rows, co]);
  const taps: tf.Tensor[] = [];
  for (let ty = 0; ty < kh; ty++) {
    for (let tx = 0; tx < kw; tx++) {
      taps.push(tf.tidy(() => tf.matMul(tf.slice(channelsFirst, [0, 0, ty * dilations[0], tx * dilations[1]], [ci, n, oh, ow]).reshape([ci, rows]), dy2)));
    }
  }
  return joinTaps(taps, [kh, kw, ci, co]);
}

/**
 * For an [N, H, W, C] feature map whose N·H·W positions transpose with cache conflicts: how many
 * rows and columns of positions to add, [rows, columns], so that they do not. [0, 0] when they
 * already do not, or when no such small growth exists.
 */
function conflictFreeGrid(n: number, h: number, w: number, channels: number): Pair {
  if (!transposeConflicts(n * h * w, channels)) return [0, 0];
  const growths: Pair[] = [[0, 1], [1, 0], [1, 1], [0, 2], [2, 0]];
  return growths.find(([eh, ew]) => !transposeConflicts(n * (h + eh) * (w + ew), channels)) ?? [0, 0];
}

/** Up to this many rows (input channels × taps), a strided filter gradient stacks its taps. */
const STACKED_TAP_ROWS = 64;

/**
 * The filter gradient of a strided convolution with few input channels (an image's first layer:
 * 3 channels, 9 taps) as one product: every tap's window comes out of one depthwise convolution
 * whose multiplier picks the taps ([N,OH,OW,Ci·taps]), and [Ci·taps, N·OH·OW] · dy gives all taps
 * at once. Per tap, the product would have Ci rows (3), which the wasm matrix product runs at a
 * few percent of its rate.
 */
function stackedFilterGradient(x: tf.Tensor4D, dy2: tf.Tensor2D, [kh, kw, ci, co]: [number, number, number, number], [oh, ow]: Pair, strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  const taps = kh * kw;
  const pick = new Float32Array(kh * kw * ci * taps);
  // filter[ty, tx, c, m] = 1 where m is tap ty·kw + tx: output channel c·taps + m is input channel c at that tap.
  for (let t = 0; t < taps; t++) for (let c = 0; c < ci; c++) pick[(t * ci + c) * taps + t] = 1;
  const windows = tf.depthwiseConv2d(x, tf.tensor4d(pick, [kh, kw, ci, taps]), strides, padsArg(pads), 'NHWC', dilations);
  const rows = x.shape[0] * oh * ow;
  const perChannelAndTap = tf.matMul(transposedForProduct(windows.reshape([rows, ci * taps])), dy2);
  return perChannelAndTap.reshape([ci, taps, co]).transpose([1, 0, 2]).reshape([kh, kw, ci, co]);
}

/**
 * Gradient of depthwiseConv2d(x, filter) w.r.t. the filter: per tap, the input window times dy,
 * summed over batch and space ([C] per tap and multiplier).
 */
function depthwiseFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, [kh, kw, c, m]: readonly number[], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  const [n, oh, ow] = dy.shape;
  const dy5 = dy.reshape([n, oh, ow, c!, m!]);
  const xp = padded(x, pads);
  const taps: tf.Tensor[] = [];
  for (let ty = 0; ty < kh!; ty++) {
    for (let tx = 0; tx < kw!; tx++) {
      taps.push(tf.tidy(() => {
        const window = tapWindow(xp, ty, tx, [oh, ow], strides, dilations);
        return channelSums(tf.mul(window.reshape([n, oh, ow, c!, 1]), dy5).reshape([n, oh, ow, c! * m!]));
      }));
    }
  }
  return joinTaps(taps, [kh!, kw!, c!, m!]);
}

function assertStrideOrDilation(strides: Pair, dilations: Pair, what: string) {
  if ((strides[0] > 1 && dilations[0] > 1) || (strides[1] > 1 && dilations[1] > 1)) {
    throw new Error(`${what}: gradients through forward convolutions need stride 1 or dilation 1 on each axis (got strides ${strides}, dilations ${dilations}).`);
  }
}

/** Input gradient of conv2d(·, filter): flip the kernel spatially and swap its in/out channels. */
function conv2dInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D, xShape: readonly number[], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  const inPlace = convInputGradientOnWasm(dy, filter, xShape, strides, pads, dilations);
  if (inPlace) return inPlace;
  if (isStridedOnly(strides, dilations)) return stridedInputGradient(dy, filter.transpose([0, 1, 3, 2]) as tf.Tensor4D, xShape, strides, pads, false, 1);
  const flipped = flipSpatial(filter).transpose([0, 1, 3, 2]) as tf.Tensor4D;
  return inputGradient(dy, flipped, xShape, strides, dilations, pads, false, 1);
}

const isStridedOnly = (strides: Pair, dilations: Pair) => (strides[0] > 1 || strides[1] > 1) && dilations[0] === 1 && dilations[1] === 1;

/**
 * One axis of a stride phase: input rows i = s·m + a (m = 0..rows−1) take the taps
 * k = first + s·j (j = 0..taps−1) from dy rows o = m + lead − j. As a stride-1 correlation of dy
 * with those taps reversed: pad dy by `before` and `after` (negative: crop).
 */
interface PhaseAxis {
  first: number;
  taps: number;
  before: number;
  after: number;
}

function phaseAxis(a: number, stride: number, k: number, padBefore: number, outRows: number, rows: number): PhaseAxis {
  const first = (a + padBefore) % stride;
  const lead = Math.floor((a + padBefore) / stride);
  const taps = first < k ? Math.ceil((k - first) / stride) : 0;
  const before = taps - 1 - lead;
  return { first, taps, before, after: rows + taps - 1 - outRows - before };
}

/**
 * The input gradient of a strided convolution (dilation 1), one stride phase at a time: the input
 * rows and columns of one phase (i mod s fixed) see only the taps of one residue class, so each
 * phase is a stride-1 correlation of dy itself with a sub-kernel (about k²/s² taps), and the
 * phases interleave into the result. Spreading dy with zeros and correlating with the whole
 * kernel would do s² times the multiply-adds, most of them with zeros.
 * `filter` is [KH,KW,Cdy,Cx] in forward tap order (not flipped); depthwise: [KH,KW,C·M,1].
 */
function stridedInputGradient(dy: tf.Tensor4D, filter: tf.Tensor4D, xShape: readonly number[], strides: Pair, pads: Pads, depthwise: boolean, multiplier: number): tf.Tensor4D {
  const [n, h, w, c] = xShape as [number, number, number, number];
  const [kh, kw, a, b] = filter.shape;
  const [, oh, ow, cdy] = dy.shape;
  const [sh, sw] = strides;
  const rows = Math.ceil(h / sh);
  const cols = Math.ceil(w / sw);
  const outChannels = depthwise ? cdy : b;
  const taps = filter.reshape([kh * kw, a * b]) as tf.Tensor2D;
  const phaseRows: tf.Tensor4D[] = [];
  for (let ah = 0; ah < sh; ah++) {
    const py = phaseAxis(ah, sh, kh, pads[0], oh, rows);
    const phases: tf.Tensor4D[] = [];
    for (let aw = 0; aw < sw; aw++) {
      const px = phaseAxis(aw, sw, kw, pads[2], ow, cols);
      if (py.taps === 0 || px.taps === 0) {
        phases.push(tf.zeros([n, rows, cols, outChannels]));
        continue;
      }
      // The phase's taps, last first on each axis (correlation order).
      const picks: tf.Tensor2D[] = [];
      for (let j = py.taps - 1; j >= 0; j--) {
        for (let i = px.taps - 1; i >= 0; i--) picks.push(tf.slice(taps, [(py.first + sh * j) * kw + px.first + sw * i, 0], [1, a * b]));
      }
      const sub = (picks.length === 1 ? picks[0]! : tf.concat(picks)).reshape([py.taps, px.taps, a, b]) as tf.Tensor4D;
      let src = dy;
      const t0 = Math.max(0, -py.before);
      const b0 = Math.max(0, -py.after);
      const l0 = Math.max(0, -px.before);
      const r0 = Math.max(0, -px.after);
      if (t0 + b0 + l0 + r0 > 0) src = tf.slice(dy, [0, t0, l0, 0], [n, oh - t0 - b0, ow - l0 - r0, cdy]);
      const p: Pad4 = [[0, 0], [Math.max(0, py.before), Math.max(0, py.after)], [Math.max(0, px.before), Math.max(0, px.after)], [0, 0]];
      phases.push(depthwise ? tf.depthwiseConv2d(src, sub, 1, p, 'NHWC') : tf.conv2d(src, sub, 1, p, 'NHWC'));
    }
    // [N, rows, cols, sw, C]: column phases side by side.
    phaseRows.push((sw === 1 ? phases[0]!.expandDims(3) : sideBySide(phases)) as tf.Tensor4D);
  }
  // [N, rows, sh, cols, sw, C] → [N, rows·sh, cols·sw, C]: row m·sh + ah, column l·sw + aw.
  const joined = (sh === 1 ? phaseRows[0]!.expandDims(2) : tf.stack(phaseRows, 2)).reshape([n, rows * sh, cols * sw, outChannels]) as tf.Tensor4D;
  let g = rows * sh === h && cols * sw === w ? joined : tf.slice(joined, [0, 0, 0, 0], [n, h, w, outChannels]);
  if (depthwise && multiplier > 1) g = g.reshape([n, h, w, c, multiplier]).sum(4) as tf.Tensor4D;
  return g;
}

/**
 * Transposed convolution (TensorFlow's Conv2DBackpropInput): the input gradient of
 * conv2d(·, filter) at output gradient `dy`, shaped `xShape`; filter [KH,KW,Cout,Cin], dy
 * [N,h,w,Cin]. Forward and gradients use forward kernels only: d dy = conv2d(g, filter)
 * and d filter = the filter gradient of conv2d(g, ·) at dy.
 */
export function conv2dTransposeForwardGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, xShape: [number, number, number, number], strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'conv2dTranspose');
  return withLazyGradients(
    [dy, filter],
    (save) => {
      save([dy, filter]);
      return conv2dInputGradient(dy, filter, xShape, strides, pads, dilations);
    },
    (g, [sd, sf]) => {
      const g4 = g as tf.Tensor4D;
      const d = sd as tf.Tensor4D;
      const f = sf as tf.Tensor4D;
      return [() => tf.conv2d(g4, f, strides, padsArg(pads), 'NHWC', dilations), () => filterGradient(g4, d, f.shape, strides, pads, dilations)];
    },
  ) as tf.Tensor4D;
}

/** The input and filter gradients of conv2d(x, filter) at dy, each computed only when asked for. */
function conv2dGradients(dy: tf.Tensor4D, x: tf.Tensor4D, f: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): (() => tf.Tensor)[] {
  return [() => conv2dInputGradient(dy, f, x.shape, strides, pads, dilations), () => filterGradient(x, dy, f.shape, strides, pads, dilations)];
}

/** The input and filter gradients of depthwiseConv2d(x, filter) at dy (any channel multiplier). */
function depthwiseGradients(dy: tf.Tensor4D, x: tf.Tensor4D, f: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): (() => tf.Tensor)[] {
  const [kh, kw, c, m] = f.shape;
  // Input gradient: each output channel c·m+j correlates back onto input channel c.
  const dx = () =>
    isStridedOnly(strides, dilations)
      ? stridedInputGradient(dy, f.reshape([kh, kw, c * m, 1]) as tf.Tensor4D, x.shape, strides, pads, true, m)
      : inputGradient(dy, flipSpatial(f).reshape([kh, kw, c * m, 1]), x.shape, strides, dilations, pads, true, m);
  return [dx, () => depthwiseFilterGradient(x, dy, f.shape, strides, pads, dilations)];
}

/** conv2d (NHWC, explicit pads) whose gradients use forward kernels only. */
export function conv2dForwardGrad(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'conv2d');
  return withLazyGradients(
    [x, filter],
    (save) => {
      save([x, filter]);
      return tf.conv2d(x, filter, strides, padsArg(pads), 'NHWC', dilations);
    },
    (dy, [sx, sf]) => conv2dGradients(dy as tf.Tensor4D, sx as tf.Tensor4D, sf as tf.Tensor4D, strides, pads, dilations),
  ) as tf.Tensor4D;
}

/** depthwiseConv2d (NHWC, explicit pads, any channel multiplier) with forward-kernel gradients. */
export function depthwiseConv2dForwardGrad(x: tf.Tensor4D, filter: tf.Tensor4D, strides: Pair, pads: Pads, dilations: Pair): tf.Tensor4D {
  assertStrideOrDilation(strides, dilations, 'depthwiseConv2d');
  return withLazyGradients(
    [x, filter],
    (save) => {
      save([x, filter]);
      return tf.depthwiseConv2d(x, filter, strides, padsArg(pads), 'NHWC', dilations);
    },
    (dy, [sx, sf]) => depthwiseGradients(dy as tf.Tensor4D, sx as tf.Tensor4D, sf as tf.Tensor4D, strides, pads, dilations),
  ) as tf.Tensor4D;
}

/** An activation whose derivative can be read off its output (slope 1 where y > 0, else `alpha`; α ≥ 0). */
export interface OutputSlopeActivation {
  name: 'linear' | 'relu' | 'leakyrelu';
  alpha: number;
}

/** Geometry of a convolution: NHWC, explicit pads. */
export interface ConvGeometry {
  strides: Pair;
  pads: Pads;
  dilations: Pair;
  depthwise: boolean;
}

/**
 * act(conv(x, filter) + bias) as tfjs's fused kernel (FusedConv2D / FusedDepthwiseConv2D): the bias
 * and the activation are applied to the convolution's output while it is written, where separate
 * Add and activation kernels would each read and write the whole tensor again. `bias` holds C values.
 */
export function fusedConvKernel(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, activation: string, alpha: number, g: ConvGeometry, preluAlpha?: tf.Tensor): tf.Tensor4D {
  // The kernels take a [C] bias; a graph's bias usually is one already (no Reshape kernel then).
  const inputs: Record<string, tf.Tensor> = { x, filter, bias: bias.rank === 1 ? bias : bias.reshape([-1]) };
  if (preluAlpha) inputs['preluActivationWeights'] = preluAlpha;
  const attrs = { strides: g.strides, pad: padsArg(g.pads), dataFormat: 'NHWC', dilations: g.dilations, dimRoundingMode: undefined, activation, leakyreluAlpha: alpha };
  return tf.engine().runKernel(g.depthwise ? 'FusedDepthwiseConv2D' : 'FusedConv2D', inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * The input and filter gradients of a convolution at dy from the backend's own backprop kernels
 * (cpu, WebGPU), as tfjs's conv2d and depthwiseConv2d gradients compute them (dilation 1).
 */
function nativeGradients(dy: tf.Tensor4D, x: tf.Tensor4D, f: tf.Tensor4D, g: ConvGeometry): (() => tf.Tensor)[] {
  const engine = tf.engine();
  const attrs = { strides: g.strides, pad: padsArg(g.pads), dataFormat: 'NHWC', dimRoundingMode: undefined, dilations: g.dilations };
  const run = (kernel: string, inputs: Record<string, tf.Tensor>, extra: Record<string, unknown>) =>
    engine.runKernel(kernel, inputs as unknown as tf.NamedTensorMap, { ...attrs, ...extra } as unknown as tf.NamedAttrMap) as tf.Tensor;
  return g.depthwise
    ? [() => run('DepthwiseConv2dNativeBackpropInput', { dy, filter: f }, { inputShape: x.shape }), () => run('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { filterShape: f.shape })]
    : [() => run('Conv2DBackpropInput', { dy, filter: f }, { inputShape: x.shape }), () => run('Conv2DBackpropFilter', { x, dy }, { filterShape: f.shape })];
}

/**
 * act(conv(x, filter) + bias) for training, its forward one fused kernel. Recorded as two ops: the
 * convolution with its bias and activation, whose gradient takes the gradient at the activation's
 * input (dz) and returns those of x, the filter and the bias; and an alias of its output whose
 * gradient turns dy into dz = dy · slope(y). dz is computed once, and the activation's input is
 * never kept (the unfused chain keeps it for the activation's gradient). The convolution's
 * gradients come from forward kernels (`gradients: 'forward'`, for wasm, which lacks backprop
 * kernels) or from the backend's own backprop kernels (`'native'`, dilation 1).
 */
export function convBiasActivationGrad(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, activation: OutputSlopeActivation, g: ConvGeometry, gradients: 'forward' | 'native' = 'forward'): tf.Tensor4D {
  const { strides, pads, dilations } = g;
  if (gradients === 'forward') assertStrideOrDilation(strides, dilations, g.depthwise ? 'depthwiseConv2d' : 'conv2d');
  else if (dilations[0] !== 1 || dilations[1] !== 1) throw new Error(`The backend's own convolution gradients need dilation 1 (got ${dilations}).`);
  const y = withLazyGradients(
    [x, filter, bias],
    (save) => {
      save([x, filter]);
      return fusedConvKernel(x, filter, bias, activation.name, activation.alpha, g);
    },
    (dz, [sx, sf]) => {
      const [dz4, xs, f] = [dz as tf.Tensor4D, sx as tf.Tensor4D, sf as tf.Tensor4D];
      const convGradients = gradients === 'native' ? nativeGradients(dz4, xs, f, g) : (g.depthwise ? depthwiseGradients : conv2dGradients)(dz4, xs, f, strides, pads, dilations);
      return [...convGradients, () => tf.reshape(channelSums(dz4), bias.shape)];
    },
  ) as tf.Tensor4D;
  if (activation.name === 'linear') return y;
  const slopeBelowZero = activation.name === 'relu' ? 0 : activation.alpha;
  return withLazyGradients(
    [y],
    (save) => {
      save([y]);
      return tf.reshape(y, y.shape);
    },
    (dy, [sy]) => [() => activationSlopeGrad(dy, sy!, slopeBelowZero)],
  ) as tf.Tensor4D;
}

/** Output spatial size of a convolution with explicit pads (exported for shape checks). */
export const convOutSize = outSize;
