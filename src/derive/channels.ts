/**
 * Which convolution output channels can be pruned, and what pruning them touches.
 *
 * Channels are followed from the convolution that makes them (a "unit") through ops that act on
 * each channel separately (bias adds, activations, padding, pooling, resizing, transposes) and
 * through channel concatenations, to the convolutions that read them. A unit is prunable when
 * every path ends as the input channels of a plain Conv2D: then removing channel j means removing
 * output j of the producer, input j of each reader and entry j of any per-channel constant on the
 * way, and the network stays a valid graph. A path into anything else (an Add of two tensors, a
 * reshape, a graph output, a depthwise conv) makes the unit unprunable: that keeps the residual
 * sums of a neck and the head's output layout intact without special cases.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseTensorRef, type TfGraphTopology, type TfNodeDef } from '../graph/model-json';
import type { GraphParts } from '../graph/surgery';

/** Where one channel of a tensor comes from: channel `channel` of unit `unit`, or nowhere prunable. */
type Source = { unit: string; channel: number } | null;

interface Provenance {
  /** The tensor's channel axis. */
  axis: number;
  sources: Source[];
}

export interface ChannelUnit {
  /** The Conv2D node whose output channels these are. */
  producer: string;
  channels: number;
  /** Conv2D nodes that read these channels (as some of their input channels). */
  consumers: string[];
}

export interface ChannelAnalysis {
  units: ChannelUnit[];
  /** Units that cannot be pruned, with the first reason found. */
  blocked: Map<string, string>;
  /** Provenance of every node output that carries unit channels (internal to pruning). */
  provenance: Map<string, Provenance>;
  /** Per-channel constants: const name → [node whose output it is aligned with, the const's channel axis]. */
  channelConsts: Map<string, { alignedWith: string; axis: number }>;
}

