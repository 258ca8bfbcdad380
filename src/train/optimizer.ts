/**
 * SGD with momentum (PyTorch semantics, L2 weight decay on weight tensors) and Adam with
 * decoupled weight decay (AdamW), written here rather than taken from tfjs because the lab needs
 * a learning rate that changes every step and a state it can save and restore by variable name.
 */
import * as tf from '@tensorflow/tfjs';
import { stableVariableKey } from '../distill/connectors';
import { ew, runElementwise, type ElementwiseProgram, type Expr } from '../graph/elementwise-program';

export type OptimizerKind = 'sgd' | 'adam';

export interface OptimizerOptions {
  momentum?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  /**
   * Keep an exponential moving average of every updated weight with this decay (0: none). The
   * decay ramps up as min(decay, (1 + t) / (10 + t)) so that early steps are not swamped by the
   * starting weights. The ramp reaches 0.99 only at step 890: in runs of a few hundred steps every
   * decay above about 0.97 gives the same average (a window of about 40 steps at step 360). A
   * longer window measured worse on the repair recipe (the mean of every weight so far until a
   * 100-step window fills: 60.3 mAP against 63.0). The averages are what `swapAverages` puts in
   * place for evaluation and export.
   */
  averageDecay?: number;
}

export interface OptimizerState {
  kind: OptimizerKind;
  steps: number;
  /**
   * Per variable name, its slots (SGD: [momentum]; Adam: [m, v]) as plain arrays; with weight
   * averaging, also one entry per variable under AVERAGE_PREFIX + name holding its average.
   */
  slots: Record<string, { shape: number[]; values: Float32Array }[]>;
}

/** Slot key prefix of the weight averages (kept with the optimizer's slots, so checkpoints carry them). */
export const AVERAGE_PREFIX = 'average:';

/** A non-trainable variable made from a fresh tensor, which is then released. */
function ownedVariable(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial, false);
  initial.dispose();
  return v;
}

/** Weight decay applies to weights, not to biases and other vectors (rank < 2), as usual. */
const decays = (v: tf.Variable) => v.rank >= 2;

/**
 * The gradients of the variables that have one, in the order given, joined into one vector: the
 * optimizer updates every variable with a handful of kernels on this vector rather than about
 * twenty per variable, which is what a step's cost was made of (a third of a plain step's kernels,
 * most of FGD's, whose connectors add about fifty variables).
 */
export interface GradientVector {
  variables: tf.Variable[];
  vector: tf.Tensor1D;
}

const flatten = (t: tf.Tensor) => t.reshape([-1]) as tf.Tensor1D;
const joined = (parts: tf.Tensor[]) => (parts.length === 1 ? flatten(parts[0]!) : tf.concat(parts.map(flatten)));

export function gradientVector(variables: readonly tf.Variable[], grads: tf.NamedTensorMap): GradientVector {
  const present = variables.filter((v) => grads[v.name]);
  return { variables: present, vector: tf.tidy(() => (present.length ? joined(present.map((v) => grads[v.name]!)) : tf.tensor1d([]))) };
}

/** Where each variable's values lie in the packed vectors, and the per-element weight decay. */
interface Packing {
  keys: string[];
  shapes: number[][];
  sizes: number[];
  /** Per slot kind (SGD: [momentum]; Adam: [m, v]), one vector over every packed variable. */
  slots: tf.Variable[];
  average?: tf.Variable;
  /** weightDecay where an element belongs to a decayed weight, 0 elsewhere; absent without decay. */
  decay?: tf.Tensor1D;
}

/**
 * One update of the packed vectors as an elementwise program (one fused loop on wasm, the same
 * operations as kernels elsewhere). Inputs: gradient, weights, the slots (SGD: momentum buffer;
 * Adam: m, v), then the decay vector and the average when present. Parameters: SGD
 * [momentum, lr]; Adam [β1, 1−β1, β2, 1−β2, 1−β1^t, 1−β2^t, ε, lr]; then [d, 1−d] of the average.
 * Outputs: the new weights, the new slots, the new average.
 *   SGD:  buf = buf·momentum + (g + w·decay);  w = w − buf·lr
 *   Adam: m = m·β1 + g·(1−β1);  v = v·β2 + g²·(1−β2);
 *         w = w − (m/(1−β1^t) / (sqrt(v/(1−β2^t)) + ε) + w·decay)·lr   (decoupled decay, AdamW)
 *   average = average·d + w·(1−d)
 */
export function updateProgram(kind: OptimizerKind, withDecay: boolean, withAverage: boolean): ElementwiseProgram {
  const key = `${kind} ${withDecay} ${withAverage}`;
  let program = updatePrograms.get(key);
  if (!program) updatePrograms.set(key, (program = buildUpdateProgram(kind, withDecay, withAverage)));
  return program;
}

/** One program per kind of update, built once (the wasm loop is found by the program object). */
const updatePrograms = new Map<string, ElementwiseProgram>();

