/**
 * Least-squares refit of convolutions (He et al., ICCV 2017; ThiNet, ICCV 2017): after a student
 * is cut from a reference network, each listed convolution gets the filter and bias that best
 * reproduce the reference's pre-activation output from the student's own input, on calibration
 * images. Convolutions are refit in graph order, so each one sees the activations its already
 * refit predecessors produce and the errors do not pile up.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseTensorRef, type TfGraphTopology, type TfNodeDef } from '../graph/model-json';
import type { TrainableGraph } from '../graph/executor';
import { createRng } from '../data/shuffle';
import { MomentAccumulator, solveRidge } from './least-squares';

export interface RefitTarget {
  /** The Conv2D node (same name in student and reference). */
  conv: string;
  /** Its filter constant (a variable of the student). */
  filter: string;
  /** Its per-channel bias constant, when a bias add follows the conv. */
  bias?: string;
  /** The node whose output is fitted: the bias add when there is one, else the conv. */
  target: string;
  /** Reference output channels the student keeps (all when absent). */
  outputChannels?: number[];
  /**
   * Where the reference has no node of the target's name (a conv that replaced a block): the
   * reference node to fit, its layout, and the LeakyReLU slope to undo (its output is post-activation).
   */
  reference?: { node: string; layout: 'NCHW' | 'NHWC'; inverseLeakyRelu?: number };
  /**
   * For a head output conv whose first `classChannels` outputs are class logits: also fit every
   * position where the reference scores an object (sigmoid of its top class logit above
   * `threshold`), beside the uniform sample. Objects are about 1% of a detector's positions, so a
   * uniform sample barely weighs them, and the fit would serve the background. Each such position
   * enters the fit `repeat` times (a weighted least-squares fit).
   */
  objectRows?: { classChannels: number; threshold: number; repeat: number };
}

export interface RefitOptions {
  /** Sampled output positions per image and conv. */
  rowsPerImage?: number;
  /** Ridge, relative to the mean input variance. */
  ridge?: number;
  /**
   * What the ridge pulls the filter towards: zero, or the filter the student starts from (the
   * teacher's, at the channels kept), so that directions the calibration photos do not excite keep
   * the teacher's weights.
   */
  ridgeToward?: 'zero' | 'teacher';
  seed?: number;
  onProgress?: (done: number, total: number, conv: string) => void;
  signal?: AbortSignal;
}

export interface RefitReport {
  conv: string;
  unknowns: number;
  rows: number;
  /** Mean squared error against the reference before and after the refit, over the sampled rows, relative to the target's variance. */
  errorBefore: number;
  errorAfter: number;
  /** Time spent: running the student and summing moments, and solving on the host. */
  seconds: { moments: number; solve: number };
}

/** The pipeline's seeded generator (mulberry32), so the sampled rows are the same on every run. */
export const seededRandom = createRng;

/** `count` distinct indices in [0, n), ascending, from the generator (all of them when count >= n). */
export function sampleIndices(n: number, count: number, random: () => number): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(random() * n));
  return [...picked].sort((a, b) => a - b);
}

interface ConvGeometry {
  kh: number;
  kw: number;
  strides: [number, number];
  pads: [number, number, number, number];
}

/** im2col rows: x [N,H,W,C] (NHWC) → [N·Ho·Wo, kh·kw·C], columns ordered as an HWIO filter reshaped to [kh·kw·C, O]. */
export function patches(x: tf.Tensor4D, g: ConvGeometry, outHeight: number, outWidth: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [t, b, l, r] = g.pads;
    const padded = t || b || l || r ? tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]) : x;
    const [n, , , c] = padded.shape;
    const [sh, sw] = g.strides;
    const slices: tf.Tensor4D[] = [];
    for (let dy = 0; dy < g.kh; dy++) {
      for (let dx = 0; dx < g.kw; dx++) {
        slices.push(tf.stridedSlice(padded, [0, dy, dx, 0], [n, dy + sh * (outHeight - 1) + 1, dx + sw * (outWidth - 1) + 1, c], [1, sh, sw, 1]) as tf.Tensor4D);
      }
    }
    const cols = slices.length === 1 ? slices[0]! : tf.concat(slices, 3);
    return cols.reshape([n * outHeight * outWidth, g.kh * g.kw * c]);
  });
}

