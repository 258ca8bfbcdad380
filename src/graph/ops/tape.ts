import * as tf from '@tensorflow/tfjs-core';

/**
 * True while a gradient is being recorded (inside tf.grad / tf.variableGrads / minimize). The
 * custom-gradient paths cost a little in the forward (saved tensors, an extra pad), so plain
 * inference takes the stock kernels.
 */
export function recordingGradients(): boolean {
  return tf.engine().isTapeOn();
}

/**
 * Runs `f` with the gradient tape paused. For shape-only runs (the executor's reference run at
 * the declared input size) that may happen inside a training step: recorded, they would keep
 * every saved activation of a full-size forward until backprop, and feed nothing into the loss.
 */
export function withoutTape<T>(f: () => T): T {
  const state = tf.engine().state;
  const depth = state.gradientDepth;
  state.gradientDepth = 0;
  try {
    return f();
  } finally {
    state.gradientDepth = depth;
  }
}

/** The gradient of each input, computed only when backprop asks for it (undefined: never asked). */
export type LazyGradients = (dy: tf.Tensor, saved: tf.Tensor[]) => (() => tf.Tensor)[];

interface EngineKernelFunc {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: (tensors: tf.Tensor[]) => void) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

/**
 * Like tf.customGrad, but each input's gradient is a function that tfjs calls only for the
 * inputs on the way to what is differentiated (as it does for its own kernels): the input
 * gradient of a network's first convolution, whose input is the image, is never computed.
 * `forward` may save tensors for the backward pass; they are kept only while a tape records.
 */
export function withLazyGradients(inputs: tf.Tensor[], forward: (save: (tensors: tf.Tensor[]) => void) => tf.Tensor, gradients: LazyGradients): tf.Tensor {
  const engine = tf.engine() as unknown as EngineKernelFunc;
  return engine.runKernelFunc({
    forwardFunc: (_backend, save) => forward(save),
    backwardsFunc: (dy, saved) => Object.fromEntries(gradients(dy, saved).map((g, i) => [String(i), g])),
    inputs: Object.fromEntries(inputs.map((t, i) => [String(i), t])),
  });
}

interface EngineTapeInternals {
  state: { gradientDepth: number; kernelDepth: number; tensorInfo: Map<object, { backend: { incRef?(dataId: object): void } }> };
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: tf.Tensor[] };
  runKernelFunc(params: { inputs: Record<string, tf.Tensor | null | undefined> }): tf.Tensor | tf.Tensor[];
  saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[];
  makeTensorFromTensorInfo(info: tf.TensorInfo): tf.Tensor;
  keep<T extends tf.Tensor>(t: T): T;
}

let unpruned: Pick<EngineTapeInternals, 'gradients' | 'runKernelFunc' | 'saveTensorsForBackwardMode'> | null = null;

/**
 * Makes the gradient tape record only the ops a gradient can reach: those with an input that
 * descends from what is differentiated (the variables of tf.variableGrads, the xs of tf.grad).
 * tfjs records every op run inside a gradient, and each recorded op clones the tensors its
 * gradient would read (an Identity kernel and one more tape node per tensor); backprop then drops
 * the ops no gradient reaches. In a distillation step about a third of the ops are such: the
 * teacher's side of each method (its attention, masks, soft labels, spreads) and the targets
 * built from the boxes. Gradients are unchanged: tfjs keeps exactly the ops reached from the xs
 * (and on the way to the loss), and an op no x reaches is never among them.
 * Idempotent; `restoreFullTape` undoes it.
 */
export function recordOnlyWhatGradientsReach(): void {
  if (unpruned) return;
  const engine = tf.engine() as unknown as EngineTapeInternals;
  const original = { gradients: engine.gradients, runKernelFunc: engine.runKernelFunc, saveTensorsForBackwardMode: engine.saveTensorsForBackwardMode };
  unpruned = original;
  /** Ids of the tensors that descend from the xs of the innermost gradient being recorded. */
  let reached: Set<number> | null = null;
  // What a recorded op's gradient will read is kept as a new tensor on the same data: tfjs clones
  // it through engine.clone, an Identity kernel and a tape node of its own per tensor (about 900
  // in a step with every method). No gradient flows through that copy unless a gradient of the
  // backprop is taken (second order), which takes tfjs's path.
  engine.saveTensorsForBackwardMode = function (this: EngineTapeInternals, tensors) {
    if (!reached || this.state.gradientDepth !== 1) return original.saveTensorsForBackwardMode.call(this, tensors);
    return tensors.map((t) => {
      const backend = this.state.tensorInfo.get(t.dataId)?.backend;
      if (!backend?.incRef || t.dtype === 'string') return original.saveTensorsForBackwardMode.call(this, [t])[0]!;
      backend.incRef(t.dataId);
      return this.keep(this.makeTensorFromTensorInfo({ dataId: t.dataId, shape: [...t.shape], dtype: t.dtype }));
    });
  };
  engine.gradients = function (this: EngineTapeInternals, f, xs, dy, allowNoGradients) {
    // A gradient inside a gradient (higher order) records every op, as tfjs does, and so does
    // the outer one from then on: the inner one's ops are not tracked.
    const outermost = this.state.gradientDepth === 0;
    reached = outermost ? new Set(xs.map((x) => x.id)) : null;
    try {
      return original.gradients.call(this, f, xs, dy, allowNoGradients);
    } finally {
      reached = null;
    }
  };
  engine.runKernelFunc = function (this: EngineTapeInternals, params) {
    const state = this.state;
    if (!reached || state.gradientDepth !== 1 || state.kernelDepth !== 0) return original.runKernelFunc.call(this, params);
    // Every kernel of a step passes here: no array built per call.
    let live = false;
    for (const name in params.inputs) {
      const t = params.inputs[name];
      if (t && reached.has(t.id)) {
        live = true;
        break;
      }
    }
    if (!live) {
      // Run as outside a gradient: nothing saved, nothing recorded.
      state.gradientDepth = 0;
      try {
        return original.runKernelFunc.call(this, params);
      } finally {
        state.gradientDepth = 1;
      }
    }
    const out = original.runKernelFunc.call(this, params);
    if (Array.isArray(out)) for (const t of out) reached.add(t.id);
    else reached.add(out.id);
    return out;
  };
}

/** Undoes `recordOnlyWhatGradientsReach`: tfjs records every op again. */
export function restoreFullTape(): void {
  if (!unpruned) return;
  const engine = tf.engine() as unknown as EngineTapeInternals;
  engine.gradients = unpruned.gradients;
  engine.runKernelFunc = unpruned.runKernelFunc;
  engine.saveTensorsForBackwardMode = unpruned.saveTensorsForBackwardMode;
  unpruned = null;
}