function buildUpdateProgram(kind: OptimizerKind, withDecay: boolean, withAverage: boolean): ElementwiseProgram {
  const { input, param, ref, add, sub, mul, div, sqrt } = ew;
  const [grad, w] = [input(0), input(1)];
  const slotCount = kind === 'sgd' ? 1 : 2;
  const decay = input(2 + slotCount);
  const average = input(2 + slotCount + (withDecay ? 1 : 0));
  const lets: Expr[] = [];
  const slots: Expr[] = [];
  let next: Expr;
  if (kind === 'sgd') {
    lets.push(add(mul(input(2), param(0)), withDecay ? add(grad, mul(w, decay)) : grad));
    slots.push(ref(0));
    next = sub(w, mul(ref(0), param(1)));
  } else {
    lets.push(add(mul(input(2), param(0)), mul(grad, param(1))), add(mul(input(3), param(2)), mul(mul(grad, grad), param(3))));
    slots.push(ref(0), ref(1));
    const update = div(div(ref(0), param(4)), add(sqrt(div(ref(1), param(5))), param(6)));
    next = sub(w, mul(withDecay ? add(update, mul(w, decay)) : update, param(7)));
  }
  const params = kind === 'sgd' ? 2 : 8;
  if (!withAverage) return { inputs: 2 + slotCount + (withDecay ? 1 : 0), params, lets, outputs: [next, ...slots] };
  lets.push(next);
  const nextRef = ref(lets.length - 1);
  return {
    inputs: 2 + slotCount + (withDecay ? 1 : 0) + 1,
    params: params + 2,
    lets,
    outputs: [nextRef, ...slots, add(mul(average, param(params)), mul(nextRef, param(params + 1)))],
  };
}

export class Optimizer {
  readonly kind: OptimizerKind;
  private readonly o: Required<OptimizerOptions>;
  /**
   * Slots of variables outside the packing, per variable key (and AVERAGE_PREFIX + key for the
   * averages): restored from a checkpoint, or of variables that had no gradient lately.
   */
  private loose = new Map<string, tf.Variable[]>();
  /** The slots of the variables the last steps updated, packed into vectors in their order. */
  private packed: Packing | null = null;
  steps = 0;

  constructor(kind: OptimizerKind, options: OptimizerOptions = {}) {
    this.kind = kind;
    this.o = { momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, averageDecay: 0, ...options };
    if (!(this.o.averageDecay >= 0 && this.o.averageDecay < 1)) throw new Error(`The weight-average decay must lie in [0, 1), got ${this.o.averageDecay}.`);
  }

  /** Whether weights are averaged (and `swapAverages` has something to swap). */
  get averaging(): boolean {
    return this.o.averageDecay > 0;
  }

  /**
   * Packs the slots (and averages) of `variables` into vectors, in their order: restored or loose
   * slots where a variable has them, zeros (and its current value as the average) where it has not.
   */
  private pack(variables: readonly tf.Variable[]): void {
    this.unpack();
    const keys = variables.map((v) => stableVariableKey(v.name));
    const slotCount = this.kind === 'sgd' ? 1 : 2;
    // Each vector is a copy; the loose per-variable slots it was made of are released below.
    const vector = (parts: () => tf.Tensor[]) => ownedVariable(tf.tidy(() => joined(parts())));
    const slots = Array.from({ length: slotCount }, (_, k) => vector(() => variables.map((v, i) => this.loose.get(keys[i]!)?.[k] ?? tf.zerosLike(v))));
    const average = this.o.averageDecay > 0 ? vector(() => variables.map((v, i) => this.loose.get(AVERAGE_PREFIX + keys[i]!)?.[0] ?? v)) : undefined;
    const w = this.o.weightDecay;
    const decay = w > 0 ? tf.tidy(() => joined(variables.map((v) => tf.fill([v.size], decays(v) ? w : 0)))) : undefined;
    for (const key of keys) {
      tf.dispose(this.loose.get(key) ?? []);
      tf.dispose(this.loose.get(AVERAGE_PREFIX + key) ?? []);
      this.loose.delete(key);
      this.loose.delete(AVERAGE_PREFIX + key);
    }
    this.packed = { keys, shapes: variables.map((v) => [...v.shape]), sizes: variables.map((v) => v.size), slots, average, decay };
  }

  /** Puts the packed slots back per variable (for checkpoints, swaps and a new set of variables). */
  private unpack(): void {
    const p = this.packed;
    if (!p) return;
    this.packed = null;
    const split = (vector: tf.Tensor) => (p.keys.length === 1 ? [vector.reshape(p.shapes[0]!)] : tf.split(vector, p.sizes).map((part, i) => part.reshape(p.shapes[i]!)));
    const perVariable = (vector: tf.Variable) => tf.tidy(() => split(vector)).map(ownedVariable);
    const slots = p.slots.map(perVariable);
    p.keys.forEach((key, i) => this.loose.set(key, slots.map((s) => s[i]!)));
    if (p.average) perVariable(p.average).forEach((a, i) => this.loose.set(AVERAGE_PREFIX + p.keys[i]!, [a]));
    tf.dispose([...p.slots, ...(p.average ? [p.average] : []), ...(p.decay ? [p.decay] : [])]);
  }