const CHANNELWISE_UNARY = new Set(['LeakyRelu', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Identity', 'Softplus', 'Swish', 'Mish', 'Abs', 'Neg']);
/** NHWC spatial ops: the channel axis must be the last one. */
const SPATIAL_NHWC = new Set(['MaxPool', 'AvgPool', 'ResizeBilinear', 'ResizeNearestNeighbor']);
const PADS = new Set(['Pad', 'PadV2', 'MirrorPad']);
const BINARY_WITH_CONST = new Set(['Add', 'AddV2', 'BiasAdd', 'Sub', 'Mul']);

const dataInputs = (n: TfNodeDef) => (n.input ?? []).filter((i) => !i.startsWith('^'));

/**
 * Follows channels through the graph. `shapes` are node output shapes (TrainableGraph.nodeShapes);
 * `outputs` are the graph outputs (their channels must stay); `keepWhole` lists other nodes whose
 * channels must not change.
 */
export function analyzeChannels(parts: GraphParts, shapes: Map<string, number[][]>, outputs: readonly string[], keepWhole: readonly string[] = []): ChannelAnalysis {
  const { topology, weights } = parts;
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const provenance = new Map<string, Provenance>();
  const blocked = new Map<string, string>();
  const consumers = new Map<string, Set<string>>();
  const channelConsts = new Map<string, { alignedWith: string; axis: number }>();
  const block = (p: Provenance | undefined, reason: string) => {
    for (const s of p?.sources ?? []) if (s && !blocked.has(s.unit)) blocked.set(s.unit, reason);
  };
  const constValues = (name: string): number[] | undefined => {
    const t = weights[name];
    return t && byName.get(name)?.op === 'Const' ? Array.from(t.dataSync()) : undefined;
  };
  const shapeOf = (name: string) => shapes.get(name)?.[0];

  for (const node of topologicalNodes(topology)) {
    if (node.op === 'Const' || node.op === 'Placeholder') continue;
    const ins = dataInputs(node).map(parseTensorRef);
    const provs = ins.map((r) => (r.index === 0 ? provenance.get(r.node) : undefined));
    // Outputs other than 0 of a multi-output node are never followed: anything reading them blocks.
    ins.forEach((r, i) => {
      if (r.index !== 0) block(provenance.get(r.node), `${node.name} reads output ${r.index} of ${r.node}`);
      void i;
    });
    const carrying = provs.some((p) => p);
    const op = node.op;

    if (op === 'Conv2D') {
      const p = provs[0];
      if (p) {
        const rank = shapeOf(node.name)?.length ?? 4;
        const format = dataFormat(node);
        if (format !== 'NHWC' || p.axis !== rank - 1) block(p, `${node.name} reads the channels on another axis`);
        else for (const s of p.sources) if (s) (consumers.get(s.unit) ?? consumers.set(s.unit, new Set()).get(s.unit)!).add(node.name);
      }
      if (provs[1]) block(provs[1], `${node.name} uses them as a filter`);
      const out = shapeOf(node.name);
      if (out && dataFormat(node) === 'NHWC') {
        provenance.set(node.name, { axis: 3, sources: Array.from({ length: out[3]! }, (_, c) => ({ unit: node.name, channel: c })) });
      }
      continue;
    }
    if (!carrying) continue;
    const p0 = provs[0];
    if (CHANNELWISE_UNARY.has(op) && p0 && provs.length === 1) {
      provenance.set(node.name, p0);
    } else if (SPATIAL_NHWC.has(op) && p0 && provs.slice(1).every((p) => !p)) {
      const rank = shapeOf(node.name)?.length ?? 4;
      if (p0.axis !== rank - 1 || dataFormat(node) !== 'NHWC') block(p0, `${node.name} works on another layout`);
      else provenance.set(node.name, p0);
    } else if (PADS.has(op) && p0 && provs.slice(1).every((p) => !p)) {
      const pads = constValues(parseTensorRef(dataInputs(node)[1]!).node);
      if (!pads || pads[2 * p0.axis] !== 0 || pads[2 * p0.axis + 1] !== 0) block(p0, `${node.name} pads the channel axis`);
      else provenance.set(node.name, p0);
    } else if (op === 'Transpose' && p0 && !provs[1]) {
      const perm = constValues(parseTensorRef(dataInputs(node)[1]!).node);
      if (!perm) block(p0, `${node.name} has a computed permutation`);
      else provenance.set(node.name, { axis: perm.indexOf(p0.axis), sources: p0.sources });
    } else if (BINARY_WITH_CONST.has(op) && provs.filter((p) => p).length === 1 && ins.length === 2) {
      const at = provs[0] ? 0 : 1;
      const p = provs[at]!;
      const other = ins[1 - at]!.node;
      const t = weights[other];
      if (byName.get(other)?.op !== 'Const' || !t) {
        block(p, `${node.name} combines them with a computed tensor`);
        continue;
      }
      const outShape = shapeOf(node.name);
      const rank = outShape?.length ?? 4;
      // Align the constant's axes to the output's from the right (broadcasting).
      const constAxis = p.axis - (rank - t.rank);
      if (op === 'BiasAdd' || (t.rank > 0 && constAxis >= 0 && t.shape[constAxis] === p.sources.length && t.size === p.sources.length)) {
        channelConsts.set(other, { alignedWith: node.name, axis: op === 'BiasAdd' ? 0 : constAxis });
        provenance.set(node.name, p);
      } else if (t.size === 1) {
        provenance.set(node.name, p);
      } else {
        block(p, `${node.name} combines them with a constant that is not per channel`);
      }
    } else if (op === 'ConcatV2') {
      const axisValue = constValues(parseTensorRef(dataInputs(node).at(-1)!).node)?.[0];
      const tensors = ins.slice(0, -1);
      const rank = shapeOf(node.name)?.length ?? 4;
      const axis = axisValue === undefined ? -1 : axisValue < 0 ? axisValue + rank : axisValue;
      const carried = provs.slice(0, -1);
      if (carried.some((p) => p && p.axis !== axis)) {
        for (const p of carried) block(p, `${node.name} concatenates along another axis`);
        continue;
      }
      const sources: Source[] = [];
      tensors.forEach((r, i) => {
        const p = carried[i];
        if (p) sources.push(...p.sources);
        else sources.push(...Array.from({ length: shapeOf(r.node)?.[axis] ?? 0 }, () => null));
      });
      provenance.set(node.name, { axis, sources });
    } else {
      for (const p of provs) block(p, `${node.name} (${op}) needs all of them`);
    }
  }
  for (const name of [...outputs, ...keepWhole]) block(provenance.get(parseTensorRef(name).node), `${name} must keep its channels`);

  const units: ChannelUnit[] = [];
  for (const node of topologicalNodes(topology)) {
    if (node.op !== 'Conv2D' || blocked.has(node.name)) continue;
    const readers = consumers.get(node.name);
    if (!readers || readers.size === 0) continue;
    units.push({ producer: node.name, channels: shapeOf(node.name)?.[3] ?? 0, consumers: [...readers] });
  }
  return { units, blocked, provenance, channelConsts };
}

function dataFormat(node: TfNodeDef): string {
  const s = node.attr?.data_format?.s;
  return s ? atob(s) : 'NHWC';
}

function topologicalNodes(topology: TfGraphTopology): TfNodeDef[] {
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const done = new Set<string>();
  const order: TfNodeDef[] = [];
  for (const start of topology.node) {
    if (done.has(start.name)) continue;
    const stack: [TfNodeDef, boolean][] = [[start, false]];
    while (stack.length) {
      const [n, expanded] = stack.pop()!;
      if (done.has(n.name)) continue;
      if (expanded) {
        done.add(n.name);
        order.push(n);
        continue;
      }
      stack.push([n, true]);
      for (const i of n.input ?? []) {
        const dep = byName.get(parseTensorRef(i.replace(/^\^/, '')).node);
        if (dep && !done.has(dep.name)) stack.push([dep, false]);
      }
    }
  }
  return order;
}

/** Kept positions of a tensor's channels, given the kept channels of each unit. */
function keptPositions(p: Provenance, keep: Map<string, number[]>): number[] {
  const sets = new Map([...keep].map(([u, k]) => [u, new Set(k)]));
  const out: number[] = [];
  p.sources.forEach((s, i) => {
    if (!s || !sets.has(s.unit) || sets.get(s.unit)!.has(s.channel)) out.push(i);
  });
  return out;
}

/**
 * For each of `nodes` whose channels pruning changes: the channels the pruned graph keeps, as
 * positions in the unpruned tensor (ascending). A derived student's tensor at such a node equals
 * the teacher's at these channels before any refit, which is what lets training compare them
 * without an adapter. Nodes left whole are absent.
 */
export function keptChannelsAt(analysis: ChannelAnalysis, keep: Map<string, number[]>, nodes: readonly string[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const node of nodes) {
    const p = analysis.provenance.get(node);
    if (!p) continue;
    const kept = keptPositions(p, keep);
    if (kept.length < p.sources.length) out[node] = kept;
  }
  return out;
}

/**
 * Checks a channel plan (producer conv → the channels it keeps) against a graph's units and
 * returns the units it prunes (those keeping every channel left out). `where` names the graph in
 * the messages; `ifNarrower` is what to do when the graph is narrower than the plan.
 */
export function checkPlan(units: readonly ChannelUnit[], plan: ReadonlyMap<string, readonly number[]>, say: { where?: string; ifNarrower?: string } = {}): Map<string, number[]> {
  const where = say.where ?? 'this graph';
  const keep = new Map<string, number[]>();
  for (const [producer, channels] of plan) {
    const unit = units.find((u) => u.producer === producer);
    if (!unit) throw new Error(`The channel plan names "${producer}", which is not a prunable convolution of ${where}.`);
    if (channels.length === 0 || channels.some((c, j) => !Number.isInteger(c) || c < 0 || (j > 0 && c <= channels[j - 1]!))) {
      throw new Error(`The channel plan for "${producer}" must list between 1 and ${unit.channels} distinct channel indices in ascending order.`);
    }
    if (channels.at(-1)! >= unit.channels) {
      throw new Error(`The channel plan keeps channel ${channels.at(-1)} of "${producer}", which has ${unit.channels}: the plan is for a wider graph.${say.ifNarrower ? ` ${say.ifNarrower}` : ''}`);
    }
    if (channels.length < unit.channels) keep.set(producer, [...channels]);
  }
  return keep;
}

/**
 * The weights that make the pruned channels' values, and which of their entries stay: each
 * pruned unit's producer filter (output axis) and every per-channel constant on the way (a bias).
 * With these entries at zero, a graph whose channel-wise ops map 0 to 0 (LeakyRelu, Relu, a
 * bias add) outputs zeros in the pruned channels, so cutting them changes nothing downstream.
 */
export function producingSlices(parts: GraphParts, analysis: ChannelAnalysis, keep: Map<string, number[]>): { weight: string; axis: number; keep: number[]; size: number }[] {
  const byName = new Map(parts.topology.node.map((n) => [n.name, n]));
  const slices: { weight: string; axis: number; keep: number[]; size: number }[] = [];
  for (const [unit, channels] of keep) {
    const filter = parseTensorRef(dataInputs(byName.get(unit)!)[1]!).node;
    slices.push({ weight: filter, axis: 3, keep: channels, size: parts.weights[filter]!.shape[3]! });
  }
  for (const [name, { alignedWith, axis }] of analysis.channelConsts) {
    const p = analysis.provenance.get(alignedWith);
    if (!p) continue;
    const positions = keptPositions(p, keep);
    if (positions.length < p.sources.length) slices.push({ weight: name, axis, keep: positions, size: p.sources.length });
  }
  return slices;
}

/**
 * Prunes units: `keep` maps a unit's producer to the channels it keeps (ascending). Slices the
 * producer's filter outputs, each reader's filter inputs and every per-channel constant on the
 * way. The topology is unchanged (shapes follow from the weights); returns new parts whose
 * untouched weights are shared with `parts`.
 */
export function pruneChannels(parts: GraphParts, analysis: ChannelAnalysis, keep: Map<string, number[]>): GraphParts {
  const byName = new Map(parts.topology.node.map((n) => [n.name, n]));
  const weights: tf.NamedTensorMap = { ...parts.weights };
  const units = new Map(analysis.units.map((u) => [u.producer, u]));
  checkPlan(analysis.units, keep);
  // Tensors made here replace each other when one weight is sliced twice (a reader that is also a producer).
  const gather = (name: string, axis: number, positions: number[]) => {
    const t = weights[name]!;
    if (positions.length === t.shape[axis]) return;
    weights[name] = tf.tidy(() => tf.gather(t, tf.tensor1d(positions, 'int32'), axis));
    if (t !== parts.weights[name]) t.dispose();
  };
  const filterOf = (conv: string) => {
    const f = parseTensorRef(dataInputs(byName.get(conv)!)[1]!).node;
    if (byName.get(f)?.op !== 'Const' || !weights[f]) throw new Error(`${conv}: its filter is not a constant.`);
    return f;
  };
  for (const [unit, channels] of keep) gather(filterOf(unit), 3, channels);
  // Readers: slice filter inputs by the kept positions of what they read.
  const readers = new Set([...keep.keys()].flatMap((u) => units.get(u)!.consumers));
  for (const reader of readers) {
    const p = analysis.provenance.get(parseTensorRef(dataInputs(byName.get(reader)!)[0]!).node);
    if (p) gather(filterOf(reader), 2, keptPositions(p, keep));
  }
  for (const [name, { alignedWith, axis }] of analysis.channelConsts) {
    const p = analysis.provenance.get(alignedWith);
    if (!p) continue;
    gather(name, axis, keptPositions(p, keep));
  }
  return { topology: parts.topology, weights, signature: parts.signature };
}
