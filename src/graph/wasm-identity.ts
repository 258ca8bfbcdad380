/**
 * tfjs-backend-wasm 4.22's Identity kernel copies its input, where the cpu, webgl and webgpu
 * backends hand back the same data with its reference count raised. The engine runs Identity
 * for every tensor a gradient saves (tf.engine().clone), so on wasm each training step copied
 * every saved activation once more: about 8% of the forward's kernel time and as much memory.
 * Tensors are immutable (a variable's assign swaps its data, it never writes into it), so
 * sharing is what the other backends already do. Replaces the wasm kernel once that backend's
 * kernels are registered; strings keep the stock path.
 *
 * The same holds for a Cast to the dtype the tensor already has, which the wasm kernel copies
 * too: tfjs's gradients of Multiply, RealDiv and others cast the saved operand to float32 before
 * using it, so every product's gradient in backprop copied a full operand (1.1 ms for a
 * [2,1600,128] one, on the threaded binary's shared heap). A Cast to bool is fixed on the way:
 * the stock kernel copies the numbers (3 stays 3), where every other backend gives 1 for non-zero.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { replaceWasmKernel } from './wasm-kernels';

interface WasmBackendRefs {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** x as bool: 1 where it is not zero (NaN included, as in JavaScript's and TensorFlow's casts). */
function castToBool(x: tf.TensorInfo, backend: WasmBackendRefs): tf.TensorInfo {
  const out = backend.makeOutput([...x.shape], 'bool');
  const [from, to] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out)];
  for (let i = 0; i < to.length; i++) to[i] = from[i] === 0 ? 0 : 1;
  return out;
}

export function shareDataInWasmIdentity(): void {
  const share = (x: tf.TensorInfo, backend: unknown) => {
    (backend as WasmBackendRefs).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype } as tf.TensorInfo;
  };
  replaceWasmKernel('Identity', (x, args) => share(x, args.backend));
  replaceWasmKernel('Cast', (x, args) => {
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    if (dtype === x.dtype) return share(x, args.backend);
    return dtype === 'bool' ? castToBool(x, args.backend as unknown as WasmBackendRefs) : null;
  });
}