  /**
   * Exchanges each variable's value with its running average (a second call swaps back): the
   * averaged weights are evaluated and exported, the raw ones go on training. Returns how many
   * variables were swapped (0 without averaging or before the first step).
   */
  swapAverages(variables: readonly tf.Variable[]): number {
    this.unpack();
    let swapped = 0;
    for (const v of variables) {
      const a = this.loose.get(AVERAGE_PREFIX + stableVariableKey(v.name))?.[0];
      if (!a) continue;
      const current = v.clone();
      v.assign(a);
      a.assign(current);
      current.dispose();
      swapped++;
    }
    return swapped;
  }

  /** Runs `fn` with the averaged weights in place, and puts the raw ones back after (even on error). */
  async withAverages<T>(variables: readonly tf.Variable[], fn: () => Promise<T>): Promise<T> {
    const swapped = this.swapAverages(variables);
    try {
      return await fn();
    } finally {
      if (swapped) this.swapAverages(variables);
    }
  }

  /** One update of every variable that has a gradient in `grads` (keyed by variable name). */
  apply(variables: readonly tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    const g = gradientVector(variables, grads);
    try {
      this.applyVector(g, lr);
    } finally {
      g.vector.dispose();
    }
  }

  /**
   * One update of `g.variables` from their joined gradient. Element by element the same arithmetic
   * as updating each variable on its own, so the result is the same to the bit.
   */
  applyVector(g: GradientVector, lr: number): void {
    this.steps++;
    if (!g.variables.length) return;
    const keys = g.variables.map((v) => stableVariableKey(v.name));
    if (!this.packed || keys.length !== this.packed.keys.length || keys.some((k, i) => k !== this.packed!.keys[i])) this.pack(g.variables);
    const p = this.packed!;
    const { momentum, beta1, beta2, epsilon, averageDecay } = this.o;
    const t = this.steps;
    const decay = Math.min(averageDecay, (1 + t) / (10 + t));
    const updated = tf.tidy(() => {
      const w = joined(g.variables);
      const inputs = [g.vector, w, ...p.slots, ...(p.decay ? [p.decay] : []), ...(p.average ? [p.average] : [])];
      const params = this.kind === 'sgd' ? [momentum, lr] : [beta1, 1 - beta1, beta2, 1 - beta2, 1 - beta1 ** t, 1 - beta2 ** t, epsilon, lr];
      return runElementwise(updateProgram(this.kind, !!p.decay, !!p.average), inputs, [...params, ...(p.average ? [decay, 1 - decay] : [])]);
    });
    const [next, ...slots] = updated as [tf.Tensor1D, ...tf.Tensor1D[]];
    p.slots.forEach((slot, k) => slot.assign(slots[k]!));
    if (p.average) p.average.assign(slots[p.slots.length]!);
    tf.tidy(() => {
      const parts = g.variables.length === 1 ? [next] : tf.split(next, p.sizes);
      g.variables.forEach((v, i) => v.assign(parts[i]!.reshape(p.shapes[i]!)));
    });
    tf.dispose(updated);
  }

  async state(): Promise<OptimizerState> {
    this.unpack();
    const slots: OptimizerState['slots'] = {};
    for (const [name, vars] of this.loose) {
      slots[name] = await Promise.all(vars.map(async (v) => ({ shape: [...v.shape], values: (await v.data()) as Float32Array })));
    }
    return { kind: this.kind, steps: this.steps, slots };
  }

  /** Restores slots saved by `state()`; variables are matched by name. */
  load(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`The checkpoint's optimizer is ${state.kind}, this run uses ${this.kind}.`);
    this.disposeSlots();
    this.steps = state.steps;
    for (const [name, list] of Object.entries(state.slots)) {
      this.loose.set(name, list.map((s) => ownedVariable(tf.tensor(s.values, s.shape, 'float32'))));
    }
  }

  private disposeSlots() {
    this.unpack();
    for (const s of this.loose.values()) tf.dispose(s);
    this.loose.clear();
  }

  dispose(): void {
    this.disposeSlots();
  }
}

/** Scales a gradient vector so its L2 norm is at most `maxNorm` (0: no clip); returns the norm before. */
export function clipByNorm(vector: tf.Tensor1D, maxNorm: number): { vector: tf.Tensor1D; norm: tf.Scalar } {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(vector))) as tf.Scalar;
    if (!(maxNorm > 0)) return { vector: vector.clone(), norm };
    const factor = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
    return { vector: tf.mul(vector, factor) as tf.Tensor1D, norm };
  });
}
