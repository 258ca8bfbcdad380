/**
 * A trainable executor for TensorFlow.js graph models. tf.GraphModel can only run inference;
 * this runs the same model.json with differentiable tfjs-core ops, so a converted detector can be
 * fine-tuned: float weights become tf.Variables, fused ops are split into conv + bias +
 * activation (see ops/), constant subgraphs are folded once at load, and any node can be read
 * ("tapped") in the same run. Shapes baked into Reshape and Resize constants follow the batch and
 * the input size, so any batch size and input size run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attr, parseTensorRef, type TensorRef, type TfGraphTopology, type TfNodeDef } from './model-json';
import { OPS, STRUCTURAL_OPS, isSupportedOp, tensorInputs, type OpContext } from './ops';
import { withoutTape } from './ops/tape';
import { composePerms, isIdentityPerm, logical, mayRunPermuted, runPermuted, type Held, type Perm } from './layout';
import { shareDataInWasmIdentity } from './wasm-identity';
import { sliceInPlaceOnWasm } from './wasm-slice';
import { reduceWithoutTransposeOnWasm } from './wasm-reduce';
import { spreadReduceGradients } from './ops/reduce-grad';
import { zerosOnHeapOnWasm } from './wasm-zeros';
import { tileByCopiesOnWasm } from './wasm-tile';
import { transposeBySimdOnWasm } from './wasm-transpose';
import { leakyReluBySimdOnWasm } from './wasm-leaky-relu';
import { convolutionsBySimdOnWasm } from './wasm-conv';
import { chainForRun, chainNodes, planConvChains, type ConvChain } from './conv-chains';
import { convBiasActivation, convFusion, convGeometry } from './ops/conv';

export interface GraphOptions {
  /** Float weights become tf.Variables (for a student). False keeps them constant (a teacher). Default true. */
  trainable?: boolean;
  /** Prefix of the variables' names; must be unique among live graphs. Default "graph<n>". */
  name?: string;
}

export interface GraphInput {
  name: string;
  /** Declared shape; -1 where any size goes. */
  shape: number[];
  dtype: tf.DataType;
}

interface Node {
  def: TfNodeDef;
  inputs: TensorRef[];
}

interface Constant {
  tensors: tf.Tensor[];
  /** Host copies of small integer/bool constants: shapes, axes, sizes never need a GPU read. */
  values: (number[] | undefined)[];
}

/** Ops of TensorFlow control flow (v1 loops and conditionals, v2 functional ones, their arrays). */
const CONTROL_FLOW = /^(Switch|Merge|Enter|Exit|RefEnter|LoopCond|NextIteration|While|StatelessWhile|If|StatelessIf|TensorArray\w*|TensorList\w*)$/;

/** One error that names every op the executor cannot run, and the nodes that use it. */
export class UnsupportedOpsError extends Error {
  constructor(readonly unsupported: Map<string, string[]>) {
    const lines = [...unsupported].map(([op, nodes]) => `- ${op}: ${nodes.slice(0, 5).join(', ')}${nodes.length > 5 ? ` (+${nodes.length - 5} more)` : ''}`);
    const controlFlow = [...unsupported.keys()].some((op) => CONTROL_FLOW.test(op))
      ? 'The model has control flow (loops or conditionals), which the trainable executor does not support.\n'
      : '';
    super(`${controlFlow}The model uses ${unsupported.size} op(s) the trainable executor does not support:\n${lines.join('\n')}`);
    this.name = 'UnsupportedOpsError';
  }
}

/** A node on the way from the trainable weights to the requested outputs that backprop cannot pass. */
export interface GradientGap {
  node: string;
  op: string;
  reason: string;
}

/** One error that names every node whose op stops the gradient on the way to the outputs. */
export class MissingGradientsError extends Error {
  constructor(readonly gaps: GradientGap[]) {
    const lines = gaps.slice(0, 20).map((g) => `- ${g.node} (${g.op}): ${g.reason}`);
    if (gaps.length > 20) lines.push(`- (+${gaps.length - 20} more)`);
    super(`Gradients cannot reach the weights through ${gaps.length} node(s) on the way to the requested outputs:\n${lines.join('\n')}`);
    this.name = 'MissingGradientsError';
  }
}

