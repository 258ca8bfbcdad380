/**
 * Graph surgery on a tfjs graph model, to derive a student from a teacher with the teacher's own
 * weights: (a) remove blocks whose input and output shapes agree (the consumers of the block's
 * output read its input instead, and whatever nothing reads any more is pruned); (b) keep only
 * some output classes of a detection head (slice the class channels of the head's last conv and
 * follow the class count through the ops after it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseTensorRef, tensorRefKey, type TfGraphTopology, type TfNodeDef } from './model-json';

/** A graph model as topology + decoded weights, the form surgery works on. */
export interface GraphParts {
  topology: TfGraphTopology;
  weights: tf.NamedTensorMap;
  signature?: object;
}

export function partsFromArtifacts(artifacts: tf.io.ModelArtifacts): GraphParts {
  return {
    topology: structuredClone(artifacts.modelTopology as TfGraphTopology),
    weights: tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!),
    signature: artifacts.signature ? structuredClone(artifacts.signature) : undefined,
  };
}

/** Back to artifacts (float32 weights; exportGraph chooses the stored precision later). */
export async function artifactsFromParts(parts: GraphParts): Promise<tf.io.ModelArtifacts> {
  const consts = parts.topology.node.filter((n) => n.op === 'Const').map((n) => n.name);
  const ordered: tf.NamedTensorMap = {};
  for (const name of consts) {
    const t = parts.weights[name];
    if (!t) throw new Error(`Const "${name}" has no weight.`);
    ordered[name] = t;
  }
  const { data, specs } = await tf.io.encodeWeights(ordered);
  return { modelTopology: parts.topology, weightSpecs: specs, weightData: data, format: 'graph-model', generatedBy: 'distill-lab surgery', signature: parts.signature };
}

export function disposeParts(parts: GraphParts): void {
  tf.dispose(Object.values(parts.weights));
}

/** A removable block: the subgraph strictly between `input` and `output` (both node names). */
export interface Block {
  input: string;
  output: string;
  /** The nodes removed with the block (output included, input excluded). */
  nodes: string[];
  /** Float weights inside the block (Const nodes only it reads). */
  parameters: number;
  outputOp: string;
}

function consumersOf(topology: TfGraphTopology): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of topology.node) {
    for (const i of n.input ?? []) {
      if (i.startsWith('^')) continue;
      const src = parseTensorRef(i).node;
      out.set(src, [...(out.get(src) ?? []), n.name]);
    }
  }
  return out;
}

/**
 * Single-entry, single-exit subgraphs containing at least one convolution whose exit has the same
 * output shape as its entry: for each node, its nearest same-shape ancestor is tried as the entry.
 * `shapes` are node output shapes from TrainableGraph.nodeShapes().
 */
