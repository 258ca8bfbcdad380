/** Ops that move, cut, join or pad tensors without arithmetic. Shape-like inputs are read on the host. */
import * as tf from '@tensorflow/tfjs-core';
import { attr } from '../model-json';
import { gatherNd } from './gather';
import { stridedSlice } from './strided-slice';
import { concat } from './side-by-side';
import { input, op, type OpContext, type OpDef } from './types';

const axisOf = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function padding(ctx: OpContext, rank: number): [number, number][] {
  const p = ctx.values(1);
  if (p.length !== rank * 2) throw new Error(`${ctx.node.op} node "${ctx.node.name}": paddings have ${p.length} values for a rank-${rank} tensor.`);
  return Array.from({ length: rank }, (_, i) => [p[2 * i]!, p[2 * i + 1]!]);
}

/**
 * DepthToSpace (DCR order, TensorFlow's only one) by reshape and transpose, which have
 * gradients (tf.depthToSpace has none): out[n, h·b + i, w·b + j, c] = in[n, h, w, (i·b + j)·C' + c].
 */
function depthToSpace(inputs: tf.Tensor[], ctx: OpContext): tf.Tensor {
  const nchw = attr.string(ctx.node, 'data_format', 'NHWC') === 'NCHW';
  const b = attr.int(ctx.node, 'block_size', 2);
  const x0 = input(inputs, 0, ctx.node);
  const x = nchw ? x0.transpose([0, 2, 3, 1]) : x0;
  const [n, h, w, c] = x.shape as [number, number, number, number];
  if (c % (b * b) !== 0) throw new Error(`DepthToSpace node "${ctx.node.name}": ${c} channels are not a multiple of block_size² = ${b * b}.`);
  const y = x.reshape([n, h, w, b, b, c / (b * b)]).transpose([0, 1, 3, 2, 4, 5]).reshape([n, h * b, w * b, c / (b * b)]);
  return nchw ? y.transpose([0, 3, 1, 2]) : y;
}