function geometry(node: TfNodeDef, inputShape: readonly number[], filterShape: readonly number[]): ConvGeometry {
  const ints = (key: string) => (node.attr?.[key]?.list?.i ?? []).map(Number);
  const strides = ints('strides');
  if (ints('dilations').some((d) => d !== 1)) throw new Error(`${node.name}: dilated convolutions are not refit.`);
  const padding = node.attr?.padding?.s ? atob(node.attr.padding.s) : 'VALID';
  const [kh, kw] = filterShape as [number, number];
  const s: [number, number] = [strides[1] ?? 1, strides[2] ?? 1];
  let pads: [number, number, number, number] = [0, 0, 0, 0];
  if (padding === 'SAME') {
    const same = (size: number, k: number, st: number): [number, number] => {
      const total = Math.max((Math.ceil(size / st) - 1) * st + k - size, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    };
    const [t, b] = same(inputShape[1]!, kh, s[0]);
    const [l, r] = same(inputShape[2]!, kw, s[1]);
    pads = [t, b, l, r];
  } else if (padding === 'EXPLICIT') {
    const p = ints('explicit_paddings');
    pads = [p[2] ?? 0, p[3] ?? 0, p[4] ?? 0, p[5] ?? 0];
  }
  return { kh, kw, strides: s, pads };
}

const dataInputs = (n: TfNodeDef) => (n.input ?? []).filter((i) => !i.startsWith('^')).map((i) => parseTensorRef(i).node);

/** Node names in an order where every node follows its inputs. */
export function topologicalOrder(topology: TfGraphTopology): string[] {
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const done = new Set<string>();
  const order: string[] = [];
  for (const start of topology.node) {
    const stack: [string, boolean][] = [[start.name, false]];
    while (stack.length) {
      const [n, expanded] = stack.pop()!;
      if (done.has(n)) continue;
      if (expanded) {
        done.add(n);
        order.push(n);
        continue;
      }
      stack.push([n, true]);
      for (const d of dataInputs(byName.get(n)!)) if (!done.has(d) && byName.has(d)) stack.push([d, false]);
    }
  }
  return order;
}

/**
 * The frontier after a node: every tensor computed up to it (graph inputs and constants aside)
 * that a later node still reads. Feeding a frontier instead of the image skips the network
 * before it exactly, so refitting layer after layer costs about one forward in all.
 */
export function frontierAfter(topology: TfGraphTopology, order: readonly string[], node: string): string[] {
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const live = order.filter((n) => !['Const', 'Placeholder', 'PlaceholderWithDefault'].includes(byName.get(n)!.op));
  const position = new Map(live.map((n, i) => [n, i]));
  const at = position.get(node);
  if (at === undefined) throw new Error(`No node "${node}" to cut the graph at.`);
  const lastUse = new Map<string, number>();
  for (const n of live) for (const d of dataInputs(byName.get(n)!)) if (position.has(d)) lastUse.set(d, Math.max(lastUse.get(d) ?? -1, position.get(n)!));
  return live.filter((n, i) => i <= at && (lastUse.get(n) ?? -1) > at);
}

interface PreparedTarget extends RefitTarget {
  input: string;
  position: number;
  /** Sampled rows per batch (flat indices into N·Ho·Wo). */
  rows: number[][];
  /** The reference's values at those rows (and kept channels), per batch. */
  y: Float32Array[];
  outChannels: number;
}

/**
 * Per image of an NHWC output, the positions (row-major within the image) whose top logit among
 * the first `classChannels` channels has a sigmoid above `threshold`.
 */
export async function objectPositions(y: tf.Tensor, classChannels: number, threshold: number): Promise<number[][]> {
  const [n, h, w] = y.shape as number[];
  const logit = Math.log(threshold / (1 - threshold));
  const top = tf.tidy(() => tf.max(tf.slice(y, [0, 0, 0, 0], [-1, -1, -1, classChannels]), 3));
  const values = (await top.data()) as Float32Array;
  top.dispose();
  const per = h! * w!;
  return Array.from({ length: n! }, (_, img) => {
    const out: number[] = [];
    for (let p = 0; p < per; p++) if (values[img * per + p]! > logit) out.push(p);
    return out;
  });
}

/**
 * Refits `targets` of `student` against `reference` (the same topology with the unpruned
 * weights), on `batches` of preprocessed calibration images that the caller keeps. Student
 * variables are assigned in place. Returns one report per conv, in graph order.
 */
export async function refitConvolutions(
  topology: TfGraphTopology,
  student: TrainableGraph,
  reference: TrainableGraph,
  targets: readonly RefitTarget[],
  batches: readonly tf.Tensor4D[],
  options: RefitOptions = {},
): Promise<RefitReport[]> {
  const { rowsPerImage = 256, ridge = 1e-4, seed = 1 } = options;
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const order = topologicalOrder(topology);
  const position = new Map(order.map((n, i) => [n, i]));
  const prepared: PreparedTarget[] = targets
    .map((t) => ({ ...t, input: dataInputs(byName.get(t.conv)!)[0]!, position: position.get(t.conv)!, rows: [], y: [], outChannels: 0 }))
    .sort((a, b) => a.position - b.position);

  // The reference's targets, sampled once: one reference run per batch.
  const random = seededRandom(seed);
  for (const batch of batches) {
    const outs = reference.execute(batch, prepared.map((t) => t.reference?.node ?? t.target));
    for (const [i, t] of prepared.entries()) {
      const y = t.reference ? referenceTarget(outs[i]!, t.reference) : outs[i]!;
      const [n, oh, ow] = y.shape as number[];
      const rows: number[] = [];
      const objects = t.objectRows ? await objectPositions(y, t.objectRows.classChannels, t.objectRows.threshold) : undefined;
      for (let img = 0; img < n!; img++) {
        const uniform = sampleIndices(oh! * ow!, rowsPerImage, random);
        const extra = (objects?.[img] ?? []).flatMap((p) => Array.from({ length: t.objectRows!.repeat }, () => p));
        for (const p of [...uniform, ...extra]) rows.push(img * oh! * ow! + p);
      }
      t.rows.push(rows);
      const sampled = tf.tidy(() => {
        const r = tf.gather(y.reshape([-1, y.shape.at(-1)!]), tf.tensor1d(rows, 'int32'));
        return t.outputChannels ? tf.gather(r, tf.tensor1d(t.outputChannels, 'int32'), 1) : r;
      });
      t.outChannels = sampled.shape[1]!;
      t.y.push((await sampled.data()) as Float32Array);
      sampled.dispose();
      if (y !== outs[i]) y.dispose();
    }
    tf.dispose(outs);
  }

  // The frontier at each conv's input, cached per batch and advanced from the previous one.
  const inputName = student.inputs[0]!.name;
  let cached: { names: string[]; values: tf.Tensor[][] } | undefined;
  const feedsFor = (b: number): Record<string, tf.Tensor> => {
    const feeds: Record<string, tf.Tensor> = { [inputName]: batches[b]! };
    cached?.names.forEach((n, i) => (feeds[n] = cached!.values[b]![i]!));
    return feeds;
  };
  const advanceCache = (node: string) => {
    const names = frontierAfter(topology, order, node);
    if (cached && names.join() === cached.names.join()) return;
    const values = batches.map((_, b) => student.execute(feedsFor(b), names));
    if (cached) tf.dispose(cached.values.flat());
    cached = { names, values };
  };

  const reports: RefitReport[] = [];
  try {
    for (const [index, target] of prepared.entries()) {
      if (options.signal?.aborted) throw new Error('Stopped.');
      options.onProgress?.(index, prepared.length, target.conv);
      const filterVar = student.variables.get(target.filter);
      if (!filterVar) throw new Error(`${target.conv}: filter "${target.filter}" is not a variable of the student.`);
      const biasVar = target.bias ? student.variables.get(target.bias) : undefined;
      if (target.bias && !biasVar) throw new Error(`${target.conv}: bias "${target.bias}" is not a variable of the student.`);
      const [kh, kw, cin, cout] = filterVar.shape as [number, number, number, number];
      if (cout !== target.outChannels) throw new Error(`${target.conv}: the student has ${cout} outputs, the reference target ${target.outChannels}.`);
      const started = performance.now();
      advanceCache(target.input);
      const acc = new MomentAccumulator(kh * kw * cin, cout);
      // Moments are summed on the backend and read once per conv.
      let sums: tf.Tensor[] | undefined;
      let rowCount = 0;
      for (let b = 0; b < batches.length; b++) {
        const [x, before] = student.execute(feedsFor(b), [target.input, target.target]) as [tf.Tensor4D, tf.Tensor4D];
        const g = geometry(byName.get(target.conv)!, x.shape, filterVar.shape);
        const [, oh, ow] = before.shape;
        const rows = target.rows[b]!;
        rowCount += rows.length;
        const next = tf.tidy(() => {
          const idx = tf.tensor1d(rows, 'int32');
          const y = tf.tensor2d(target.y[b]!, [rows.length, cout]);
          const xs = tf.gather(patches(x, g, oh, ow), idx) as tf.Tensor2D;
          const s = tf.gather(before.reshape([-1, cout]), idx);
          // An explicit transpose, then a plain product: tfjs-wasm's matMul with transposeA is about 8x slower.
          const xsT = tf.transpose(xs);
          const batchMoments = [tf.matMul(xsT, xs), tf.matMul(xsT, y), tf.sum(xs, 0), tf.sum(y, 0), tf.sum(tf.squaredDifference(s, y)), tf.sum(tf.square(y))];
          return sums ? batchMoments.map((m, i) => tf.add(sums![i]!, m)) : batchMoments;
        });
        tf.dispose([...(sums ?? []), x, before]);
        sums = next;
      }
      const [xtx, xty, sx, sy, err, sq] = await Promise.all(sums!.map((t) => t.data()));
      tf.dispose(sums!);
      acc.addProducts(rowCount, xtx!, xty!, sx!, sy!);
      const errorBefore = err![0]!;
      const sumSq = sq![0]!;
      let variance = 0;
      for (let j = 0; j < cout; j++) variance += -(acc.sumY[j]! ** 2) / acc.rows;
      variance += sumSq;
      const summed = performance.now();
      const prior = options.ridgeToward === 'teacher' ? ((await filterVar.data()) as Float32Array) : undefined;
      const fit = solveRidge(acc, { ridge, intercept: !!biasVar, prior });
      const solved = performance.now();
      const filter = tf.tensor4d(Float32Array.from(fit.weights), [kh, kw, cin, cout]);
      filterVar.assign(filter);
      filter.dispose();
      if (biasVar) {
        const bias = tf.tensor(Float32Array.from(fit.bias), biasVar.shape);
        biasVar.assign(bias);
        bias.dispose();
      }
      const errorAfter = await residualOnDevice(acc, fit, sumSq);
      reports.push({ conv: target.conv, unknowns: kh * kw * cin + (biasVar ? 1 : 0), rows: acc.rows, errorBefore: errorBefore / Math.max(variance, 1e-12), errorAfter: errorAfter / Math.max(variance, 1e-12), seconds: { moments: (summed - started) / 1000, solve: (solved - summed) / 1000 } });
    }
  } finally {
    if (cached) tf.dispose(cached.values.flat());
  }
  options.onProgress?.(prepared.length, prepared.length, '');
  return reports;
}

/** Σ‖xW + b − y‖² over the accumulated rows, from the moments alone. */
export function residual(acc: MomentAccumulator, fit: { weights: Float64Array; bias: Float64Array }, sumOfSquaresY: number): number {
  const { inputs: k, outputs: m, rows } = acc;
  const { weights: w, bias: b } = fit;
  let total = sumOfSquaresY;
  // −2 Σ (xW + b)·y = −2 (tr(Wᵀ XᵀY) + b·ΣY)
  let cross = 0;
  for (let i = 0; i < k * m; i++) cross += w[i]! * acc.xty[i]!;
  for (let j = 0; j < m; j++) cross += b[j]! * acc.sumY[j]!;
  total -= 2 * cross;
  // Σ ‖xW + b‖² = tr(Wᵀ XᵀX W) + 2 b·(ΣX W) + rows‖b‖²
  const xtxw = new Float64Array(k * m);
  for (let i = 0; i < k; i++) {
    for (let p = 0; p < k; p++) {
      const a = acc.xtx[i * k + p]!;
      if (a === 0) continue;
      for (let j = 0; j < m; j++) xtxw[i * m + j]! += a * w[p * m + j]!;
    }
  }
  let quad = 0;
  for (let i = 0; i < k * m; i++) quad += w[i]! * xtxw[i]!;
  for (let j = 0; j < m; j++) {
    let sxw = 0;
    for (let i = 0; i < k; i++) sxw += acc.sumX[i]! * w[i * m + j]!;
    quad += 2 * b[j]! * sxw + rows * b[j]! * b[j]!;
  }
  return Math.max(total + quad, 0);
}

/** residual() with the one large product (XᵀX W) on the backend: same value to float32 precision, far faster for large fits. */
export async function residualOnDevice(acc: MomentAccumulator, fit: { weights: Float64Array; bias: Float64Array }, sumOfSquaresY: number): Promise<number> {
  const { inputs: k, outputs: m, rows } = acc;
  const parts = tf.tidy(() => {
    const w = tf.tensor2d(Float32Array.from(fit.weights), [k, m]);
    const b = tf.tensor1d(Float32Array.from(fit.bias));
    const xtx = tf.tensor2d(Float32Array.from(acc.xtx), [k, k]);
    const xty = tf.tensor2d(Float32Array.from(acc.xty), [k, m]);
    const sx = tf.tensor2d(Float32Array.from(acc.sumX), [1, k]);
    const sy = tf.tensor1d(Float32Array.from(acc.sumY));
    const cross = tf.add(tf.sum(tf.mul(w, xty)), tf.sum(tf.mul(b, sy)));
    const quad = tf.addN([tf.sum(tf.mul(w, tf.matMul(xtx, w))), tf.mul(2, tf.sum(tf.mul(b, tf.matMul(sx, w).reshape([m])))), tf.mul(rows, tf.sum(tf.square(b)))]);
    return tf.stack([cross, quad]);
  });
  const [cross, quad] = await parts.data();
  parts.dispose();
  return Math.max(sumOfSquaresY - 2 * cross! + quad!, 0);
}

/** A reference node's value as the target of a fit: NHWC, and before its LeakyReLU when asked. */
function referenceTarget(y: tf.Tensor, spec: NonNullable<RefitTarget['reference']>): tf.Tensor4D {
  return tf.tidy(() => {
    const nhwc = spec.layout === 'NCHW' ? y.transpose([0, 2, 3, 1]) : y;
    const alpha = spec.inverseLeakyRelu;
    return (alpha === undefined ? nhwc.clone() : tf.where(tf.less(nhwc, 0), tf.div(nhwc, alpha), nhwc)) as tf.Tensor4D;
  });
}