export function findRemovableBlocks(parts: GraphParts, shapes: Map<string, number[][]>): Block[] {
  const { topology } = parts;
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const consumers = consumersOf(topology);
  const index = new Map(topology.node.map((n, i) => [n.name, i]));
  const isConst = (name: string) => byName.get(name)?.op === 'Const';
  const inputsOf = (n: TfNodeDef) => (n.input ?? []).filter((i) => !i.startsWith('^')).map((i) => parseTensorRef(i).node);
  const same = (a?: number[], b?: number[]) => !!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]);
  const blocks: Block[] = [];
  for (const exit of topology.node) {
    const exitShape = shapes.get(exit.name)?.[0];
    if (!exitShape || exitShape.length !== 4 || exit.op === 'Const') continue;
    // Ancestors of the exit, nearest first (by graph order), stopping at constants.
    const ancestors = new Set<string>();
    const stack = inputsOf(exit);
    while (stack.length) {
      const a = stack.pop()!;
      if (ancestors.has(a) || isConst(a)) continue;
      ancestors.add(a);
      stack.push(...inputsOf(byName.get(a)!));
    }
    const entry = [...ancestors]
      .filter((a) => same(shapes.get(a)?.[0], exitShape))
      .sort((a, b) => index.get(b)! - index.get(a)!)[0];
    if (!entry) continue;
    // The region: nodes on a path from entry to exit.
    const fromEntry = new Set<string>();
    const walk = [entry];
    while (walk.length) {
      const n = walk.pop()!;
      for (const c of consumers.get(n) ?? []) {
        if (!fromEntry.has(c) && (ancestors.has(c) || c === exit.name)) {
          fromEntry.add(c);
          walk.push(c);
        }
      }
    }
    const region = [...fromEntry];
    const inside = new Set(region);
    const closedInputs = region.every((n) => inputsOf(byName.get(n)!).every((i) => inside.has(i) || i === entry || isConst(i)));
    const closedOutputs = region.every((n) => n === exit.name || (consumers.get(n) ?? []).every((c) => inside.has(c)));
    const hasConv = region.some((n) => /Conv2D|Depthwise/.test(byName.get(n)!.op));
    if (!closedInputs || !closedOutputs || !hasConv) continue;
    const ownConsts = new Set(region.flatMap((n) => inputsOf(byName.get(n)!).filter(isConst)));
    const parameters = [...ownConsts]
      .filter((c) => (consumers.get(c) ?? []).every((u) => inside.has(u)))
      .reduce((sum, c) => {
        const t = parts.weights[c];
        return sum + (t && t.dtype === 'float32' && t.rank > 0 ? t.size : 0);
      }, 0);
    blocks.push({ input: entry, output: exit.name, nodes: region, parameters, outputOp: exit.op });
  }
  return blocks;
}

/** Names of the nodes the graph's outputs need; everything else can go. */
function reachableFrom(topology: TfGraphTopology, outputs: string[]): Set<string> {
  const byName = new Map(topology.node.map((n) => [n.name, n]));
  const seen = new Set<string>();
  const stack = [...outputs];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    const node = byName.get(n);
    if (!node) continue;
    seen.add(n);
    for (const i of node.input ?? []) stack.push(parseTensorRef(i.replace(/^\^/, '')).node);
  }
  return seen;
}

/**
 * Removes blocks: every reader of a block's output reads the block's input instead. Blocks may be
 * chained (one's output is the next one's input). `outputs` are the graph outputs to keep alive.
 */
export function removeBlocks(parts: GraphParts, blocks: Pick<Block, 'input' | 'output'>[], outputs: string[]): GraphParts {
  const replace = new Map(blocks.map((b) => [b.output, b.input]));
  const resolve = (name: string) => {
    let n = name;
    const seen = new Set<string>();
    while (replace.has(n) && !seen.has(n)) {
      seen.add(n);
      n = replace.get(n)!;
    }
    return n;
  };
  const topology: TfGraphTopology = {
    ...parts.topology,
    node: parts.topology.node.map((n) => ({
      ...n,
      input: n.input?.map((i) => {
        if (i.startsWith('^')) return i;
        const ref = parseTensorRef(i);
        const to = resolve(ref.node);
        return to === ref.node ? i : tensorRefKey({ node: to, index: ref.index });
      }),
    })),
  };
  const keep = reachableFrom(topology, outputs);
  topology.node = topology.node.filter((n) => keep.has(n.name));
  const weights: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(parts.weights)) {
    if (keep.has(name)) weights[name] = t;
    else t.dispose();
  }
  return { topology, weights, signature: parts.signature };
}

export interface KeepClassesOptions {
  /** Raw head output nodes, one per level: an Add of a conv's output and a bias Const. */
  headOutputs: string[];
  /** Class channels come first in each head output, followed by box channels. */
  numClasses: number;
  /** Indices (into the original classes) to keep, in the new order. */
  keep: number[];
}

/**
 * Keeps only some classes of a dense head: slices the class channels of each level's last conv
 * (filter and bias), then follows the class count through the ops after the head (SplitV sizes,
 * Reshape targets, the signature's output shapes).
 */