/** Lists unsupported ops by op name → node names; empty when the whole graph can run. */
export function findUnsupportedOps(topology: TfGraphTopology): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const node of topology.node) {
    if (!isSupportedOp(node.op)) out.set(node.op, [...(out.get(node.op) ?? []), node.name]);
  }
  return out;
}

const dtypeOf = (t: string | undefined): tf.DataType =>
  t === 'DT_INT32' || t === 'DT_INT64' || t === 'DT_INT8' || t === 'DT_UINT8' || t === 'DT_INT16' ? 'int32' : t === 'DT_BOOL' ? 'bool' : 'float32';

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i] || b[i] === -1);

let graphCounter = 0;

export class TrainableGraph {
  readonly name: string;
  readonly trainable: boolean;
  readonly inputs: GraphInput[];
  /** Default outputs: the signature's outputs, else the graph's sink nodes. */
  readonly outputs: string[];
  /** Trainable weights by Const node name. */
  readonly variables = new Map<string, tf.Variable>();
  private readonly nodes = new Map<string, Node>();
  private readonly order: string[];
  private readonly constants = new Map<string, Constant>();
  private readonly frozen = new Set<string>();
  /** Input shape of every Reshape/Resize at the declared input shape, for shape following. */
  private referenceShapes?: Map<string, number[]>;
  private parameters = 0;
  private disposed = false;
  /** Convolution layers written as separate nodes (conv, bias, activation), run as one fused op. */
  private readonly convChains: Map<string, ConvChain>;

  constructor(
    readonly topology: TfGraphTopology,
    weights: tf.NamedTensorMap,
    /** The model.json signature, kept for export; its outputs are the default outputs. */
    readonly signature: object | undefined,
    options: GraphOptions = {},
  ) {
    shareDataInWasmIdentity();
    sliceInPlaceOnWasm();
    reduceWithoutTransposeOnWasm();
    spreadReduceGradients();
    zerosOnHeapOnWasm();
    tileByCopiesOnWasm();
    transposeBySimdOnWasm();
    leakyReluBySimdOnWasm();
    convolutionsBySimdOnWasm();
    const unsupported = findUnsupportedOps(topology);
    if (unsupported.size > 0) throw new UnsupportedOpsError(unsupported);
    this.name = options.name ?? `graph${++graphCounter}`;
    this.trainable = options.trainable ?? true;
    for (const def of topology.node) {
      const inputs = (def.input ?? []).filter((i) => !i.startsWith('^')).map(parseTensorRef);
      this.nodes.set(def.name, { def, inputs });
    }
    for (const [name, node] of this.nodes) {
      for (const ref of node.inputs) {
        if (!this.nodes.has(ref.node)) throw new Error(`Node "${name}" reads "${ref.node}", which is not in the graph: model.json is incomplete.`);
      }
    }
    this.order = this.topologicalOrder();
    this.inputs = [...this.nodes.values()]
      .filter((n) => n.def.op === 'Placeholder' || n.def.op === 'PlaceholderWithDefault')
      .map((n) => ({ name: n.def.name, shape: attr.shape(n.def, 'shape') ?? [], dtype: dtypeOf(attr.dtype(n.def, 'dtype')) }));
    const declared = signatureOutputNames(signature);
    this.outputs = declared.length ? declared : this.sinks();
    this.loadConstants(weights);
    this.foldConstants();
    this.convChains = planConvChains(this.nodes, {
      weightShape: (name) => this.weight(name)?.shape,
      hostValues: (ref) => this.constants.get(ref.node)?.values[ref.index],
    });
  }

  private topologicalOrder(): string[] {
    const indegree = new Map<string, number>();
    const consumers = new Map<string, string[]>();
    for (const [name, node] of this.nodes) {
      const deps = new Set(node.inputs.map((r) => r.node));
      indegree.set(name, deps.size);
      for (const d of deps) consumers.set(d, [...(consumers.get(d) ?? []), name]);
    }
    const ready = [...indegree].filter(([, d]) => d === 0).map(([n]) => n);
    const order: string[] = [];
    while (ready.length) {
      const n = ready.pop()!;
      order.push(n);
      for (const c of consumers.get(n) ?? []) {
        const d = indegree.get(c)! - 1;
        indegree.set(c, d);
        if (d === 0) ready.push(c);
      }
    }
    if (order.length !== this.nodes.size) throw new Error('The graph has a cycle (control flow such as loops is not supported).');
    return order;
  }