export const shapeOps: Record<string, OpDef> = {
  Size: op((inputs, ctx) => tf.scalar(input(inputs, 0, ctx.node).size, 'int32'), { host: [0] }),
  BroadcastTo: op((inputs, ctx) => tf.broadcastTo(input(inputs, 0, ctx.node), ctx.values(1)), { host: [1] }),
  DepthToSpace: op(depthToSpace),
  SpaceToBatchND: op((inputs, ctx) => {
    const block = ctx.values(1);
    const p = ctx.values(2);
    return tf.spaceToBatchND(input(inputs, 0, ctx.node), block, block.map((_, i) => [p[2 * i]!, p[2 * i + 1]!]));
  }, { host: [1, 2] }),
  BatchToSpaceND: op((inputs, ctx) => {
    const block = ctx.values(1);
    const c = ctx.values(2);
    return tf.batchToSpaceND(input(inputs, 0, ctx.node), block, block.map((_, i) => [c[2 * i]!, c[2 * i + 1]!]));
  }, { host: [1, 2] }),
  // Indices are int32: the gradient goes to the params only.
  GatherNd: op((inputs, ctx) => gatherNd(input(inputs, 0, ctx.node), input(inputs, 1, ctx.node)), { host: [1] }),
  Reshape: op((inputs, ctx) => tf.reshape(input(inputs, 0, ctx.node), ctx.values(1)), { host: [1] }),
  Squeeze: op((inputs, ctx) => {
    const dims = attr.ints(ctx.node, 'squeeze_dims', attr.ints(ctx.node, 'axis'));
    return tf.squeeze(input(inputs, 0, ctx.node), dims.length ? dims : undefined);
  }),
  ExpandDims: op((inputs, ctx) => tf.expandDims(input(inputs, 0, ctx.node), ctx.values(1)[0] ?? 0), { host: [1] }),
  Transpose: op((inputs, ctx) => tf.transpose(input(inputs, 0, ctx.node), ctx.values(1)), { host: [1] }),
  ConcatV2: op((inputs, ctx) => {
    const n = attr.int(ctx.node, 'N', inputs.length - 1);
    const parts = inputs.slice(0, n);
    return concat(parts, axisOf(ctx.values(n)[0] ?? 0, parts[0]!.rank));
  }, { host: [-1] }),
  Concat: op((inputs, ctx) => {
    const parts = inputs.slice(1);
    return tf.concat(parts, axisOf(ctx.values(0)[0] ?? 0, parts[0]!.rank));
  }, { host: [0] }),
  Pack: op((inputs, ctx) => tf.stack(inputs, attr.int(ctx.node, 'axis', 0))),
  Unpack: op((inputs, ctx) => tf.unstack(input(inputs, 0, ctx.node), attr.int(ctx.node, 'axis', 0))),
  SplitV: op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    return tf.split(x, ctx.values(1), axisOf(ctx.values(2)[0] ?? 0, x.rank));
  }, { host: [1, 2] }),
  Split: op((inputs, ctx) => {
    const x = input(inputs, 1, ctx.node);
    return tf.split(x, attr.int(ctx.node, 'num_split', 1), axisOf(ctx.values(0)[0] ?? 0, x.rank));
  }, { host: [0] }),
  Slice: op((inputs, ctx) => tf.slice(input(inputs, 0, ctx.node), ctx.values(1), ctx.values(2)), { host: [1, 2] }),
  // Composed of slice/reverse/pad/reshape: tfjs has no StridedSlice gradient (see strided-slice.ts).
  StridedSlice: op((inputs, ctx) =>
    stridedSlice(input(inputs, 0, ctx.node), {
      begin: ctx.values(1),
      end: ctx.values(2),
      strides: ctx.values(3),
      beginMask: attr.int(ctx.node, 'begin_mask'),
      endMask: attr.int(ctx.node, 'end_mask'),
      ellipsisMask: attr.int(ctx.node, 'ellipsis_mask'),
      newAxisMask: attr.int(ctx.node, 'new_axis_mask'),
      shrinkAxisMask: attr.int(ctx.node, 'shrink_axis_mask'),
    }), { host: [1, 2, 3] },
  ),
  Pad: op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    return tf.pad(x, padding(ctx, x.rank));
  }, { host: [1] }),
  PadV2: op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    return tf.pad(x, padding(ctx, x.rank), ctx.values(2)[0] ?? 0);
  }, { host: [1, 2] }),
  MirrorPad: op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    const mode = attr.string(ctx.node, 'mode', 'REFLECT').toLowerCase() as 'reflect' | 'symmetric';
    return tf.mirrorPad(x, padding(ctx, x.rank), mode);
  }, { host: [1] }),
  Tile: op((inputs, ctx) => tf.tile(input(inputs, 0, ctx.node), ctx.values(1)), { host: [1] }),
  ReverseV2: op((inputs, ctx) => tf.reverse(input(inputs, 0, ctx.node), ctx.values(1)), { host: [1] }),
  Shape: op((inputs, ctx) => tf.tensor1d(input(inputs, 0, ctx.node).shape, 'int32'), { host: [0] }),
  GatherV2: op((inputs, ctx) => {
    const x = input(inputs, 0, ctx.node);
    return tf.gather(x, input(inputs, 1, ctx.node), axisOf(ctx.values(2)[0] ?? 0, x.rank), attr.int(ctx.node, 'batch_dims', 0));
  }, { host: [2], gradientKernel: 'UnsortedSegmentSum' }),
  Fill: op((inputs, ctx) => tf.fill(ctx.values(0), ctx.values(1)[0] ?? 0, input(inputs, 1, ctx.node).dtype), { host: [0, 1] }),
  ZerosLike: op((inputs, ctx) => tf.zerosLike(input(inputs, 0, ctx.node))),
  OnesLike: op((inputs, ctx) => tf.onesLike(input(inputs, 0, ctx.node))),
  Range: op((inputs, ctx) => tf.range(ctx.values(0)[0]!, ctx.values(1)[0]!, ctx.values(2)[0]!, input(inputs, 0, ctx.node).dtype as 'float32' | 'int32'), { host: [0, 1, 2] }),
  SparseToDense: op(
    (inputs, ctx) =>
      tf.sparseToDense(input(inputs, 0, ctx.node), input(inputs, 2, ctx.node), ctx.values(1), input(inputs, 3, ctx.node) as tf.Scalar),
    { host: [1], hasGradient: false },
  ),
  TopKV2: op((inputs, ctx) => {
    const { values, indices } = tf.topk(input(inputs, 0, ctx.node), ctx.values(1)[0] ?? 1, attr.bool(ctx.node, 'sorted', true));
    return [values, indices];
  }, { host: [1], hasGradient: false }),
};
