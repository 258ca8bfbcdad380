/**
 * Convolution layers spelled as separate nodes, which the executor runs as one fused op.
 *
 * Graphs converted from ONNX (NanoDet-g) write a layer as Conv2D → Add(bias) → Transpose →
 * LeakyRelu: the bias and the activation are each a kernel that reads and writes the whole
 * activation again, and in training the activation's input is kept for its gradient. tf.GraphModel
 * fuses such chains when a graph is converted; this finds them in any graph, so that the layer
 * runs as tfjs's fused convolution (`convBiasActivation` in `ops/conv.ts`). The Transpose between
 * the bias and the activation (NHWC back to the graph's NCHW) commutes with an element-wise
 * activation, so the fused output is held with its permutation, as `layout.ts` holds any
 * transposed value. A zero Pad before the convolution becomes the convolution's own padding.
 */
import { attr, type TensorRef, type TfNodeDef } from './model-json';
import { FUSABLE_ACTIVATION_OPS } from './ops/conv';

export interface ConvChain {
  /**
   * A zero Pad and a Transpose before a VALID convolution (the graph's NCHW input padded, then made
   * NHWC), folded into the convolution's own padding: the padded copy is never written.
   */
  pad?: { node: string; transpose: string; input: TensorRef; perm: number[]; pads: [number, number, number, number] };
  /** The Conv2D or DepthwiseConv2dNative node (NHWC). */
  conv: string;
  /** The convolution's only reader: the Add of a constant bias of one value per channel. */
  add: string;
  bias: TensorRef;
  /** A Transpose between the bias Add and the activation, and its permutation. */
  transpose?: { node: string; perm: number[] };
  /** The activation node, the chain's last, and its op. */
  activation?: { node: string; op: string };
}

interface GraphNode {
  def: TfNodeDef;
  inputs: TensorRef[];
}

export interface ChainLookups {
  /** The shape of a weight (a constant or trainable Const node), undefined for anything else. */
  weightShape(node: string): readonly number[] | undefined;
  /** Host values of a small integer constant (a Transpose's perm), undefined if not one. */
  hostValues(ref: TensorRef): number[] | undefined;
}

/** Every convolution chain in the graph, by its convolution node's name. */
export function planConvChains(nodes: ReadonlyMap<string, GraphNode>, lookups: ChainLookups): Map<string, ConvChain> {
  const readers = new Map<string, { node: string; slot: number }[]>();
  for (const [name, node] of nodes) {
    node.inputs.forEach((r, slot) => {
      const list = readers.get(r.node) ?? [];
      list.push({ node: name, slot });
      readers.set(r.node, list);
    });
  }
  /** The one node that reads `name` (output 0, in input slot `slot`), if exactly one reads it. */
  const onlyReader = (name: string, slot?: number): GraphNode | undefined => {
    const list = readers.get(name) ?? [];
    if (list.length !== 1 || (slot !== undefined && list[0]!.slot !== slot)) return undefined;
    const reader = nodes.get(list[0]!.node)!;
    return reader.inputs[list[0]!.slot]!.index === 0 ? reader : undefined;
  };
  const chains = new Map<string, ConvChain>();
  for (const [name, node] of nodes) {
    const depthwise = node.def.op === 'DepthwiseConv2dNative' || node.def.op === 'DepthwiseConv2d';
    if (node.def.op !== 'Conv2D' && !depthwise) continue;
    if (attr.string(node.def, 'data_format', 'NHWC') !== 'NHWC' || node.inputs.length !== 2) continue;
    const filter = lookups.weightShape(node.inputs[1]!.node);
    if (!filter || filter.length !== 4 || node.inputs[1]!.index !== 0) continue;
    const channels = depthwise ? filter[2]! * filter[3]! : filter[3]!;
    const add = onlyReader(name);
    if (!add || !['Add', 'AddV2', 'BiasAdd'].includes(add.def.op) || add.inputs.length !== 2) continue;
    if (add.def.op === 'BiasAdd' && attr.string(add.def, 'data_format', 'NHWC') !== 'NHWC') continue;
    const bias = add.inputs.find((r) => r.node !== name);
    const biasShape = bias && bias.index === 0 ? lookups.weightShape(bias.node) : undefined;
    const isBias = biasShape !== undefined && biasShape.reduce((a, b) => a * b, 1) === channels && biasShape[biasShape.length - 1] === channels;
    if (!bias || !isBias || add.inputs.every((r) => r.node === name)) continue;
    const chain: ConvChain = { conv: name, add: add.def.name, bias };
    const pad = padBefore(node, onlyReader, nodes, lookups);
    if (pad) chain.pad = pad;
    let next = onlyReader(add.def.name);
    if (next?.def.op === 'Transpose') {
      const perm = lookups.hostValues(next.inputs[1]!);
      const activation = perm ? onlyReader(next.def.name, 0) : undefined;
      // The activations a fused kernel applies are element-wise, so they commute with a transpose.
      if (perm && activation && FUSABLE_ACTIVATION_OPS.has(activation.def.op)) {
        chain.transpose = { node: next.def.name, perm };
        next = activation;
      } else {
        next = undefined;
      }
    }
    if (next && FUSABLE_ACTIVATION_OPS.has(next.def.op) && next.inputs.length === 1) chain.activation = { node: next.def.name, op: next.def.op };
    else delete chain.transpose;
    chains.set(name, chain);
  }
  return chains;
}

