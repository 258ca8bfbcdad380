/**
 * SGD with momentum (PyTorch semantics, L2 weight decay on weight tensors) and Adam with
 * decoupled weight decay (AdamW), written here rather than taken from tfjs because the lab needs
 * a learning rate that changes every step and a state it can save and restore by variable name.
 */
import * as tf from '@tensorflow/tfjs';
import { stableVariableKey } from '../distill/connectors';

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

export class Optimizer {
  readonly kind: OptimizerKind;
  private readonly o: Required<OptimizerOptions>;
  private slots = new Map<string, tf.Variable[]>();
  steps = 0;

  constructor(kind: OptimizerKind, options: OptimizerOptions = {}) {
    this.kind = kind;
    this.o = { momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, averageDecay: 0, ...options };
    if (!(this.o.averageDecay >= 0 && this.o.averageDecay < 1)) throw new Error(`The weight-average decay must lie in [0, 1), got ${this.o.averageDecay}.`);
  }

  /** The running average of a variable, started from its value when first seen. */
  private averageFor(v: tf.Variable): tf.Variable {
    const key = AVERAGE_PREFIX + stableVariableKey(v.name);
    let a = this.slots.get(key)?.[0];
    if (!a) {
      a = ownedVariable(v.clone());
      this.slots.set(key, [a]);
    }
    return a;
  }

  /** Whether weights are averaged (and `swapAverages` has something to swap). */
  get averaging(): boolean {
    return this.o.averageDecay > 0;
  }

  /**
   * Exchanges each variable's value with its running average (a second call swaps back): the
   * averaged weights are evaluated and exported, the raw ones go on training. Returns how many
   * variables were swapped (0 without averaging or before the first step).
   */
  swapAverages(variables: readonly tf.Variable[]): number {
    let swapped = 0;
    for (const v of variables) {
      const a = this.slots.get(AVERAGE_PREFIX + stableVariableKey(v.name))?.[0];
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

  private slotsFor(v: tf.Variable): tf.Variable[] {
    let s = this.slots.get(stableVariableKey(v.name));
    if (!s) {
      const n = this.kind === 'sgd' ? 1 : 2;
      s = Array.from({ length: n }, () => ownedVariable(tf.zerosLike(v)));
      this.slots.set(stableVariableKey(v.name), s);
    }
    return s;
  }

  /** One update of every variable that has a gradient in `grads` (keyed by variable name). */
  apply(variables: readonly tf.Variable[], grads: tf.NamedTensorMap, lr: number): void {
    this.steps++;
    const { momentum, beta1, beta2, epsilon, weightDecay, averageDecay } = this.o;
    const t = this.steps;
    const decay = Math.min(averageDecay, (1 + t) / (10 + t));
    tf.tidy(() => {
      for (const v of variables) {
        const g = grads[v.name];
        if (!g) continue;
        const average = averageDecay > 0 ? this.averageFor(v) : undefined;
        const slots = this.slotsFor(v);
        if (this.kind === 'sgd') {
          const d = weightDecay > 0 && decays(v) ? g.add(v.mul(weightDecay)) : g;
          const buf = slots[0]!;
          buf.assign(buf.mul(momentum).add(d));
          v.assign(v.sub(buf.mul(lr)));
        } else {
          const [m, s] = slots as [tf.Variable, tf.Variable];
          m.assign(m.mul(beta1).add(g.mul(1 - beta1)));
          s.assign(s.mul(beta2).add(g.square().mul(1 - beta2)));
          const mHat = m.div(1 - beta1 ** t);
          const sHat = s.div(1 - beta2 ** t);
          let update = mHat.div(sHat.sqrt().add(epsilon));
          if (weightDecay > 0 && decays(v)) update = update.add(v.mul(weightDecay));
          v.assign(v.sub(update.mul(lr)));
        }
        if (average) average.assign(average.mul(decay).add(v.mul(1 - decay)));
      }
    });
  }

  async state(): Promise<OptimizerState> {
    const slots: OptimizerState['slots'] = {};
    for (const [name, vars] of this.slots) {
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
      this.slots.set(name, list.map((s) => ownedVariable(tf.tensor(s.values, s.shape, 'float32'))));
    }
  }

  private disposeSlots() {
    for (const s of this.slots.values()) tf.dispose(s);
    this.slots.clear();
  }

  dispose(): void {
    this.disposeSlots();
  }
}

/** Scales the gradients so their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: tf.Scalar } {
  return tf.tidy(() => {
    const list = Object.values(grads);
    const norm = (list.length ? tf.sqrt(tf.addN(list.map((g) => g.square().sum()))) : tf.scalar(0)) as tf.Scalar;
    if (!(maxNorm > 0)) return { grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.clone()])), norm };
    const factor = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6)));
    return { grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.mul(factor)])), norm };
  });
}