  private sinks(): string[] {
    const used = new Set<string>();
    for (const n of this.nodes.values()) for (const r of n.inputs) used.add(r.node);
    return [...this.nodes.keys()].filter((n) => !used.has(n) && this.nodes.get(n)!.def.op !== 'Const' && this.nodes.get(n)!.def.op !== 'NoOp');
  }

  private loadConstants(weights: tf.NamedTensorMap) {
    for (const node of this.nodes.values()) {
      if (node.def.op !== 'Const') continue;
      const t = weights[node.def.name];
      if (!t) throw new Error(`Const node "${node.def.name}" has no weight in the weight files: they do not belong to this model.json.`);
      if (t.dtype === 'float32' && t.rank > 0) this.parameters += t.size;
      if (this.trainable && t.dtype === 'float32' && t.rank > 0) {
        this.variables.set(node.def.name, tf.variable(t, true, `${this.name}/${node.def.name}`));
        t.dispose();
      } else {
        this.constants.set(node.def.name, { tensors: [t], values: [t.dtype !== 'float32' && t.size <= 4096 ? Array.from(t.dataSync()) : undefined] });
      }
    }
  }

  /** Evaluates, once, every node whose inputs are all constants (never variables or inputs). */
  private foldConstants() {
    for (const name of this.order) {
      const node = this.nodes.get(name)!;
      if (STRUCTURAL_OPS.has(node.def.op) || node.inputs.length === 0) continue;
      if (!node.inputs.every((r) => this.constants.has(r.node))) continue;
      const inputs = node.inputs.map((r) => this.constants.get(r.node)!.tensors[r.index]!);
      const ctx = this.context(node, inputs);
      const out = runKernel(node.def.op, inputs, ctx);
      this.constants.set(name, { tensors: out, values: out.map((t) => (t.dtype !== 'float32' && t.size <= 4096 ? Array.from(t.dataSync()) : undefined)) });
    }
  }

  private context(node: Node, inputs: tf.Tensor[], follow?: (i: number, v: number[]) => number[]) {
    return {
      node: node.def,
      values: (i: number): number[] => {
        const ref = node.inputs[i];
        if (!ref) throw new Error(`${node.def.op} node "${node.def.name}" needs input ${i}, which is missing.`);
        const constant = this.constants.get(ref.node);
        let v = constant?.values[ref.index];
        if (!v) {
          // A host input read from a tensor: a constant's values are read once and kept (a float
          // constant such as PadV2's fill value is not read at load), so a step never waits on
          // the device for them again.
          v = Array.from(inputs[i]!.dataSync());
          if (constant) constant.values[ref.index] = v;
        }
        return follow ? follow(i, v) : v;
      },
    };
  }

  /** The tensor of a constant or variable weight by its Const node name. */
  weight(name: string): tf.Tensor | undefined {
    return this.variables.get(name) ?? this.constants.get(name)?.tensors[0];
  }

  /** Node names and ops, for tools that inspect the graph. */
  nodeList(): { name: string; op: string; inputs: string[] }[] {
    return this.order.map((n) => {
      const node = this.nodes.get(n)!;
      return { name: n, op: node.def.op, inputs: node.inputs.map((r) => (r.index ? `${r.node}:${r.index}` : r.node)) };
    });
  }

  /**
   * Freezes the variables whose node names match any pattern (a RegExp, or a substring): they keep
   * their values and are left out of `trainableVariables()`. Call with [] to unfreeze everything.
   */
  freeze(patterns: (string | RegExp)[]): void {
    this.frozen.clear();
    for (const name of this.variables.keys()) {
      if (patterns.some((p) => (typeof p === 'string' ? name.includes(p) : p.test(name)))) this.frozen.add(name);
    }
  }

  /**
   * Freezes every variable whose node name does NOT match `pattern` (only the matching ones train),
   * and returns how many train. Throws when nothing matches, rather than train nothing.
   */
  trainOnly(pattern: RegExp): number {
    const names = [...this.variables.keys()];
    const kept = names.filter((n) => pattern.test(n));
    if (!kept.length) throw new Error(`No weight of the student matches ${String(pattern)}; its weights are named like "${names[0] ?? ''}".`);
    this.frozen.clear();
    for (const n of names) if (!kept.includes(n)) this.frozen.add(n);
    return kept.length;
  }

