/**
 * tfjs-backend-wasm 4.22's Identity kernel copies its input, where the cpu, webgl and webgpu
 * backends hand back the same data with its reference count raised. The engine runs Identity
 * for every tensor a gradient saves (tf.engine().clone), so on wasm each training step copied
 * every saved activation once more: about 8% of the forward's kernel time and as much memory.
 * Tensors are immutable (a variable's assign swaps its data, it never writes into it), so
 * sharing is what the other backends already do. Replaces the wasm kernel once that backend's
 * kernels are registered; strings keep the stock path.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { replaceWasmKernel } from './wasm-kernels';

interface WasmBackendRefs {
  incRef(dataId: object): void;
}

export function shareDataInWasmIdentity(): void {
  replaceWasmKernel('Identity', (x, args) => {
    (args.backend as unknown as WasmBackendRefs).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype } as tf.TensorInfo;
  });
}
