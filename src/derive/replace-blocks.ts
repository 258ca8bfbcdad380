/**
 * Replacing a block by a fitted 1x1 convolution: every reader of the block's output reads
 * LeakyReLU(W·x + b) of the block's input instead, with W and b later fitted by least squares
 * to the teacher's block output (through the inverse of the LeakyReLU, so the fit is linear).
 * A NanoDet CSP block costs about 6.75·C² multiply-adds per position; the 1x1 conv C².
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseTensorRef, tensorRefKey, type TfNodeDef } from '../graph/model-json';
import type { GraphParts } from '../graph/surgery';

export interface ReplacedBlock {
  /** The block's input and output nodes in the source graph. */
  input: string;
  output: string;
  /** The new nodes: the conv to fit, its bias constant, its filter constant and the node readers now read. */
  conv: string;
  filter: string;
  bias: string;
  biasAdd: string;
  replacement: string;
  /** Negative slope of the LeakyReLU put after the fit. */
  alpha: number;
}

const b64 = (s: string) => btoa(s);

/**
 * `blocks`: single-entry single-exit blocks whose input and output have the same shape, with
 * `channels` channels on axis 1 (NCHW, as NanoDet's graph keeps its activations). The removed
 * nodes are pruned with everything nothing reads any more.
 */
export function replaceBlocksWithConv(parts: GraphParts, blocks: readonly { input: string; output: string; channels: number }[], outputs: readonly string[], alpha = 0.1): { parts: GraphParts; replaced: ReplacedBlock[] } {
  const nodes: TfNodeDef[] = [...parts.topology.node];
  const weights: tf.NamedTensorMap = { ...parts.weights };
  const replaced: ReplacedBlock[] = [];
  const redirect = new Map<string, string>();
  for (const block of blocks) {
    const base = `${block.output}/fitted_1x1`;
    const c = block.channels;
    const r: ReplacedBlock = {
      input: block.input,
      output: block.output,
      conv: `${base}/conv`,
      filter: `${base}/filter`,
      bias: `${base}/bias`,
      biasAdd: `${base}/add`,
      replacement: `${base}/act`,
      alpha,
    };
    // Identity to start with: the same as removing the block, until the fit.
    weights[r.filter] = tf.tidy(() => tf.eye(c).reshape([1, 1, c, c]));
    weights[r.bias] = tf.zeros([c]);
    weights[`${base}/to_nhwc`] = tf.tensor1d([0, 2, 3, 1], 'int32');
    weights[`${base}/to_nchw`] = tf.tensor1d([0, 3, 1, 2], 'int32');
    nodes.push(
      { name: r.filter, op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
      { name: r.bias, op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
      { name: `${base}/to_nhwc`, op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
      { name: `${base}/to_nchw`, op: 'Const', attr: { dtype: { type: 'DT_INT32' } } },
      { name: `${base}/in`, op: 'Transpose', input: [block.input, `${base}/to_nhwc`], attr: { T: { type: 'DT_FLOAT' }, Tperm: { type: 'DT_INT32' } } },
      {
        name: r.conv,
        op: 'Conv2D',
        input: [`${base}/in`, r.filter],
        attr: { T: { type: 'DT_FLOAT' }, strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('VALID') }, data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } } },
      },
      { name: r.biasAdd, op: 'Add', input: [r.conv, r.bias], attr: { T: { type: 'DT_FLOAT' } } },
      { name: `${base}/out`, op: 'Transpose', input: [r.biasAdd, `${base}/to_nchw`], attr: { T: { type: 'DT_FLOAT' }, Tperm: { type: 'DT_INT32' } } },
      { name: r.replacement, op: 'LeakyRelu', input: [`${base}/out`], attr: { T: { type: 'DT_FLOAT' }, alpha: { f: alpha } } },
    );
    redirect.set(block.output, r.replacement);
    replaced.push(r);
  }
  const own = new Set(replaced.flatMap((r) => [r.replacement, `${r.output}/fitted_1x1/out`, r.biasAdd, r.conv, `${r.output}/fitted_1x1/in`]));
  const rewired = nodes.map((n) =>
    own.has(n.name)
      ? n
      : {
          ...n,
          input: n.input?.map((i) => {
            if (i.startsWith('^')) return i;
            const ref = parseTensorRef(i);
            const to = redirect.get(ref.node);
            return to ? tensorRefKey({ node: to, index: ref.index }) : i;
          }),
        },
  );
  // Keep what the outputs still need.
  const byName = new Map(rewired.map((n) => [n.name, n]));
  const keep = new Set<string>();
  const stack = outputs.map((o) => parseTensorRef(o).node);
  while (stack.length) {
    const name = stack.pop()!;
    if (keep.has(name) || !byName.has(name)) continue;
    keep.add(name);
    for (const i of byName.get(name)!.input ?? []) stack.push(parseTensorRef(i.replace(/^\^/, '')).node);
  }
  const kept: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(weights)) if (keep.has(name)) kept[name] = t;
  return { parts: { topology: { ...parts.topology, node: rewired.filter((n) => keep.has(n.name)) }, weights: kept, signature: parts.signature }, replaced };
}