/** Pad → Transpose → `conv` (VALID), the Pad's zeros on the spatial axes only: what folds into the convolution. */
function padBefore(conv: GraphNode, onlyReader: (name: string, slot?: number) => GraphNode | undefined, nodes: ReadonlyMap<string, GraphNode>, lookups: ChainLookups): ConvChain['pad'] {
  if (attr.string(conv.def, 'padding', 'VALID') !== 'VALID' || conv.inputs[0]!.index !== 0) return undefined;
  const transpose = nodes.get(conv.inputs[0]!.node);
  if (transpose?.def.op !== 'Transpose' || onlyReader(transpose.def.name, 0) !== conv || transpose.inputs[0]!.index !== 0) return undefined;
  const pad = nodes.get(transpose.inputs[0]!.node);
  if (pad?.def.op !== 'Pad' || onlyReader(pad.def.name, 0) !== transpose) return undefined;
  const perm = lookups.hostValues(transpose.inputs[1]!);
  const paddings = lookups.hostValues(pad.inputs[1]!);
  if (!perm || perm.length !== 4 || !paddings || paddings.length !== 8) return undefined;
  // Axis i of the convolution's input is axis perm[i] of the Pad's.
  const [n, h, w, c] = perm.map((axis) => [paddings[2 * axis]!, paddings[2 * axis + 1]!] as const);
  if (n![0] || n![1] || c![0] || c![1] || [...h!, ...w!].some((p) => p < 0)) return undefined;
  return { node: pad.def.name, transpose: transpose.def.name, input: pad.inputs[0]!, perm, pads: [h![0], h![1], w![0], w![1]] };
}

/**
 * The part of `chain` one run can fuse: up to the bias Add when an intermediate value is asked for
 * by name (a tap) or fed; nothing when the convolution's own output is.
 */
export function chainForRun(chain: ConvChain, isPinned: (node: string) => boolean): ConvChain | undefined {
  if (isPinned(chain.conv)) return undefined;
  const { pad, ...rest } = chain;
  const run: ConvChain = pad && !isPinned(pad.node) && !isPinned(pad.transpose) ? { ...rest, pad } : rest;
  if (isPinned(chain.add) || (chain.transpose && isPinned(chain.transpose.node))) return { ...(run.pad ? { pad: run.pad } : {}), conv: chain.conv, add: chain.add, bias: chain.bias };
  return run;
}

/** The chain's nodes in order, its last the one whose value the fused op gives. */
export function chainNodes(chain: ConvChain): string[] {
  return [...(chain.pad ? [chain.pad.node, chain.pad.transpose] : []), chain.conv, chain.add, ...(chain.transpose ? [chain.transpose.node] : []), ...(chain.activation ? [chain.activation.node] : [])];
}
