/**
 * Convolutional connectors: trainable adapters that map student features [N,H,W,Cs] to the
 * teacher's channel count [N,H,W,Ct] (stride 1, 'same' padding, so H and W are kept). They
 * train with the student and are never exported with it.
 *
 * Initialisations (bias zero unless stated):
 * - 'normal': N(0, std²) weights, std 0.01 by default, seeded (reproducible).
 * - 'uniform': PyTorch's default Conv2d init, weights and bias U(±1/sqrt(fan_in)), seeded;
 *   what FGD's align conv starts from in the official code.
 * - 'zeros': all zero.
 * - 'identity': the Dirac kernel (centre tap = identity matrix); needs Cin = Cout. With it a
 *   connector passes features through unchanged (ReLU aside), which tests and warm starts use.
 */
import * as tf from '@tensorflow/tfjs';
import { gatherRows } from '../graph/ops/gather';
import { trainableConv2d } from '../graph/ops/trainable-conv';
import type { Connector } from './types';

export type ConnectorInit = 'normal' | 'uniform' | 'zeros' | 'identity';

export interface ConvConnectorOptions {
  /** Shown in the UI and used in variable names. */
  name?: string;
  inChannels: number;
  outChannels: number;
  kernelSize: 1 | 3;
  /** ReLU after the conv (FGFI's adapter). Default false. */
  relu?: boolean;
  /** Default 'normal'. */
  init?: ConnectorInit;
  /** Standard deviation for 'normal'. Default 0.01. */
  std?: number;
  /** Seed for 'normal' and 'uniform'. Default 0. */
  seed?: number;
}

let variableCounter = 0;

/** A variable name unique in the tfjs engine (duplicate names throw there). */
export function uniqueVariableName(connector: string, part: string): string {
  variableCounter += 1;
  return `distill/${connector}/${part}_${variableCounter}`;
}

/**
 * The name a connector variable is saved under: its engine name without the counter that keeps
 * it unique in this worker (a new session, or the same one after a reload, gets another counter
 * but the same method, connector and level). Other names are kept as they are.
 */
export function stableVariableKey(name: string): string {
  return name.startsWith('distill/') ? name.replace(/_\d+$/, '') : name;
}

function checkChannels(what: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${what} must be a positive integer, got ${n}: pass the feature map's channel count.`);
  }
}

function initialKernel(o: Required<Omit<ConvConnectorOptions, 'name' | 'relu'>>): tf.Tensor4D {
  const shape: [number, number, number, number] = [o.kernelSize, o.kernelSize, o.inChannels, o.outChannels];
  switch (o.init) {
    case 'normal':
      return tf.randomNormal(shape, 0, o.std, 'float32', o.seed);
    case 'uniform': {
      const bound = 1 / Math.sqrt(o.inChannels * o.kernelSize * o.kernelSize);
      return tf.randomUniform(shape, -bound, bound, 'float32', o.seed);
    }
    case 'zeros':
      return tf.zeros(shape);
    case 'identity': {
      if (o.inChannels !== o.outChannels) {
        throw new Error(
          `An identity connector needs equal channel counts, got ${o.inChannels} -> ${o.outChannels}: use 'normal' or 'uniform' init.`,
        );
      }
      const centre = (o.kernelSize - 1) / 2;
      return tf.tidy(() => {
        const eye = tf.eye(o.inChannels).reshape([1, 1, o.inChannels, o.outChannels]);
        return tf.pad(eye, [
          [centre, centre],
          [centre, centre],
          [0, 0],
          [0, 0],
        ]) as tf.Tensor4D;
      });
    }
  }
}

function initialBias(o: Required<Omit<ConvConnectorOptions, 'name' | 'relu'>>): tf.Tensor1D {
  if (o.init === 'uniform') {
    const bound = 1 / Math.sqrt(o.inChannels * o.kernelSize * o.kernelSize);
    // A different seed than the kernel's, so bias and kernel are not the same draw.
    return tf.randomUniform([o.outChannels], -bound, bound, 'float32', o.seed + 7919);
  }
  return tf.zeros([o.outChannels]);
}

