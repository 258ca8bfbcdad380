/**
 * The GcBlock of FGD's global loss (after Cao et al., GCNet, 2019), as an explicit connector:
 *   R(F) = F + W2 · ReLU(LN(W1 · context)),  context = Sum_j softmax_j(W_k · F)_j · F_j
 * F [N,H,W,C]; W_k a 1x1 conv C→1 (the attention pooling), W1 C→floor(C/2), LayerNorm over the
 * C/2 channels (eps 1e-5, learnable scale and shift), W2 C/2→C. The 1x1 convs on a [N,C]
 * context are plain matrix products here.
 *
 * Initialisation as in the official FGD code: W_k Kaiming-normal (fan_in, std sqrt(2/C)), bias
 * 0; W1 and its bias PyTorch's default U(±1/sqrt(C)); LayerNorm scale 1, shift 0; W2 and its
 * bias zero, so R starts as the identity. Trains with the student; never exported.
 */
import * as tf from '@tensorflow/tfjs';
import { uniqueVariableName } from './connectors';
import type { Connector } from './types';

export interface GcBlockOptions {
  name?: string;
  channels: number;
  /** Seed of the random initial weights. Default 0. */
  seed?: number;
  /** LayerNorm epsilon. Default 1e-5 (PyTorch). */
  epsilon?: number;
}

/** A GcBlock's weights by role, for code that runs several blocks at once (FGD's joined levels). */
export interface GcBlockParts {
  /** [1,1,C,1] and [1]: the attention pooling's 1x1 conv. */
  maskKernel: tf.Variable;
  maskBias: tf.Variable;
  /** [C,C/2], [C/2]. */
  w1: tf.Variable;
  b1: tf.Variable;
  /** LayerNorm scale and shift, [C/2]. */
  lnScale: tf.Variable;
  lnShift: tf.Variable;
  /** [C/2,C], [C]. */
  w2: tf.Variable;
  b2: tf.Variable;
  epsilon: number;
}

export interface GcBlock extends Connector {
  parts: GcBlockParts;
}

export function isGcBlock(c: Connector | null | undefined): c is GcBlock {
  return !!c && 'parts' in c && typeof (c as GcBlock).parts === 'object';
}

export function createGcBlock(options: GcBlockOptions): GcBlock {
  const c = options.channels;
  if (!Number.isInteger(c) || c < 2) throw new Error(`GcBlock: channels must be an integer >= 2, got ${c}.`);
  const name = options.name ?? 'gcblock';
  const seed = options.seed ?? 0;
  const eps = options.epsilon ?? 1e-5;
  const hidden = Math.floor(c / 2);
  const bound = 1 / Math.sqrt(c);
  const make = (part: string, init: () => tf.Tensor) => {
    const t = init();
    const v = tf.variable(t, true, uniqueVariableName(name, part));
    t.dispose();
    return v;
  };
  const wk = make('mask_kernel', () => tf.randomNormal([1, 1, c, 1], 0, Math.sqrt(2 / c), 'float32', seed));
  const bk = make('mask_bias', () => tf.zeros([1]));
  const w1 = make('w1', () => tf.randomUniform([c, hidden], -bound, bound, 'float32', seed + 1));
  const b1 = make('b1', () => tf.randomUniform([hidden], -bound, bound, 'float32', seed + 2));
  const gamma = make('ln_scale', () => tf.ones([hidden]));
  const beta = make('ln_shift', () => tf.zeros([hidden]));
  const w2 = make('w2', () => tf.zeros([hidden, c]));
  const b2 = make('b2', () => tf.zeros([c]));
  const variables = [wk, bk, w1, b1, gamma, beta, w2, b2];
  return {
    name,
    variables,
    parts: { maskKernel: wk, maskBias: bk, w1, b1, lnScale: gamma, lnShift: beta, w2, b2, epsilon: eps },
    apply(x: tf.Tensor4D): tf.Tensor4D {
      const [n, h, w, ch] = x.shape;
      if (ch !== c) throw new Error(`GcBlock '${name}' was built for ${c} channels, got a [${x.shape.join(',')}] tensor.`);
      return tf.tidy(() => {
        // The attention pooling and the weighted sum as products and sums over the [N,HW,C] rows:
        // as a 1x1 convolution to one channel and a product with a one-row left operand, their
        // gradients are products with one column (W_k's, through a transpose of F) and an outer
        // product (F's), which tfjs-wasm runs several times slower than these elementwise kernels.
        const rows = x.reshape([n, h * w, c]);
        const logits = tf.add(tf.sum(tf.mul(rows, wk.reshape([c])), 2), bk);
        const weights = tf.softmax(logits).reshape([n, h * w, 1]);
        const context = tf.sum(tf.mul(rows, weights), 1);
        const z = tf.add(tf.matMul(context as tf.Tensor2D, w1 as tf.Tensor2D), b1);
        const { mean, variance } = tf.moments(z, 1, true);
        const normed = tf.sub(z, mean).div(tf.sqrt(tf.add(variance, eps))).mul(gamma).add(beta);
        const added = tf.add(tf.matMul(tf.relu(normed) as tf.Tensor2D, w2 as tf.Tensor2D), b2).reshape([n, 1, 1, c]);
        return tf.add(x, added) as tf.Tensor4D;
      });
    },
    dispose() {
      for (const v of variables) v.dispose();
    },
  };
}
