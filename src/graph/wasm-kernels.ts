/**
 * How the lab replaces tfjs-backend-wasm 4.22 kernels that copy more than they must (Identity and
 * Cast: `wasm-identity.ts`; Slice, SplitV and Concat: `wasm-slice.ts`; Sum and Mean over leading
 * axes: `wasm-reduce.ts`; ZerosLike: `wasm-zeros.ts`; Tile: `wasm-tile.ts`; Transpose:
 * `wasm-transpose.ts`) or compute slower than they could (LeakyRelu and the fused convolutions'
 * leaky ReLU: `wasm-leaky-relu.ts`; Conv2D and FusedConv2D: `wasm-conv.ts`). The graph executor
 * installs them when it is built: after the wasm backend has registered its own, once per kernel
 * and owner, with string tensors left to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';

/** What the lab's wasm kernels use of tfjs-backend-wasm's backend object. */
export interface WasmBackend {
  /** The Emscripten module (its heap). */
  wasm: object;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
}

/** A replacement for numeric inputs; null hands the call to the stock kernel (a case it does not take). */
type NumericKernel = (x: tf.TensorInfo, args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | tf.TensorInfo[] | null;

/** Per kernel: the stock kernel function, and the replacements by owner, the latest first. */
const replaced = new Map<string, { stock: tf.KernelFunc; chain: { owner: string; kernel: NumericKernel }[] }>();

/** The wasm backend's own kernel `name`, once `replaceWasmKernel` has put another in its place (to compare with). */
export function stockWasmKernel(name: string): tf.KernelFunc | undefined {
  return replaced.get(name)?.stock;
}

/**
 * Puts `kernel` in front of the wasm backend's `name` for numeric inputs `x`: it is asked before
 * the replacements installed earlier, which are asked (latest first) when it declines (null), and
 * the stock kernel last. Once per kernel and `owner` (a second call does nothing); nothing while
 * the wasm backend is not loaded (a later call installs it).
 */
export function replaceWasmKernel(name: string, kernel: NumericKernel, owner = name): void {
  const existing = replaced.get(name);
  if (existing) {
    if (!existing.chain.some((r) => r.owner === owner)) existing.chain.unshift({ owner, kernel });
    return;
  }
  const stock = tf.getKernel(name, 'wasm');
  if (!stock) return;
  const entry = { stock: stock.kernelFunc, chain: [{ owner, kernel }] };
  replaced.set(name, entry);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    kernelName: name,
    backendName: 'wasm',
    // The stock kernel binds its wasm function when a backend starts: kept, so that the stock
    // path still works after the backend is replaced (a new thread count starts a new one).
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    kernelFunc: (args) => {
      // Single-input kernels name their input x; Concat's inputs are a list.
      const x = (args.inputs['x'] ?? (args.inputs as unknown as tf.TensorInfo[])[0]) as tf.TensorInfo;
      if (x.dtype !== 'string') {
        for (const { kernel: replacement } of entry.chain) {
          const out = replacement(x, args);
          if (out) return out;
        }
      }
      return stock.kernelFunc(args);
    },
  });
}

const own = new Set<string>();

/** Registers the lab's own wasm kernel `name` (one tfjs-wasm does not have), once. */
export function registerOwnWasmKernel(name: string, kernelFunc: tf.KernelFunc): void {
  if (own.has(name)) return;
  own.add(name);
  tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
}