  /** The variables an optimizer should update (all but the frozen ones). */
  trainableVariables(): tf.Variable[] {
    return [...this.variables].filter(([n]) => !this.frozen.has(n)).map(([, v]) => v);
  }

  /**
   * The nodes between the trainable weights and `outputs` through which tfjs cannot backprop
   * (no gradient registered, or one that needs a kernel the current backend lacks), found from
   * the graph alone: training on these outputs would fail there. Empty when it can train.
   */
  gradientGaps(outputs: readonly string[] = this.outputs): GradientGap[] {
    const refs = outputs.map((o) => this.resolveOutput(o));
    for (const r of refs) if (!this.nodes.has(r.node)) throw new Error(`No node named "${r.node}" in the graph.`);
    const fromWeights = new Set(this.trainableVariables().length ? [...this.variables.keys()].filter((n) => !this.frozen.has(n)) : []);
    const gradientInputs = (node: Node) => (STRUCTURAL_OPS.has(node.def.op) ? [] : tensorInputs(OPS[node.def.op]!, node.inputs.length).map((i) => node.inputs[i]!.node));
    for (const name of this.order) {
      const node = this.nodes.get(name)!;
      if (this.constants.has(name)) continue;
      if (gradientInputs(node).some((n) => fromWeights.has(n))) fromWeights.add(name);
    }
    const toOutputs = new Set<string>();
    const stack = refs.map((r) => r.node);
    while (stack.length) {
      const n = stack.pop()!;
      if (toOutputs.has(n) || !fromWeights.has(n)) continue;
      toOutputs.add(n);
      stack.push(...gradientInputs(this.nodes.get(n)!));
    }
    const backend = tf.getBackend();
    const gaps: GradientGap[] = [];
    for (const name of this.order) {
      const node = this.nodes.get(name)!;
      if (!toOutputs.has(name) || this.variables.has(name)) continue;
      const def = OPS[node.def.op]!;
      if (!def.hasGradient) gaps.push({ node: name, op: node.def.op, reason: `tfjs has no gradient for ${node.def.op}` });
      else if (def.gradientKernel && !tf.getKernel(def.gradientKernel, backend)) {
        gaps.push({ node: name, op: node.def.op, reason: `its gradient needs the ${def.gradientKernel} kernel, which the ${backend} backend lacks` });
      }
    }
    return gaps;
  }

  /** Throws a MissingGradientsError naming every gap when training on `outputs` cannot work. */
  assertGradients(outputs: readonly string[] = this.outputs): void {
    const gaps = this.gradientGaps(outputs);
    if (gaps.length) throw new MissingGradientsError(gaps);
  }

  /** Number of float weights of rank >= 1: the model's parameters, trainable or not. */
  parameterCount(): number {
    return this.parameters;
  }

  /**
   * Runs the graph. `feeds` is the input tensor (single-input graphs) or a map by input name;
   * `outputs` are the signature's output keys or node names ("name" or "name:k" for the k-th
   * output of a multi-output node), any node of the graph: that is how features are tapped in
   * the same run. The caller owns
   * the returned tensors. Gradients flow when called inside tf.grad / tf.variableGrads.
   * `options.transposed[i]`, when given, asks for output i as tf.transpose(output, perm): where
   * the run holds it in that order already (an NCHW tap of a converted graph, computed in NHWC),
   * no data moves.
   */
  execute(feeds: tf.Tensor | Record<string, tf.Tensor>, outputs: readonly string[] = this.outputs, options: { transposed?: readonly (Perm | undefined)[] } = {}): tf.Tensor[] {
    if (this.disposed) throw new Error(`Graph "${this.name}" was disposed.`);
    const feedMap = this.normalizeFeeds(feeds);
    const follow = this.shapeFollower(feedMap);
    return this.run(feedMap, outputs.map((o) => this.resolveOutput(o)), follow, undefined, options.transposed);
  }