export function keepClasses(parts: GraphParts, options: KeepClassesOptions): GraphParts {
  const { numClasses, keep } = options;
  if (keep.length === 0 || keep.some((k) => k < 0 || k >= numClasses)) throw new Error(`Class indices must lie in [0, ${numClasses}).`);
  const byName = new Map(parts.topology.node.map((n) => [n.name, n]));
  const weights = { ...parts.weights };
  const isConst = (name: string) => byName.get(name)?.op === 'Const';
  const sliceLast = (name: string, channels: number[]) => {
    const t = weights[name]!;
    const sliced = tf.tidy(() => tf.gather(t, tf.tensor1d(channels, 'int32'), t.rank - 1));
    t.dispose();
    weights[name] = sliced;
  };
  const touched = new Set<string>();
  for (const head of options.headOutputs) {
    const add = byName.get(head);
    if (!add) throw new Error(`Head output "${head}" is not in the graph.`);
    const inputs = (add.input ?? []).map((i) => parseTensorRef(i).node);
    const bias = inputs.find(isConst);
    const conv = inputs.map((i) => byName.get(i)).find((n) => n && /Conv2D/.test(n.op));
    const filter = conv && (conv.input ?? []).map((i) => parseTensorRef(i).node).find(isConst);
    if (!bias || !filter) throw new Error(`Head output "${head}" is not conv + bias: cannot find the class channels to slice.`);
    const total = weights[bias]!.shape[0]!;
    const channels = [...keep, ...Array.from({ length: total - numClasses }, (_, i) => numClasses + i)];
    for (const w of [bias, filter]) {
      if (touched.has(w)) continue;
      sliceLast(w, channels);
      touched.add(w);
    }
  }
  // Downstream of the heads, class-count constants feed SplitV and Reshape.
  const consumers = consumersOf(parts.topology);
  const downstream = new Set<string>();
  const stack = [...options.headOutputs];
  while (stack.length) {
    const n = stack.pop()!;
    for (const c of consumers.get(n) ?? []) {
      if (downstream.has(c)) continue;
      downstream.add(c);
      stack.push(c);
    }
  }
  // The shape input may be computed from constants (e.g. Const [1,80,-1] plus a folded zero):
  // rewrite the integer Const leaves of that constant subgraph.
  const constLeaves = (start: string): string[] => {
    const leaves: string[] = [];
    const walk = [start];
    const seen = new Set<string>();
    while (walk.length) {
      const n = walk.pop()!;
      if (seen.has(n)) continue;
      seen.add(n);
      const node = byName.get(n);
      if (!node || node.op === 'Placeholder') return [];
      if (node.op === 'Const') leaves.push(n);
      else walk.push(...(node.input ?? []).filter((i) => !i.startsWith('^')).map((i) => parseTensorRef(i).node));
    }
    return leaves;
  };
  for (const name of downstream) {
    const node = byName.get(name)!;
    if (node.op !== 'SplitV' && node.op !== 'Reshape') continue;
    for (const constName of constLeaves(parseTensorRef(node.input![1]!).node)) {
      const t = weights[constName]!;
      if (touched.has(constName) || t.dtype !== 'int32') continue;
      const values = Array.from(t.dataSync());
      const at = values.indexOf(numClasses);
      if (at < 0) continue;
      values[at] = keep.length;
      weights[constName] = tf.tensor(values, t.shape, t.dtype);
      t.dispose();
      touched.add(constName);
    }
  }
  const signature = parts.signature ? structuredClone(parts.signature) : undefined;
  const outs = (signature as { outputs?: Record<string, { tensorShape?: { dim?: { size?: string }[] } }> } | undefined)?.outputs;
  for (const o of Object.values(outs ?? {})) {
    for (const d of o.tensorShape?.dim ?? []) if (Number(d.size) === numClasses) d.size = String(keep.length);
  }
  return { topology: parts.topology, weights, signature };
}