export function createConvConnector(options: ConvConnectorOptions): Connector {
  checkChannels('inChannels', options.inChannels);
  checkChannels('outChannels', options.outChannels);
  const name = options.name ?? `conv${options.kernelSize}x${options.kernelSize}`;
  const o = {
    inChannels: options.inChannels,
    outChannels: options.outChannels,
    kernelSize: options.kernelSize,
    init: options.init ?? 'normal',
    std: options.std ?? 0.01,
    seed: options.seed ?? 0,
  };
  const kernelInit = initialKernel(o);
  const biasInit = initialBias(o);
  const kernel = tf.variable(kernelInit, true, uniqueVariableName(name, 'kernel'));
  const bias = tf.variable(biasInit, true, uniqueVariableName(name, 'bias'));
  kernelInit.dispose();
  biasInit.dispose();
  const relu = options.relu ?? false;
  const checkInput = (x: tf.Tensor4D) => {
    if (x.shape[3] !== o.inChannels) {
      throw new Error(`Connector '${name}' expects ${o.inChannels} input channels, got a [${x.shape.join(',')}] tensor.`);
    }
  };
  return {
    name,
    variables: [kernel, bias],
    apply(x: tf.Tensor4D): tf.Tensor4D {
      checkInput(x);
      return tf.tidy(() => {
        const y = tf.add(trainableConv2d(x, kernel as tf.Tensor4D, 'same'), bias) as tf.Tensor4D;
        return relu ? tf.relu(y) : y;
      });
    },
    applyAt(x: tf.Tensor4D, locations: Int32Array): tf.Tensor2D {
      checkInput(x);
      const [n, h, w, c] = x.shape;
      const k = o.kernelSize;
      const r = (k - 1) / 2;
      const hp = h + 2 * r;
      const wp = w + 2 * r;
      // Each location's k x k patch as rows of the zero-padded input ('same' padding, stride 1),
      // tap by tap in the kernel's (ky, kx) order: their product with the kernel gives the outputs,
      // run as a 1x1 convolution over the rows (on wasm the lab's kernels, on every thread, and
      // their gradients; the stock matrix product runs on one thread).
      const rows = new Int32Array(locations.length * k * k);
      locations.forEach((q, p) => {
        if (!(q >= 0 && q < n * h * w)) throw new Error(`Connector '${name}': location ${q} is outside a [${x.shape.join(',')}] input.`);
        const b = Math.floor(q / (h * w));
        const i = Math.floor((q % (h * w)) / w);
        const j = q % w;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) rows[p * k * k + dy * k + dx] = (b * hp + i + dy) * wp + j + dx;
      });
      return tf.tidy(() => {
        const padded = r > 0 ? tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]]) : x;
        // The patches as an image of one column, [1, locations, 1, k·k·C].
        const patches = gatherRows(padded.reshape([n * hp * wp, c]), rows).reshape([1, locations.length, 1, k * k * c]) as tf.Tensor4D;
        const product = trainableConv2d(patches, kernel.reshape([1, 1, k * k * c, o.outChannels]) as tf.Tensor4D, 'valid');
        const y = tf.add(product.reshape([locations.length, o.outChannels]), bias) as tf.Tensor2D;
        return relu ? tf.relu(y) : y;
      });
    },
    dispose() {
      kernel.dispose();
      bias.dispose();
    },
  };
}

/** A 1x1 conv connector Cin -> Cout (PFI, FGD's align, head mimicking). */
export function conv1x1Connector(
  inChannels: number,
  outChannels: number,
  options: Omit<ConvConnectorOptions, 'inChannels' | 'outChannels' | 'kernelSize'> = {},
): Connector {
  return createConvConnector({ ...options, inChannels, outChannels, kernelSize: 1 });
}

/** A 3x3 conv connector Cin -> Cout, 'same' padding (FGFI's adapter, with relu: true). */
export function conv3x3Connector(
  inChannels: number,
  outChannels: number,
  options: Omit<ConvConnectorOptions, 'inChannels' | 'outChannels' | 'kernelSize'> = {},
): Connector {
  return createConvConnector({ ...options, inChannels, outChannels, kernelSize: 3 });
}