  /** An output by signature key (as tf.GraphModel takes it, key first), else "node" or "node:k". */
  private resolveOutput(name: string): TensorRef {
    const keyed = (this.signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs?.[name]?.name;
    return parseTensorRef(keyed ?? name);
  }

  private normalizeFeeds(feeds: tf.Tensor | Record<string, tf.Tensor>): Map<string, tf.Tensor> {
    const map = new Map<string, tf.Tensor>();
    if (feeds instanceof tf.Tensor) {
      if (this.inputs.length !== 1) throw new Error(`The graph has ${this.inputs.length} inputs; pass a map by input name.`);
      map.set(this.inputs[0]!.name, feeds);
    } else {
      for (const [k, v] of Object.entries(feeds)) map.set(parseTensorRef(k).node, v);
    }
    for (const input of this.inputs) {
      const t = map.get(input.name);
      if (!t) throw new Error(`Input "${input.name}" was not fed.`);
      if (input.shape.length && t.rank !== input.shape.length) {
        throw new Error(`Input "${input.name}" expects rank ${input.shape.length} ([${input.shape.join(',')}]), got [${t.shape.join(',')}].`);
      }
    }
    return map;
  }

  /** When the fed shapes differ from the declared ones, rewrite baked Reshape/Resize constants. */
  private shapeFollower(feeds: Map<string, tf.Tensor>) {
    const declared = this.inputs.every((i) => !i.shape.length || sameShape(feeds.get(i.name)!.shape, i.shape));
    if (declared) return undefined;
    const reference = this.referenceShapes ?? (this.referenceShapes = this.computeReferenceShapes());
    return (node: Node, inputs: tf.Tensor[]) => (i: number, v: number[]): number[] => {
      const ref = reference.get(node.def.name);
      const now = inputs[0]?.shape;
      if (i !== 1 || !ref || !now) return v;
      if (node.def.op === 'Reshape') {
        // A target whose first dim is not the batch (a folded [B·H·W, C], or a batch-less
        // tensor given a batch of 1) cannot follow another batch: say which node, not a size error.
        if (now[0] !== ref[0] && v[0] !== -1 && v[0] !== ref[0]) {
          throw new Error(
            `Reshape node "${node.def.name}" bakes the batch into its target [${v.join(',')}] (its input is [${ref.join(',')}] at the declared input shape), so this part of the graph runs at batch ${ref[0]} only, not ${now[0]}.`,
          );
        }
        return followReshape(v, ref, now);
      }
      if (node.def.op === 'ResizeBilinear' || node.def.op === 'ResizeNearestNeighbor') {
        return v.map((size, k) => Math.max(1, Math.round((size * now[1 + k]!) / ref[1 + k]!)));
      }
      return v;
    };
  }

  /** One run at the declared input shapes (batch 1 where free) to learn the baked shapes' context. */
  private computeReferenceShapes(): Map<string, number[]> {
    const shapes = new Map<string, number[]>();
    const followed = [...this.nodes.values()].filter((n) => ['Reshape', 'ResizeBilinear', 'ResizeNearestNeighbor'].includes(n.def.op));
    if (followed.length === 0) return shapes;
    if (this.inputs.some((i) => i.shape.slice(1).some((d) => d < 0) || !i.shape.length)) {
      throw new Error('The model bakes shapes into Reshape/Resize constants but its input shape is not fully declared, so they cannot follow another input size.');
    }
    // Off the tape: the first step at another input size may run this inside tf.variableGrads.
    withoutTape(() => tf.tidy(() => {
      const feeds = new Map(this.inputs.map((i) => [i.name, tf.zeros(i.shape.map((d) => (d < 0 ? 1 : d)), i.dtype)] as const));
      const record = (node: Node, inputs: tf.Tensor[]) => {
        if (followed.includes(node)) shapes.set(node.def.name, [...inputs[0]!.shape]);
        return undefined;
      };
      const outs = this.run(feeds, followed.map((n) => ({ node: n.def.name, index: 0 })), record);
      tf.dispose(outs);
    }));
    return shapes;
  }

  /**
   * The output shapes of every node reached from `outputs` (default: the graph's outputs), from
   * one run with zeros at the declared input shapes (batch 1 where free), or at `inputShapes`.
   */
  nodeShapes(outputs: readonly string[] = this.outputs, inputShapes?: Record<string, number[]>): Map<string, number[][]> {
    const shapes = new Map<string, number[][]>();
    for (const [name, c] of this.constants) shapes.set(name, c.tensors.map((t) => [...t.shape]));
    for (const [name, v] of this.variables) shapes.set(name, [[...v.shape]]);
    withoutTape(() => tf.tidy(() => {
      const feeds = new Map(
        this.inputs.map((i) => [i.name, tf.zeros(inputShapes?.[i.name] ?? i.shape.map((d) => (d < 0 ? 1 : d)), i.dtype)] as const),
      );
      for (const [name, t] of feeds) shapes.set(name, [[...t.shape]]);
      const follow = this.shapeFollower(feeds);
      const outs = this.run(feeds, outputs.map((o) => this.resolveOutput(o)), follow, (name, out) => shapes.set(name, out.map((t) => [...t.shape])));
      tf.dispose(outs);
    }));
    return shapes;
  }

  /**
   * Reshape nodes on the way to `outputs` whose baked target folds the batch into another
   * dimension (CenterNet's BatchGather/Reshape_2: [1,128,128,4] → [16384,4]): that part of the
   * graph runs only at the declared batch. Found from one run at the declared shape, before any
   * training, so a trainer can refuse a larger batch up front.
   */
  batchBoundNodes(outputs: readonly string[] = this.outputs): { node: string; target: number[]; input: number[] }[] {
    const needed = new Set<string>();
    const stack = outputs.map((o) => parseTensorRef(o).node);
    while (stack.length) {
      const n = stack.pop()!;
      const node = this.nodes.get(n);
      if (!node || needed.has(n) || this.constants.has(n) || this.variables.has(n)) continue;
      needed.add(n);
      for (const r of node.inputs) stack.push(r.node);
    }
    const reshapes = [...needed].filter((n) => this.nodes.get(n)!.def.op === 'Reshape');
    if (reshapes.length === 0) return [];
    this.referenceShapes ??= this.computeReferenceShapes();
    const bound: { node: string; target: number[]; input: number[] }[] = [];
    for (const name of reshapes) {
      const ref = this.referenceShapes.get(name);
      const targetRef = this.nodes.get(name)!.inputs[1];
      const target = targetRef && this.constants.get(targetRef.node)?.values[targetRef.index];
      if (ref && target && target[0] !== -1 && target[0] !== ref[0]) bound.push({ node: name, target: [...target], input: [...ref] });
    }
    return bound;
  }

  /** Reference shapes can be handed to another instance of the same graph (e.g. on a slower backend). */
  exportReferenceShapes(): Record<string, number[]> {
    this.referenceShapes ??= this.computeReferenceShapes();
    return Object.fromEntries(this.referenceShapes);
  }
  importReferenceShapes(shapes: Record<string, number[]>): void {
    this.referenceShapes = new Map(Object.entries(shapes));
  }

  private run(
    feeds: Map<string, tf.Tensor>,
    outputs: TensorRef[],
    follow?: (node: Node, inputs: tf.Tensor[]) => ((i: number, v: number[]) => number[]) | undefined,
    observe?: (name: string, outputs: tf.Tensor[]) => void,
    transposed?: readonly (Perm | undefined)[],
  ): tf.Tensor[] {
    // Which nodes this run needs, and how many times each of their outputs will be read.
    const needed = new Set<string>();
    const stack = outputs.map((o) => o.node);
    for (const o of outputs) if (!this.nodes.has(o.node)) throw new Error(`No node named "${o.node}" in the graph.`);
    while (stack.length) {
      const n = stack.pop()!;
      if (needed.has(n) || feeds.has(n) || this.constants.has(n) || this.variables.has(n)) continue;
      needed.add(n);
      for (const r of this.nodes.get(n)!.inputs) stack.push(r.node);
    }
    const reads = new Map<string, number>();
    for (const n of needed) for (const r of this.nodes.get(n)!.inputs) reads.set(r.node, (reads.get(r.node) ?? 0) + 1);
    const wanted = new Set(outputs.map((o) => o.node));

    // Node outputs as held: possibly in another axis order (perms), read in logical order through
    // `get`, which transposes once per output and keeps the result (see layout.ts). A shape
    // recording run (observe) sees every output in logical order, so it defers nothing.
    const values = new Map<string, tf.Tensor[]>();
    const perms = new Map<string, (Perm | undefined)[]>();
    const restored = new Map<string, (tf.Tensor | undefined)[]>();
    const deferring = observe === undefined;
    const held = (r: TensorRef): Held => {
      const t = feeds.get(r.node) ?? this.variables.get(r.node) ?? this.constants.get(r.node)?.tensors[r.index] ?? values.get(r.node)?.[r.index];
      if (!t) throw new Error(`Node "${r.node}" output ${r.index} is not available.`);
      const perm = perms.get(r.node)?.[r.index];
      return perm ? { tensor: t, perm } : { tensor: t };
    };
    const get = (r: TensorRef): tf.Tensor => {
      const h = held(r);
      if (!h.perm) return h.tensor;
      const cache = restored.get(r.node) ?? [];
      restored.set(r.node, cache);
      return (cache[r.index] ??= logical(h));
    };
    const release = (node: string) => {
      tf.dispose(values.get(node)!);
      values.delete(node);
      tf.dispose((restored.get(node) ?? []).filter((t): t is tf.Tensor => t !== undefined));
      restored.delete(node);
    };
    /** One read of `r` done: its value goes once nothing else reads it (and nobody asked for it). */
    const consumed = (r: TensorRef) => {
      const left = reads.get(r.node)! - 1;
      reads.set(r.node, left);
      if (left === 0 && values.has(r.node) && !wanted.has(r.node)) release(r.node);
    };
    // Nodes of a convolution chain run fused when its convolution's turn comes: the chain's last
    // node gets the value, the rest none (a folded Pad and Transpose come before the convolution).
    const fusedAway = new Set<string>();
    const pinned = (n: string) => wanted.has(n) || feeds.has(n);
    const chains = new Map<string, ConvChain>();
    if (deferring && convFusion()) {
      for (const [conv, chain] of this.convChains) {
        const run = needed.has(conv) ? chainForRun(chain, pinned) : undefined;
        if (!run) continue;
        chains.set(conv, run);
        if (run.pad) fusedAway.add(run.pad.node).add(run.pad.transpose);
      }
    }
    try {
      for (const name of this.order) {
        if (!needed.has(name) || fusedAway.has(name)) continue;
        const node = this.nodes.get(name)!;
        if (node.def.op === 'Placeholder' || node.def.op === 'PlaceholderWithDefault') {
          throw new Error(`Input "${name}" was not fed.`);
        }
        if (node.def.op === 'NoOp') {
          values.set(name, []);
          continue;
        }
        const op = node.def.op;
        const fused = chains.get(name);
        if (fused) {
          const members = chainNodes(fused);
          const last = members[members.length - 1]!;
          const activation = fused.activation ? this.nodes.get(fused.activation.node)!.def : node.def;
          let out: tf.Tensor;
          try {
            const filter = get(node.inputs[1]!) as tf.Tensor4D;
            const bias = get(fused.bias);
            out = tf.tidy(() => {
              // The folded Pad's input, in the convolution's (NHWC) axis order: no copy where its
              // held order already is that (the usual NCHW graph around NHWC convolutions).
              let x: tf.Tensor4D;
              if (fused.pad) {
                const h = held(fused.pad.input);
                const perm = h.perm ? composePerms(h.perm, fused.pad.perm) : fused.pad.perm;
                x = (isIdentityPerm(perm) ? h.tensor : tf.transpose(h.tensor, perm)) as tf.Tensor4D;
              } else {
                x = get(node.inputs[0]!) as tf.Tensor4D;
              }
              const g = convGeometry(node.def, x.shape[1], x.shape[2], filter.shape[0], filter.shape[1], op !== 'Conv2D');
              return convBiasActivation(x, filter, bias, fused.activation?.op ?? '', activation, fused.pad ? { ...g, pads: fused.pad.pads } : g);
            });
          } catch (error) {
            throw new Error(`${op} node "${name}", run as one fused op with ${members.filter((m) => m !== name).join(', ')}, failed: ${(error as Error).message}`, { cause: error });
          }
          values.set(last, [out]);
          if (fused.transpose) perms.set(last, [fused.transpose.perm]);
          for (const m of members) {
            fusedAway.add(m);
            for (const r of this.nodes.get(m)!.inputs) if (!members.includes(r.node)) consumed(r);
          }
          continue;
        }
        let permuted: { tensors: tf.Tensor[]; perms: (Perm | undefined)[] } | undefined;
        const given = node.inputs.map(held);
        let inputs: tf.Tensor[] = [];
        try {
          if (deferring && mayRunPermuted(op) && (op === 'Transpose' || given.some((h) => h.perm))) {
            permuted = runPermutedKernel(op, given, this.context(node, given.map((h) => h.tensor)));
          }
          if (!permuted) {
            inputs = node.inputs.map(get);
            permuted = { tensors: runKernel(op, inputs, this.context(node, inputs, follow?.(node, inputs))), perms: [] };
          }
        } catch (error) {
          throw new Error(`${op} node "${name}" failed on inputs [${given.map((h) => `[${(h.perm ? h.perm.map((a) => h.tensor.shape[a]) : h.tensor.shape).join(',')}]`).join(', ')}]: ${(error as Error).message}`, { cause: error });
        }
        // A kernel may hand back one of its inputs; give it its own handle so disposal stays exact.
        const list = permuted.tensors.map((t) => (inputs.includes(t) || given.some((h) => h.tensor === t) ? t.clone() : t));
        values.set(name, list);
        if (permuted.perms.some((p) => p)) perms.set(name, permuted.perms);
        observe?.(name, list);
        for (const r of node.inputs) consumed(r);
      }
      // An output asked for transposed: read from the held tensor through one composed
      // permutation (none at all where it is the identity).
      const made: tf.Tensor[] = [];
      const result = outputs.map((r, i) => {
        const q = transposed?.[i];
        if (!q) return get(r);
        const h = held(r);
        const perm = h.perm ? composePerms(h.perm, q) : [...q];
        if (isIdentityPerm(perm)) return h.tensor;
        const t = tf.transpose(h.tensor, perm);
        made.push(t);
        return t;
      });
      // The caller owns what it gets: fresh handles for feeds, weights and repeated outputs.
      const owned = new Set([...values.values(), ...restored.values(), made].flat().filter((t): t is tf.Tensor => t !== undefined));
      const seen = new Set<tf.Tensor>();
      const handles = result.map((t) => {
        const handle = !owned.has(t) || seen.has(t) ? t.clone() : t;
        seen.add(t);
        return handle;
      });
      for (const t of owned) if (!handles.includes(t)) t.dispose();
      return handles;
    } catch (error) {
      for (const node of [...values.keys()]) release(node);
      throw error;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables.values()) v.dispose();
    for (const c of this.constants.values()) tf.dispose(c.tensors);
    this.variables.clear();
    this.constants.clear();
  }
}

/** runPermuted inside a tidy, as runKernel; undefined when the op needs its inputs in logical order. */
function runPermutedKernel(opName: string, inputs: Held[], ctx: OpContext): { tensors: tf.Tensor[]; perms: (Perm | undefined)[] } | undefined {
  let perms: (Perm | undefined)[] = [];
  const tensors = tf.tidy(() => {
    const out = runPermuted(opName, OPS[opName]!, inputs, ctx);
    if (!out) return [];
    perms = out.map((h) => h.perm);
    return out.map((h) => h.tensor);
  });
  return tensors.length ? { tensors, perms } : undefined;
}

/**
 * One node's kernel inside a tidy: what fused ops and multi-step kernels make on the way (the
 * convolution before its bias, NCHW transposes) is freed at once; only the outputs survive.
 * Tidy inside a recorded gradient is safe: the tape keeps its own copies of what backprop needs.
 */
function runKernel(opName: string, inputs: tf.Tensor[], ctx: OpContext): tf.Tensor[] {
  return tf.tidy(() => {
    const out = OPS[opName]!.kernel(inputs, ctx);
    return Array.isArray(out) ? out : [out];
  });
}

/** Output node names in a model.json signature ("Identity:0" → "Identity"). */
function signatureOutputNames(signature: object | undefined): string[] {
  const outputs = (signature as { outputs?: Record<string, { name?: string }> } | undefined)?.outputs;
  if (!outputs) return [];
  return Object.entries(outputs).map(([key, v]) => parseTensorRef(v.name ?? key).node);
}

/**
 * A Reshape target baked for the reference input, rewritten for the current one: the batch
 * follows the input's batch, and a dim equal to the reference input's dim at the same position
 * follows it; -1 stays -1.
 */
export function followReshape(target: number[], refIn: readonly number[], nowIn: readonly number[]): number[] {
  return target.map((d, j) => {
    if (d === -1) return -1;
    if (j === 0 && d === refIn[0]) return nowIn[0]!;
    if (j > 0 && j < refIn.length && d === refIn[j] && nowIn[j] !== undefined) return nowIn[j]!;
    return d;
  });
}
